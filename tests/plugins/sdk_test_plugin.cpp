// Test plugins built with the C++ SDK (collectord/collector.hpp), one behaviour each, chosen by
// TEST_PLUGIN_BEHAVIOUR at compile time:
//   sdk_good          reports three steps through collectord::Progress, then "GREETING, done"
//   sdk_throw         throws std::runtime_error out of run(): the job fails with its what()
//   sdk_throw_other   throws an int out of run(): the job fails with a generic error
//   sdk_hang          waits until cancelled(), logs that it saw it, and returns
#include <unistd.h>

#include <collectord/collector.hpp>

#include <cstring>
#include <stdexcept>
#include <string>

namespace {

bool behaviour(const char* name) { return std::strcmp(TEST_PLUGIN_BEHAVIOUR, name) == 0; }

class TestCollector : public collectord::Collector {
 public:
  void run(collectord::Context& ctx) override {
    ctx.log("sdk plugin " TEST_PLUGIN_BEHAVIOUR " for job " + std::string(ctx.job_id()) +
            " of " + std::string(ctx.collector_name()));
    ctx.progress(10, ctx.config("GREETING").value_or("no greeting"));
    if (behaviour("sdk_throw")) {
      throw std::runtime_error("inventory API answered 503: données indisponibles");
    }
    if (behaviour("sdk_throw_other")) throw 42;
    if (behaviour("sdk_hang")) {
      ctx.progress(20, "waiting to be cancelled");
      while (!ctx.cancelled()) ::usleep(10'000);
      ctx.log("sdk plugin saw cancelled() for job " + std::string(ctx.job_id()));
      return;
    }
    collectord::Progress steps(ctx, 3, 20, 90);
    for (const char* step : {"Reading", "Counting", "Saving"}) steps.next(step);
    // The setting comes back in the final message, where a test can see it.
    steps.finish(ctx.config("GREETING").value_or("no greeting") + ", done");
  }
};

}  // namespace

COLLECTORD_PLUGIN(TestCollector);
