#pragma once

// What the SQLite store's source files share for writes through Poco::Data: sessions from the
// pool, transactions, durability, and the one error type. Internal to the store.

#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Exception.h>
#include <Poco/Logger.h>

#include <exception>
#include <string>

#include "job_store.h"

namespace collectord::sqlite {

// A pooled session that waits up to 10 s for the write lock.
inline Poco::Data::Session openSession(Poco::Data::SessionPool& pool) {
  Poco::Data::Session session = pool.get();
  session.setConnectionTimeout(10);  // seconds to wait for the write lock
  return session;
}

// How a write transaction meets the disk. kSynced (synchronous = FULL): the commit is on disk
// when it returns; for what the API acknowledges, a trigger's new batch. kOrdered (synchronous
// = NORMAL, which in WAL mode syncs at checkpoints, not at each commit): a crash of collectord
// loses nothing, a power loss may lose the last commits; for the stream of job-state updates,
// where an fsync per job end would bound the spawn rate by the disk's sync latency.
enum class Durability { kSynced, kOrdered };

// A pooled session set up for a write; the setting is per connection, so every write sets it.
inline Poco::Data::Session openForWrite(Poco::Data::SessionPool& pool, Durability durability) {
  Poco::Data::Session session = openSession(pool);
  session << (durability == Durability::kSynced ? "PRAGMA synchronous = FULL"
                                                : "PRAGMA synchronous = NORMAL"),
      Poco::Data::Keywords::now;
  return session;
}

// Runs `work` inside a transaction on `session`, rolling back when it throws.
template <typename Work>
void inTransaction(Poco::Data::Session& session, Work&& work) {
  session.begin();
  try {
    work();
    session.commit();
  } catch (...) {
    // SQLite ends the transaction itself on some failures (SQLITE_FULL in a commit): a failing
    // rollback must not hide the error that matters.
    try {
      session.rollback();
    } catch (const Poco::Exception& e) {
      Poco::Logger::get("collectord.store").debug("rollback: %s", e.displayText());
    }
    throw;
  }
}

// As inTransaction, for a transaction that reads before it writes: it takes the write lock
// first (BEGIN IMMEDIATE), waiting for another writer as long as the session allows. A deferred
// transaction that has read cannot wait: when another connection writes meanwhile, SQLite
// answers "database is locked" at once, and the webhook sender writes beside the supervisor.
template <typename Work>
void inWriteTransaction(Poco::Data::Session& session, Work&& work) {
  session << "BEGIN IMMEDIATE", Poco::Data::Keywords::now;
  try {
    work();
    session << "COMMIT", Poco::Data::Keywords::now;
  } catch (...) {
    try {
      session << "ROLLBACK", Poco::Data::Keywords::now;
    } catch (const Poco::Exception& e) {
      Poco::Logger::get("collectord.store").debug("rollback: %s", e.displayText());
    }
    throw;
  }
}

// Turns any Poco failure into the store's one error type; module edge for Poco::Data.
template <typename Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const StoreError&) {
    throw;
  } catch (const Poco::Exception& e) {
    throw StoreError(std::string(what) + ": " + e.displayText());
  } catch (const std::exception& e) {
    throw StoreError(std::string(what) + ": " + e.what());
  }
}

}  // namespace collectord::sqlite
