#include "run_follower.h"

#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <optional>

#include "event_stream.h"
#include "interrupt.h"
#include "poll_pacing.h"

namespace collectorctl {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long the server may stay unreachable (or answer 502/503/504) before the wait gives up.
constexpr auto kGiveUpAfter = std::chrono::seconds(60);
// How often a terminal view is redrawn between updates: its clocks tick.
constexpr milliseconds kRedrawEvery{250};
// Streams that end before the runs do are reopened (from their last event) this many times
// before polling takes over.
constexpr int kMaxReconnects = 3;

class Follower {
 public:
  Follower(ApiClient& client, RunState& state, ProgressView& view, const FollowOptions& options)
      : client_(client), state_(state), view_(view), options_(options) {}

  FollowResult run() {
    if (options_.use_events && state_.batches().size() == 1) {
      if (auto result = stream()) return *result;
    }
    return poll();
  }

 private:
  FollowResult done(FollowEnd end) {
    view_.finish(state_);
    return FollowResult{end, fatal_.value_or(""), streamed_};
  }

  // GETs every followed batch once and applies the answers. Returns the delay before the next
  // poll; sets fatal_ when the server refuses or has been unreachable for too long.
  milliseconds pollOnce() {
    milliseconds delay = options_.interval;
    const int count = static_cast<int>(state_.batches().size());
    std::vector<std::string> ids;
    for (const BatchProgress& batch : state_.batches()) ids.push_back(batch.batch_id);
    for (const std::string& id : ids) {
      const ApiResponse response = client_.get("/api/collectors/runs/batch/" + encodeComponent(id));
      if (response.ok() && response.object()) {
        failing_since_.reset();
        notice_.clear();
        state_.applyBatch(*response.object(), response.body);
        delay = std::max(delay, pollDelay(response, options_.interval, count));
        continue;
      }
      if (response.status == 429) {
        const milliseconds wait = pollDelay(response, options_.interval, count);
        notice_ = "rate limited by the server: next update in " +
                  std::to_string((wait.count() + 999) / 1000) + " s";
        return wait;
      }
      if (!response.transient()) {
        fatal_ = response.problem();
        return milliseconds(0);
      }
      if (!failing_since_) failing_since_ = Clock::now();
      if (Clock::now() - *failing_since_ >= kGiveUpAfter) {
        fatal_ = response.problem();
        return milliseconds(0);
      }
      notice_ = response.problem() + "; trying again";
      return std::max(options_.interval, milliseconds(1000));
    }
    return delay;
  }

  // Waits `delay`, redrawing; false when interrupted.
  bool waitRedrawing(milliseconds delay) {
    const auto until = Clock::now() + delay;
    while (Clock::now() < until) {
      const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
      if (!sleepUnlessInterrupted(std::min(left, kRedrawEvery))) return false;
      view_.update(state_, notice_);
    }
    return true;
  }

  FollowResult poll() {
    for (;;) {
      const milliseconds delay = pollOnce();
      if (fatal_) return done(FollowEnd::kFailed);
      if (state_.finished()) return done(FollowEnd::kFinished);
      view_.update(state_, notice_);
      if (!waitRedrawing(delay)) return done(FollowEnd::kInterrupted);
    }
  }

  void apply(const ServerEvent& event) {
    try {
      Poco::JSON::Parser parser;
      const Poco::Dynamic::Var value = parser.parse(event.data);
      if (value.type() != typeid(Poco::JSON::Object::Ptr)) return;
      const auto object = value.extract<Poco::JSON::Object::Ptr>();
      if (event.type == "batch") {
        state_.applyBatch(*object, event.data);
      } else if (event.type == "job") {
        state_.applyJob(*object);
      }
    } catch (const Poco::Exception& e) {
      notice_ = "ignored an event that is not JSON: " + e.displayText();
    }
  }

  // Follows through the batch's event stream. Returns nullopt when polling should take over
  // (the server has no stream, or it keeps failing).
  std::optional<FollowResult> stream() {
    // A first snapshot: the stream need not repeat what happened before it opened.
    pollOnce();
    if (fatal_) return done(FollowEnd::kFailed);
    if (state_.finished()) return done(FollowEnd::kFinished);
    view_.update(state_, notice_);

    const std::string path = "/api/collectors/runs/batch/" +
                             encodeComponent(state_.batches().front().batch_id) + "/events";
    std::string last_id;
    for (int attempt = 0; attempt <= kMaxReconnects; ++attempt) {
      EventStream events(client_, path, last_id);
      EventStream::State state = EventStream::State::kConnecting;
      for (;;) {
        for (const ServerEvent& event : events.take(kRedrawEvery)) {
          streamed_ = true;
          apply(event);
        }
        if (state_.finished()) return done(FollowEnd::kFinished);
        if (interrupted()) return done(FollowEnd::kInterrupted);
        view_.update(state_, notice_);
        state = events.state();
        if (state == EventStream::State::kUnavailable) return std::nullopt;
        if (state == EventStream::State::kEnded || state == EventStream::State::kFailed) break;
      }
      last_id = events.lastEventId();
      events.stop();
      // The stream ended or broke before the runs did: catch up, then resume it.
      pollOnce();
      if (fatal_) return done(FollowEnd::kFailed);
      if (state_.finished()) return done(FollowEnd::kFinished);
      if (state == EventStream::State::kFailed) {
        notice_ = events.error() + "; reopening the event stream";
      }
      if (!waitRedrawing(options_.interval)) return done(FollowEnd::kInterrupted);
    }
    return std::nullopt;
  }

  ApiClient& client_;
  RunState& state_;
  ProgressView& view_;
  const FollowOptions options_;
  std::string notice_;
  std::optional<Clock::time_point> failing_since_;
  std::optional<std::string> fatal_;
  bool streamed_ = false;
};

}  // namespace

FollowResult followRuns(ApiClient& client, RunState& state, ProgressView& view,
                        const FollowOptions& options) {
  return Follower(client, state, view, options).run();
}

}  // namespace collectorctl
