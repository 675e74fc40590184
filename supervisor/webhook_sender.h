#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"
#include "supervisor.h"
#include "webhook.h"
#include "webhook_store.h"

namespace collectord {

// Delivers the webhook outbox: a thread per endpoint takes its due deliveries, oldest first,
// POSTs each body signed with the endpoint's secret, and records every attempt. A 2xx answer
// delivers; anything else, a timeout or a refused connection is retried with exponential
// backoff until max_attempts, then the delivery ends failed. Endpoints never wait for one
// another, and nothing here runs on the supervision thread. Deliveries still pending when the
// daemon stops are taken up by the next start: at least once, never lost.
class WebhookSender {
 public:
  // `store` and `metrics` must outlive the sender. No thread runs before configure().
  WebhookSender(WebhookStore& store, Metrics& metrics);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Applies `settings` (at start and on each reload): a thread for each new endpoint, new
  // settings for changed ones (from their next attempt), stopped threads for removed ones.
  // Pending deliveries to an endpoint no longer configured end failed, saying so. Thread-safe;
  // store errors are logged, not thrown.
  void configure(const WebhookSettings& settings);
  // New deliveries may be due: every endpoint looks now instead of at its next due time.
  // Cheap and non-blocking; called after each write of terminal job state.
  void wake();
  // wake() when `change` made a batch or job terminal: the write that did so holds its
  // deliveries. For SupervisorOptions::on_saved.
  void noteSaved(const StateChange& change);
  // Stops every thread; an attempt in flight is cut off (its delivery stays pending, and is
  // sent again by the next start). Idempotent.
  void stop();

 private:
  struct Worker;

  void run(Worker& worker);
  // One attempt, recorded in the store with the delivery's new state.
  void deliver(Worker& worker, const WebhookEndpoint& endpoint, const WebhookSettings& settings,
               const WebhookDeliveryRecord& delivery);
  // POSTs the delivery signed with the endpoint's secret: the HTTP status, or nullopt when no
  // answer came. `error` says why the attempt failed (a status that is not 2xx included).
  std::optional<int> post(Worker& worker, const WebhookEndpoint& endpoint,
                          const WebhookDeliveryRecord& delivery, int attempt, Micros now,
                          std::string& error);
  void abandonUnconfigured(const WebhookSettings& settings);
  void housekeeping();

  WebhookStore& store_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable housekeeping_wake_;
  std::shared_ptr<const WebhookSettings> settings_;  // guarded by mutex_
  std::vector<std::unique_ptr<Worker>> workers_;     // guarded by mutex_; one per endpoint
  std::vector<std::unique_ptr<Worker>> retired_;     // guarded by mutex_; stopping, to join
  bool stopping_ = false;                            // guarded by mutex_
  std::thread housekeeping_;
};

}  // namespace collectord
