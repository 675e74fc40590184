#pragma once

// Follows runs until every followed job has ended: from the batch's event stream when the
// server has one, else by polling the batch status endpoint; through rate limits and passing
// connection trouble; showing each step in a ProgressView.

#include <chrono>
#include <string>

#include "api_client.h"
#include "progress_view.h"
#include "run_state.h"

namespace collectorctl {

struct FollowOptions {
  std::chrono::milliseconds interval{500};  // between polls (stretched to fit the rate limit)
  bool use_events = true;                   // try GET .../batch/{id}/events first
};

enum class FollowEnd {
  kFinished,     // every followed job (and batch) has ended
  kInterrupted,  // SIGINT or SIGTERM
  kFailed,       // the server refused a request, or could not be reached for a minute
};

struct FollowResult {
  FollowEnd end = FollowEnd::kFinished;
  std::string error;      // with kFailed: the server's message or the connection problem
  bool streamed = false;  // the event stream carried the updates (rather than polling)
};

// Follows the batches and jobs in `state` (which must name at least one job) until they end.
// Leaves the view finished whatever the outcome.
FollowResult followRuns(ApiClient& client, RunState& state, ProgressView& view,
                        const FollowOptions& options);

}  // namespace collectorctl
