// The webhook outbox of SqliteJobStore (see webhook_store.h). Its rows are written by save(), in
// the transaction of the state change that causes them; this file holds what the senders and the
// API do with them. None of it is on the path of a status request, so it all goes through
// Poco::Data.
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Nullable.h>

#include <array>

#include "sqlite_job_store.h"
#include "sqlite_support.h"
#include "store_sql.h"

namespace collectord {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

namespace {

constexpr std::array<std::string_view, 3> kStateNames = {"pending", "delivered", "failed"};

using store_sql::kDeliveryColumns;

std::optional<std::string> optString(const Poco::Dynamic::Var& v) {
  return v.isEmpty() ? std::nullopt : std::optional<std::string>(v.convert<std::string>());
}
std::optional<int> optInt(const Poco::Dynamic::Var& v) {
  return v.isEmpty() ? std::nullopt : std::optional<int>(v.convert<int>());
}
std::optional<Micros> optMicros(const Poco::Dynamic::Var& v) {
  return v.isEmpty() ? std::nullopt : std::optional<Micros>(v.convert<Poco::Int64>());
}

// The rows of a statement that selected kDeliveryColumns.
std::vector<WebhookDeliveryRecord> deliveriesOf(Statement& select) {
  RecordSet rows(select);
  std::vector<WebhookDeliveryRecord> out;
  for (bool more = rows.moveFirst(); more; more = rows.moveNext()) {
    WebhookDeliveryRecord d;
    d.delivery_id = rows.value(0).convert<Poco::Int64>();
    d.event_id = rows.value(1).convert<std::string>();
    d.endpoint = rows.value(2).convert<std::string>();
    d.event_type = rows.value(3).convert<std::string>();
    d.body = rows.value(4).convert<std::string>();
    d.created_at = rows.value(5).convert<Poco::Int64>();
    d.next_attempt_at = rows.value(6).convert<Poco::Int64>();
    d.attempts = rows.value(7).convert<int>();
    const std::string state = rows.value(8).convert<std::string>();
    const auto parsed = parseDeliveryState(state);
    if (!parsed) throw StoreError("unknown delivery state '" + state + "' in the store");
    d.state = *parsed;
    d.last_error = optString(rows.value(9));
    d.last_status = optInt(rows.value(10));
    d.finished_at = optMicros(rows.value(11));
    out.push_back(std::move(d));
  }
  return out;
}

using store_sql::nullable;

}  // namespace

std::string_view toString(DeliveryState state) { return kStateNames[static_cast<int>(state)]; }

std::optional<DeliveryState> parseDeliveryState(std::string_view name) {
  for (std::size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<DeliveryState>(i);
  }
  return std::nullopt;
}

std::vector<WebhookDeliveryRecord> SqliteJobStore::dueWebhookDeliveries(const std::string& endpoint,
                                                                        Micros now, int limit) {
  return sqlite::guarded("cannot read the due webhook deliveries", [&] {
    Session session = sqlite::openSession(*pool_);
    Statement select(session);
    select << "SELECT " << kDeliveryColumns
           << " FROM webhook_deliveries WHERE endpoint = ? AND state = 'pending' AND "
              "next_attempt_at <= ? ORDER BY next_attempt_at, delivery_id LIMIT ?",
        useRef(endpoint), bind(now), bind(limit), Poco::Data::Keywords::now;
    return deliveriesOf(select);
  });
}

std::optional<Micros> SqliteJobStore::nextWebhookDue(const std::string& endpoint) {
  return sqlite::guarded("cannot read the next webhook delivery", [&] {
    Session session = sqlite::openSession(*pool_);
    Poco::Nullable<Poco::Int64> next;
    session << "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE endpoint = ? AND "
               "state = 'pending'",
        useRef(endpoint), into(next), Poco::Data::Keywords::now;
    return next.isNull() ? std::nullopt : std::optional<Micros>(next.value());
  });
}

void SqliteJobStore::recordWebhookAttempt(std::int64_t delivery_id,
                                          const WebhookAttemptRecord& attempt, DeliveryState state,
                                          Micros next_attempt_at) {
  sqlite::guarded("cannot record the webhook attempt", [&] {
    Session session = sqlite::openForWrite(*pool_, sqlite::Durability::kOrdered);
    sqlite::inTransaction(session, [&] {
      Poco::Int64 id = delivery_id;
      session << "INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, started_at, "
                 "duration_ms, http_status, error) VALUES (?,?,?,?,?,?)",
          bind(id), bind(attempt.attempt), bind(attempt.started_at),
          bind(static_cast<Poco::Int64>(attempt.duration_ms)), bind(nullable(attempt.http_status)),
          bind(nullable(attempt.error)), Poco::Data::Keywords::now;
      const std::optional<Micros> finished =
          state == DeliveryState::kPending
              ? std::nullopt
              : std::optional<Micros>(attempt.started_at + attempt.duration_ms * 1000);
      // A delivery ended meanwhile (its endpoint was removed) stays ended unless this attempt
      // delivered it after all: the receiver has it, and the outbox says so.
      const std::string new_state(toString(state));
      session << "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
                 "last_status = ?, last_error = ?, finished_at = ? WHERE delivery_id = ? AND "
                 "(state = 'pending' OR ? = 'delivered')",
          bind(new_state), bind(attempt.attempt), bind(next_attempt_at),
          bind(nullable(attempt.http_status)), bind(nullable(attempt.error)),
          bind(nullable(finished)), bind(id), bind(new_state), Poco::Data::Keywords::now;
    });
  });
}

std::vector<WebhookDeliveryRecord> SqliteJobStore::webhookDeliveries(
    int limit, std::optional<DeliveryState> state) {
  return sqlite::guarded("cannot read the webhook deliveries", [&] {
    Session session = sqlite::openSession(*pool_);
    std::vector<WebhookDeliveryRecord> deliveries;
    // One snapshot for the deliveries and their attempts.
    sqlite::inTransaction(session, [&] {
      Statement select(session);
      select << "SELECT " << kDeliveryColumns << " FROM webhook_deliveries";
      std::string wanted;
      if (state) {
        wanted = std::string(toString(*state));
        select << " WHERE state = ?", useRef(wanted);
      }
      select << " ORDER BY delivery_id DESC LIMIT ?", bind(limit), Poco::Data::Keywords::now;
      deliveries = deliveriesOf(select);
      if (deliveries.empty()) return;
      Statement attempts(session);
      Poco::Int64 oldest = deliveries.back().delivery_id;
      Poco::Int64 newest = deliveries.front().delivery_id;
      attempts << "SELECT delivery_id, attempt, started_at, duration_ms, http_status, error FROM "
                  "webhook_attempts WHERE delivery_id BETWEEN ? AND ? ORDER BY delivery_id, "
                  "attempt",
          bind(oldest), bind(newest), Poco::Data::Keywords::now;
      RecordSet rows(attempts);
      std::map<std::int64_t, WebhookDeliveryRecord*> by_id;
      for (WebhookDeliveryRecord& d : deliveries) by_id[d.delivery_id] = &d;
      for (bool more = rows.moveFirst(); more; more = rows.moveNext()) {
        const auto found = by_id.find(rows.value(0).convert<Poco::Int64>());
        if (found == by_id.end()) continue;  // a delivery in the range but of another state
        WebhookAttemptRecord a;
        a.attempt = rows.value(1).convert<int>();
        a.started_at = rows.value(2).convert<Poco::Int64>();
        a.duration_ms = rows.value(3).convert<Poco::Int64>();
        a.http_status = optInt(rows.value(4));
        a.error = optString(rows.value(5));
        found->second->attempt_log.push_back(std::move(a));
      }
    });
    return deliveries;
  });
}

std::vector<std::string> SqliteJobStore::pendingWebhookEndpoints() {
  return sqlite::guarded("cannot read the webhook endpoints", [&] {
    Session session = sqlite::openSession(*pool_);
    std::vector<std::string> endpoints;
    session << "SELECT DISTINCT endpoint FROM webhook_deliveries WHERE state = 'pending' "
               "ORDER BY endpoint",
        into(endpoints), Poco::Data::Keywords::now;
    return endpoints;
  });
}

int SqliteJobStore::abandonWebhookDeliveries(const std::string& endpoint, const std::string& error,
                                             Micros now) {
  return sqlite::guarded("cannot end the webhook deliveries", [&] {
    Session session = sqlite::openForWrite(*pool_, sqlite::Durability::kOrdered);
    Statement update(session);
    update << "UPDATE webhook_deliveries SET state = 'failed', last_error = ?, finished_at = ? "
              "WHERE endpoint = ? AND state = 'pending'",
        useRef(error), bind(now), useRef(endpoint);
    return static_cast<int>(update.execute());
  });
}

int SqliteJobStore::pruneWebhookDeliveries(Micros before) {
  return sqlite::guarded("cannot delete old webhook deliveries", [&] {
    Session session = sqlite::openForWrite(*pool_, sqlite::Durability::kOrdered);
    int deleted = 0;
    sqlite::inTransaction(session, [&] {
      session << "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT delivery_id FROM "
                 "webhook_deliveries WHERE state <> 'pending' AND finished_at < ?)",
          bind(before), Poco::Data::Keywords::now;
      Statement remove(session);
      remove << "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < ?",
          bind(before);
      deleted = static_cast<int>(remove.execute());
    });
    return deleted;
  });
}

}  // namespace collectord
