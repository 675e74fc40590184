#include "postgres_server.h"

#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>

#include "daemon_harness.h"
#include "program_runner.h"

namespace collectord::test {

namespace {

const std::string kScript = std::string(COLLECTORD_SOURCE_DIR) + "/scripts/test-postgres.sh";

// Runs the script; returns its stdout without the final newline. Throws with its stderr.
std::string script(const std::string& command, const std::string& dir) {
  Program program({"/bin/bash", kScript, command, dir});
  const std::optional<int> code = program.wait(std::chrono::seconds(120));
  if (code != 0) {
    throw std::runtime_error("scripts/test-postgres.sh " + command + " " + dir + " failed (" +
                             (code ? std::to_string(*code) : std::string("timed out")) +
                             "): " + program.err());
  }
  std::string out = program.out();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Connection connect(const std::string& url) {
  Connection conn(PQconnectdb(url.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to " + url + ": " + PQerrorMessage(conn.get()));
  }
  return conn;
}

}  // namespace

PostgresServer::PostgresServer() {
  char pattern[] = "/tmp/collectord-pg-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  url_ = script("start", dir_);
}

PostgresServer::~PostgresServer() {
  try {
    script("remove", dir_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[postgres] %s\n", e.what());
  }
}

void PostgresServer::stop() { script("stop", dir_); }
void PostgresServer::kill() { script("kill", dir_); }
void PostgresServer::start() { url_ = script("start", dir_); }

std::string queryValue(const std::string& url, const std::string& sql) {
  const Connection conn = connect(url);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  if (status == PGRES_TUPLES_OK && PQntuples(result.get()) > 0) {
    return PQgetvalue(result.get(), 0, 0);
  }
  return "";
}

std::vector<std::vector<std::string>> queryRows(const std::string& url, const std::string& sql,
                                                const std::vector<std::string>& params) {
  const Connection conn = connect(url);
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  std::unique_ptr<PGresult, decltype(&PQclear)> result(
      PQexecParams(conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                   values.data(), nullptr, nullptr, 0),
      &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    throw std::runtime_error(sql + ": " + PQresultErrorMessage(result.get()));
  }
  std::vector<std::vector<std::string>> rows;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    std::vector<std::string> fields;
    for (int column = 0; column < PQnfields(result.get()); ++column) {
      fields.push_back(PQgetisnull(result.get(), row, column) ? "<null>"
                                                              : PQgetvalue(result.get(), row, column));
    }
    rows.push_back(std::move(fields));
  }
  return rows;
}

OpenTransaction::OpenTransaction(const std::string& url, const std::string& sql) {
  Connection conn = connect(url);
  for (const std::string& statement : {std::string("BEGIN"), sql}) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), statement.c_str()),
                                                         &PQclear);
    if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error(statement + ": " + PQresultErrorMessage(result.get()));
    }
  }
  conn_ = conn.release();
}

OpenTransaction::~OpenTransaction() {
  PQclear(PQexec(static_cast<PGconn*>(conn_), "ROLLBACK"));
  PQfinish(static_cast<PGconn*>(conn_));
}

std::string createDatabase(const std::string& server_url, std::string_view prefix) {
  static thread_local std::mt19937_64 random(std::random_device{}());
  const std::string name = std::string(prefix) + "_" + std::to_string(random() % 1000000000000ULL);
  queryValue(server_url, "CREATE DATABASE " + name);
  const auto slash = server_url.rfind('/');
  return server_url.substr(0, slash + 1) + name;
}

std::optional<std::string> sharedPostgres() {
  const char* file = std::getenv("COLLECTORD_TEST_POSTGRES");
  if (!file || !*file) return std::nullopt;
  std::optional<std::string> url = readFile(file);
  if (!url) throw std::runtime_error(std::string("COLLECTORD_TEST_POSTGRES: cannot read ") + file);
  while (!url->empty() && (url->back() == '\n' || url->back() == ' ')) url->pop_back();
  return url;
}

}  // namespace collectord::test
