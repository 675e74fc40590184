#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"
#include "job_store.h"  // StoreError

namespace collectord {

// Where a delivery stands: waiting for its next attempt, received (a 2xx), or given up.
enum class DeliveryState { kPending, kDelivered, kFailed };

// "pending", "delivered", "failed".
std::string_view toString(DeliveryState state);
std::optional<DeliveryState> parseDeliveryState(std::string_view name);

// One attempt to deliver.
struct WebhookAttemptRecord {
  int attempt = 1;
  Micros started_at = 0;
  std::int64_t duration_ms = 0;
  std::optional<int> http_status;    // when the receiver answered
  std::optional<std::string> error;  // when the attempt failed: why
};

// One event for one endpoint, as the outbox holds it.
struct WebhookDeliveryRecord {
  std::int64_t delivery_id = 0;
  std::string event_id;
  std::string endpoint;
  std::string event_type;
  std::string body;  // exactly what is signed and sent
  Micros created_at = 0;
  Micros next_attempt_at = 0;
  int attempts = 0;
  DeliveryState state = DeliveryState::kPending;
  std::optional<std::string> last_error;
  std::optional<int> last_status;
  std::optional<Micros> finished_at;              // delivered or given up
  std::vector<WebhookAttemptRecord> attempt_log;  // filled by webhookDeliveries() only
};

// The webhook outbox. Events are written into it by JobStore::save, in the transaction of the
// state change that caused them; senders and the API use these. Safe to call from several
// threads; every method throws StoreError when the database fails, and nothing else.
class WebhookStore {
 public:
  virtual ~WebhookStore() = default;

  // Pending deliveries to `endpoint` due at `now`, the longest due first, at most `limit`
  // (without attempt_log).
  virtual std::vector<WebhookDeliveryRecord> dueWebhookDeliveries(const std::string& endpoint,
                                                                  Micros now, int limit) = 0;
  // When the next pending delivery to `endpoint` is due; nullopt when none is pending.
  virtual std::optional<Micros> nextWebhookDue(const std::string& endpoint) = 0;
  // Records an attempt and what the delivery becomes, in one transaction: `state` (pending with
  // `next_attempt_at`, delivered, or failed), attempts, last_status and last_error. A delivery
  // that is no longer pending keeps its state unless `state` is delivered.
  virtual void recordWebhookAttempt(std::int64_t delivery_id, const WebhookAttemptRecord& attempt,
                                    DeliveryState state, Micros next_attempt_at) = 0;
  // The most recent deliveries, newest first, optionally only those in `state`, with their
  // attempts oldest first.
  virtual std::vector<WebhookDeliveryRecord> webhookDeliveries(
      int limit, std::optional<DeliveryState> state) = 0;
  // The endpoints that have pending deliveries.
  virtual std::vector<std::string> pendingWebhookEndpoints() = 0;
  // Ends every pending delivery to `endpoint` failed with `error`; returns how many there were.
  virtual int abandonWebhookDeliveries(const std::string& endpoint, const std::string& error,
                                       Micros now) = 0;
  // Deletes delivered and failed deliveries (and their attempts) that finished before `before`;
  // returns how many.
  virtual int pruneWebhookDeliveries(Micros before) = 0;
};

}  // namespace collectord
