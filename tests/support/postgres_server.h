#pragma once

// Real PostgreSQL servers for the tests (Debian's postgresql package, driven by
// scripts/test-postgres.sh): one of a test's own, which it may stop, kill and restart, or the
// one the whole ctest run shares (the `postgres` fixture), in which each test gets an empty
// database of its own.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace collectord::test {

// A server in a fresh folder of its own, started by the constructor (throws std::runtime_error
// with the script's output when it cannot start) and removed, files and all, by the destructor.
class PostgresServer {
 public:
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://collectord@127.0.0.1:PORT/postgres, the maintenance database.
  const std::string& url() const { return url_; }
  // Fast shutdown (connections closed, state written); start() brings it back on the same port.
  void stop();
  // Immediate shutdown, as a crash of the server would be.
  void kill();
  void start();

 private:
  std::string dir_;
  std::string url_;
};

// Creates an empty database named PREFIX_RANDOM on the server whose maintenance database is at
// `server_url` and returns its URL. Throws std::runtime_error with the server's message.
std::string createDatabase(const std::string& server_url, std::string_view prefix = "t");

// Runs one SQL command on `url`; returns the first column of the first row (empty when none).
// Throws std::runtime_error with the server's message.
std::string queryValue(const std::string& url, const std::string& sql);

// Every row of `sql` on `url` as text (NULL as "<null>"); `params` fill $1, $2, ...
// Throws std::runtime_error with the server's message.
std::vector<std::vector<std::string>> queryRows(const std::string& url, const std::string& sql,
                                                const std::vector<std::string>& params = {});

// A connection of its own with a transaction left open after running `sql` (e.g. a LOCK
// TABLE), rolled back and closed on destruction. Throws std::runtime_error with the server's
// message.
class OpenTransaction {
 public:
  OpenTransaction(const std::string& url, const std::string& sql);
  ~OpenTransaction();
  OpenTransaction(const OpenTransaction&) = delete;
  OpenTransaction& operator=(const OpenTransaction&) = delete;

 private:
  void* conn_;  // PGconn
};

// The URL of the shared server's maintenance database when the tests run against PostgreSQL
// (the environment variable COLLECTORD_TEST_POSTGRES names the file holding it, as the ctest
// fixture writes it), else nullopt: the tests then use SQLite.
std::optional<std::string> sharedPostgres();

}  // namespace collectord::test
