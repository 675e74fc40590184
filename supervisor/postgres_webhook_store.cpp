// The webhook outbox of PostgresJobStore (see webhook_store.h). Its rows are written by save(), in
// the transaction of the state change that causes them; this file holds what the senders and the
// API do with them: writes through Poco::Data, reads through the store's libpq connections.
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Nullable.h>


#include "postgres_job_store.h"
#include "postgres_cluster.h"
#include "postgres_support.h"
#include "store_sql.h"

namespace collectord {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;
using postgres::guarded;
using postgres::inTransaction;
using postgres::PgConnection;
using postgres::limitText;
using postgres::PgResult;
using postgres::storable;

namespace {

const std::string kDeliveryColumns = store_sql::kDeliveryColumns;
const std::string kDue = "SELECT " + kDeliveryColumns +
                         " FROM webhook_deliveries WHERE endpoint = $1 AND state = 'pending' "
                         "AND next_attempt_at <= $2 ORDER BY next_attempt_at, delivery_id LIMIT $3";
// In a cluster every node's sender looks for due deliveries: each is claimed by one of them,
// its next attempt put off by kClaimWindow so that no other node takes it meanwhile; the
// attempt's record sets the real next time. A node that dies holding claims leaves them to the
// others after the window.
constexpr Micros kClaimWindow = 5LL * 60 * 1'000'000;
const std::string kClaimDue =
    "UPDATE webhook_deliveries SET next_attempt_at = $4 WHERE delivery_id IN (SELECT delivery_id "
    "FROM webhook_deliveries WHERE endpoint = $1 AND state = 'pending' AND next_attempt_at <= $2 "
    "ORDER BY next_attempt_at, delivery_id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING " +
    kDeliveryColumns;
const std::string kNextDue =
    "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE endpoint = $1 AND "
    "state = 'pending'";
// The deliveries and their attempts in one statement, so in one snapshot: a delivery's row
// repeats for each of its attempts (once, with NULL attempt columns, when it has none).
const std::string kWithAttempts =
    ") SELECT d.*, a.attempt, a.started_at, a.duration_ms, a.http_status, a.error FROM d "
    "LEFT JOIN webhook_attempts a ON a.delivery_id = d.delivery_id "
    "ORDER BY d.delivery_id DESC, a.attempt";
const std::string kDeliveries = "WITH d AS (SELECT " + kDeliveryColumns +
                                " FROM webhook_deliveries ORDER BY delivery_id DESC LIMIT $1" +
                                kWithAttempts;
const std::string kDeliveriesInState =
    "WITH d AS (SELECT " + kDeliveryColumns +
    " FROM webhook_deliveries WHERE state = $1 ORDER BY delivery_id DESC LIMIT $2" + kWithAttempts;
const std::string kPendingEndpoints =
    "SELECT DISTINCT endpoint FROM webhook_deliveries WHERE state = 'pending' ORDER BY endpoint";

constexpr int kDeliveryColumnCount = 12;

using store_sql::nullable;


// Row `r` of a statement whose first columns are the delivery columns.
WebhookDeliveryRecord deliveryFromRow(const PgResult& q, int r) {
  WebhookDeliveryRecord d;
  d.delivery_id = q.int64(r, 0);
  d.event_id = q.text(r, 1);
  d.endpoint = q.text(r, 2);
  d.event_type = q.text(r, 3);
  d.body = q.text(r, 4);
  d.created_at = q.int64(r, 5);
  d.next_attempt_at = q.int64(r, 6);
  d.attempts = q.int32(r, 7);
  const std::string state = q.text(r, 8);
  const auto parsed = parseDeliveryState(state);
  if (!parsed) throw StoreError("unknown delivery state '" + state + "' in the store");
  d.state = *parsed;
  d.last_error = q.optText(r, 9);
  d.last_status = q.optInt32(r, 10);
  d.finished_at = q.optInt64(r, 11);
  return d;
}

// The rows of kDeliveries or kDeliveriesInState, one record per delivery with its attempts.
std::vector<WebhookDeliveryRecord> deliveriesWithAttempts(const PgResult& q) {
  std::vector<WebhookDeliveryRecord> out;
  for (int r = 0; r < q.rows(); ++r) {
    if (out.empty() || out.back().delivery_id != q.int64(r, 0)) {
      out.push_back(deliveryFromRow(q, r));
    }
    constexpr int a = kDeliveryColumnCount;
    if (q.isNull(r, a)) continue;  // no attempt yet
    WebhookAttemptRecord attempt;
    attempt.attempt = q.int32(r, a);
    attempt.started_at = q.int64(r, a + 1);
    attempt.duration_ms = q.int64(r, a + 2);
    attempt.http_status = q.optInt32(r, a + 3);
    attempt.error = q.optText(r, a + 4);
    out.back().attempt_log.push_back(std::move(attempt));
  }
  return out;
}

}  // namespace

std::vector<WebhookDeliveryRecord> PostgresJobStore::dueWebhookDeliveries(
    const std::string& endpoint, Micros now, int limit) {
  std::vector<WebhookDeliveryRecord> due;
  if (cluster_) {
    // One at a time: a claim waits for the attempts before it, so it must not wait long.
    withReader("cannot claim the due webhook deliveries", [&](PgConnection& c) {
      const PgResult q = c.run(kClaimDue, {endpoint, std::to_string(now), limitText(std::min(limit, 1)),
                                           std::to_string(now + kClaimWindow)});
      due.clear();
      for (int r = 0; r < q.rows(); ++r) due.push_back(deliveryFromRow(q, r));
    });
    return due;
  }
  withReader("cannot read the due webhook deliveries", [&](PgConnection& c) {
    const PgResult q = c.run(kDue, {endpoint, std::to_string(now), limitText(limit)});
    due.clear();
    for (int r = 0; r < q.rows(); ++r) due.push_back(deliveryFromRow(q, r));
  });
  return due;
}

std::optional<Micros> PostgresJobStore::nextWebhookDue(const std::string& endpoint) {
  std::optional<Micros> next;
  withReader("cannot read the next webhook delivery", [&](PgConnection& c) {
    const PgResult q = c.run(kNextDue, {endpoint});
    next = q.rows() == 0 ? std::nullopt : q.optInt64(0, 0);
  });
  return next;
}

void PostgresJobStore::recordWebhookAttempt(std::int64_t delivery_id,
                                            const WebhookAttemptRecord& attempt,
                                            DeliveryState state, Micros next_attempt_at) {
  guarded(*settings_, "cannot record the webhook attempt", [&] {
    inTransaction(*pool_, *settings_, [&](Session& session) {
      Poco::Int64 id = delivery_id;
      // As SQLite's INSERT OR REPLACE: a rewritten attempt replaces the row.
      session << "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, "
                 "http_status, error) VALUES ($1, $2, $3, $4, $5, $6) "
                 "ON CONFLICT (delivery_id, attempt) DO UPDATE SET "
                 "started_at = excluded.started_at, duration_ms = excluded.duration_ms, "
                 "http_status = excluded.http_status, error = excluded.error",
          bind(id), bind(attempt.attempt), bind(attempt.started_at),
          bind(static_cast<Poco::Int64>(attempt.duration_ms)), bind(nullable(attempt.http_status)),
          bind(storable(attempt.error)), Poco::Data::Keywords::now;
      const std::optional<Micros> finished =
          state == DeliveryState::kPending
              ? std::nullopt
              : std::optional<Micros>(attempt.started_at + attempt.duration_ms * 1000);
      // A delivery ended meanwhile (its endpoint was removed) stays ended unless this attempt
      // delivered it after all: the receiver has it, and the outbox says so.
      session << "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, "
                 "last_status = $4, last_error = $5, finished_at = $6 WHERE delivery_id = $7 AND "
                 "(state = 'pending' OR $1 = 'delivered')",
          bind(std::string(toString(state))), bind(attempt.attempt), bind(next_attempt_at),
          bind(nullable(attempt.http_status)), bind(storable(attempt.error)),
          bind(nullable(finished)), bind(id), Poco::Data::Keywords::now;
      return true;
    });
  });
}

std::vector<WebhookDeliveryRecord> PostgresJobStore::webhookDeliveries(
    int limit, std::optional<DeliveryState> state) {
  std::vector<WebhookDeliveryRecord> deliveries;
  withReader("cannot read the webhook deliveries", [&](PgConnection& c) {
    deliveries = deliveriesWithAttempts(
        state ? c.run(kDeliveriesInState, {std::string(toString(*state)), limitText(limit)})
              : c.run(kDeliveries, {limitText(limit)}));
  });
  return deliveries;
}

std::vector<std::string> PostgresJobStore::pendingWebhookEndpoints() {
  std::vector<std::string> endpoints;
  withReader("cannot read the webhook endpoints", [&](PgConnection& c) {
    const PgResult q = c.run(kPendingEndpoints);
    endpoints.clear();
    for (int r = 0; r < q.rows(); ++r) endpoints.push_back(q.text(r, 0));
  });
  return endpoints;
}

int PostgresJobStore::abandonWebhookDeliveries(const std::string& endpoint,
                                               const std::string& error, Micros now) {
  return guarded(*settings_, "cannot end the webhook deliveries", [&] {
    int ended = 0;
    inTransaction(*pool_, *settings_, [&](Session& session) {
      Statement update(session);
      update << "UPDATE webhook_deliveries SET state = 'failed', last_error = $1, "
                "finished_at = $2 WHERE endpoint = $3 AND state = 'pending'",
          useRef(error), bind(now), useRef(endpoint);
      ended = static_cast<int>(update.execute());
      return true;
    });
    return ended;
  });
}

int PostgresJobStore::pruneWebhookDeliveries(Micros before) {
  return guarded(*settings_, "cannot delete old webhook deliveries", [&] {
    int deleted = 0;
    inTransaction(*pool_, *settings_, [&](Session& session) {
      session << "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT delivery_id FROM "
                 "webhook_deliveries WHERE state <> 'pending' AND finished_at < $1)",
          bind(before), Poco::Data::Keywords::now;
      Statement remove(session);
      remove << "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1",
          bind(before);
      deleted = static_cast<int>(remove.execute());
      return true;
    });
    return deleted;
  });
}

}  // namespace collectord
