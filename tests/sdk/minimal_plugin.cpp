// The smallest useful plugin with the C++ SDK; sdk.out_of_tree_build compiles it with nothing
// but `pkg-config --cflags collectord-sdk`.
#include <collectord/collector.hpp>

class Hello : public collectord::Collector {
 public:
  void run(collectord::Context& ctx) override {
    ctx.progress(50, "hello from " + ctx.config("WHO").value_or("nobody"));
  }
};

COLLECTORD_PLUGIN(Hello);
