#pragma once

// How long to wait between two polls of rate-limited endpoints, so that following a run never
// uses up the server's per-minute budget (60 requests by default, shared by every client with
// the same key).

#include <chrono>

#include "api_client.h"

namespace collectorctl {

// The delay before the next poll after `last`: at least `interval`; after a 429, its
// Retry-After (5 s when missing); otherwise stretched so that the X-RateLimit-Remaining
// requests left last until X-RateLimit-Reset, counting `requests_per_poll` requests a poll.
std::chrono::milliseconds pollDelay(const ApiResponse& last, std::chrono::milliseconds interval,
                                    int requests_per_poll);

}  // namespace collectorctl
