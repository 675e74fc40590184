#pragma once

// What the PostgreSQL store's source files share: the connection settings taken from the
// store's URL, libpq connections for the read path, transactions on Poco's pooled sessions for
// writes, and the one error type. Internal to the store.

#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Nullable.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "job_store.h"

struct pg_conn;
struct pg_result;

namespace collectord::postgres {

// Where and how to connect, from a postgresql:// URL or a key=value conninfo string, with
// collectord's defaults (connect_timeout=10, client_encoding=UTF8, application_name=collectord)
// where the URL says nothing. Throws StoreError when libpq cannot parse it.
class ConnectionSettings {
 public:
  explicit ConnectionSettings(const std::string& url);

  // "user@host:port/database", for messages: never the password.
  const std::string& where() const { return where_; }
  // The settings as keyword and value, for PQconnectdbParams.
  const std::vector<std::pair<std::string, std::string>>& options() const { return options_; }
  // The settings as Poco's PostgreSQL connector takes them. Poco 1.11 parses the string itself:
  // it rejects URLs, and splits at every space without honouring libpq's quotes, so a value
  // with a space cannot pass (throws StoreError); backslashes and quotes are escaped for libpq.
  std::string pocoConnectionString() const;
  // `message` with the password, where it appears, replaced by "***".
  std::string scrub(std::string message) const;

 private:
  std::vector<std::pair<std::string, std::string>> options_;
  std::string where_;
  std::string password_;
};

// A LIMIT as a text parameter; a negative limit means none, as in SQLite (PostgreSQL rejects
// one).
std::string limitText(int limit);

// PostgreSQL's text cannot hold a NUL character, which SQLite's can and a collector may send
// (as \u0000 in a message), as may an error text from elsewhere. Stored as U+FFFD instead:
// refused, it would fail the write, and the writer would retry that same row, and every change
// after it, for ever. Every text the PostgreSQL store writes from outside goes through these.
std::string storable(std::string text);
Poco::Nullable<std::string> storable(const std::optional<std::string>& text);

// A result of PgConnection::run, freed when it goes. Cells are read as the text libpq returns.
class PgResult {
 public:
  explicit PgResult(pg_result* result) : result_(result) {}
  ~PgResult();
  PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  PgResult& operator=(PgResult&&) = delete;

  int rows() const;
  bool isNull(int row, int column) const;
  std::string text(int row, int column) const;
  std::optional<std::string> optText(int row, int column) const;
  // A BIGINT cell; throws StoreError when the cell is not an integer.
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optInt64(int row, int column) const;
  int int32(int row, int column) const;
  std::optional<int> optInt32(int row, int column) const;

 private:
  pg_result* result_;
};

// Row `r` of a job statement (store_sql::kJobColumns) and of a batch statement (kBatchColumns),
// their columns from column `first` on.
JobRecord jobFromRow(const PgResult& q, int r, int first = 0);
BatchRecord batchFromRow(const PgResult& q, int r, int first = 0);

// A libpq connection of the read path and the statements prepared on it. Poco 1.11's connector
// prepares, describes, runs and deallocates every statement anew (four round trips: about
// 340 µs for an indexed lookup on loopback, against 95 µs for libpq's one); so reads, the path
// of every status request, go through libpq on kept connections with statements prepared once.
// Used by one thread at a time. Failures throw std::runtime_error with the server's message;
// the store turns them into StoreError.
class PgConnection {
 public:
  explicit PgConnection(const ConnectionSettings& settings);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql`, one of the store's constant statements (they outlive every connection: the
  // statement is prepared on its first use and kept under its address), with `params` as text
  // (nullopt: NULL).
  PgResult run(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
  // Runs a statement without parameters unprepared (BEGIN, COMMIT, LISTEN ...).
  void exec(const char* sql);
  // A NOTIFY this connection LISTENs to: channel and payload.
  struct Notification {
    std::string channel;
    std::string payload;
  };
  // The notifications that arrive within `wait` (those already there at once). Throws when the
  // connection fails.
  std::vector<Notification> notifications(std::chrono::milliseconds wait);
  // False when the connection cannot serve another query: broken, inside a transaction, or
  // closed by the server while idle (a restart of the server closes every connection; the
  // socket then reads as ended, which this sees without a round trip).
  bool usable();
  // True once libpq has seen the connection fail.
  bool broken() const;

 private:
  [[noreturn]] void fail(std::string_view what, pg_result* result) const;

  pg_conn* conn_ = nullptr;
  std::unordered_map<const std::string*, std::string> prepared_;  // statement -> its name
};

// A pooled session with a transaction begun on it, its server notices sent to the log (Poco
// leaves libpq's default, which prints them on stderr). Poco's SessionPool keeps a session whose
// server went away: it asks libpq only for the connection's status, which stays "OK" until the
// connection is used. So when BEGIN fails because the connection is dead, that session is
// dropped (the pool forgets a disconnected session when it comes back) and the next one taken,
// until a live one begins or a new connection fails. BEGIN is one round trip, and nothing has
// been written when it fails, so trying again is safe.
//
// Before the pool opens a new connection, `settings` are tried with libpq directly: Poco 1.11's
// PostgreSQL session leaks its libpq connection (about 70 KB) when connecting fails, and while
// the server is away every retried write would open one.
Poco::Data::Session beginTransaction(Poco::Data::SessionPool& pool,
                                     const ConnectionSettings& settings);

// Throws std::runtime_error ("cannot connect: ...") unless a connection to `settings` opens; the
// test connection is closed again. Call before letting Poco connect (see beginTransaction).
void requireReachable(const ConnectionSettings& settings);

// Sends the server's notices on `session` (a Poco PostgreSQL session) to the log.
void logNotices(Poco::Data::Session& session);

// Runs `work(session)` in a transaction on a live pooled session (beginTransaction); commits when it returns true,
// rolls back when it returns false or throws.
template <typename Work>
void inTransaction(Poco::Data::SessionPool& pool, const ConnectionSettings& settings,
                   Work&& work) {
  Poco::Data::Session session = beginTransaction(pool, settings);
  bool keep = false;
  try {
    keep = work(session);
  } catch (...) {
    // A rollback that fails (the connection is gone) must not hide the error that matters.
    try {
      session.rollback();
    } catch (const Poco::Exception& e) {
      Poco::Logger::get("collectord.store").debug("rollback: %s", e.displayText());
    }
    throw;
  }
  if (keep) {
    session.commit();
  } else {
    session.rollback();
  }
}

// Turns any failure into the store's one error type, saying what failed and on which database,
// without the password; module edge for Poco::Data and libpq.
template <typename Fn>
auto guarded(const ConnectionSettings& settings, const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const StoreError&) {
    throw;
  } catch (const Poco::Exception& e) {
    throw StoreError(std::string(what) + " (PostgreSQL " + settings.where() +
                     "): " + settings.scrub(e.displayText()));
  } catch (const std::exception& e) {
    throw StoreError(std::string(what) + " (PostgreSQL " + settings.where() +
                     "): " + settings.scrub(e.what()));
  }
}

}  // namespace collectord::postgres
