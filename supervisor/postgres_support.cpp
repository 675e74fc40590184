#include "postgres_support.h"

#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <limits>
#include <memory>
#include <stdexcept>

namespace collectord::postgres {

namespace {

// Settings collectord always wants unless the URL says otherwise: a bounded wait for a server
// that does not answer, text exchanged as UTF-8 whatever the server's default, and a name in
// pg_stat_activity. A server cut off by the network (no reset, no answer) would otherwise hold
// a query, and the supervision thread with it, until the kernel gives up after many minutes:
// TCP keepalives find an idle connection dead within 25 s, and tcp_user_timeout fails one
// whose sent data stays unacknowledged for 30 s (both are ignored on Unix sockets). A server
// that is there but does not answer (a lock held elsewhere) ends a statement after 30 s; the
// option is written without a space (-cNAME=VALUE), which Poco's connection string cannot hold.
constexpr std::pair<const char*, const char*> kDefaults[] = {
    {"connect_timeout", "10"},   {"client_encoding", "UTF8"},  {"application_name", "collectord"},
    {"keepalives", "1"},         {"keepalives_idle", "10"},    {"keepalives_interval", "5"},
    {"keepalives_count", "3"},   {"tcp_user_timeout", "30000"},
    {"options", "-cstatement_timeout=30000"}};

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Server notices (a table that already exists...) go to the log, not to stderr.
void logNotice(void*, const char* message) {
  Poco::Logger::get("collectord.store").debug("PostgreSQL: %s", trimmed(message));
}

// The password as written in `url` (percent-encoded in a URL), for scrubbing the messages of a
// URL that libpq could not parse; empty when there is none.
std::string rawPassword(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme != std::string::npos) {
    const auto start = scheme + 3;
    const auto authority_end = url.find_first_of("/?", start);
    const std::string authority = url.substr(start, authority_end - start);
    const auto at = authority.rfind('@');
    if (at == std::string::npos) return "";
    const auto colon = authority.find(':');
    return colon < at ? authority.substr(colon + 1, at - colon - 1) : "";
  }
  const auto key = url.find("password=");
  if (key == std::string::npos) return "";
  const auto start = key + 9;
  return url.substr(start, url.find(' ', start) - start);
}

}  // namespace

ConnectionSettings::ConnectionSettings(const std::string& url) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> parsed(
      PQconninfoParse(url.c_str(), &error), &PQconninfoFree);
  if (!parsed) {
    std::string message = error ? trimmed(error) : std::string("out of memory");
    PQfreemem(error);
    // libpq quotes the part it could not parse, which may hold the password.
    const std::string password = rawPassword(url);
    for (std::size_t at = password.empty() ? std::string::npos : message.find(password);
         at != std::string::npos; at = message.find(password, at + 3)) {
      message.replace(at, password.size(), "***");
    }
    throw StoreError(
        "the store URL is not a PostgreSQL URL (postgresql://user:password@host:"
        "port/database): " +
        message);
  }
  std::string user, host, port, dbname;
  for (const PQconninfoOption* o = parsed.get(); o->keyword; ++o) {
    if (!o->val) continue;
    const std::string keyword = o->keyword;
    options_.emplace_back(keyword, o->val);
    if (keyword == "password") password_ = o->val;
    if (keyword == "user") user = o->val;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
  }
  for (const auto& [keyword, value] : kDefaults) {
    bool given = false;
    for (const auto& option : options_) given = given || option.first == keyword;
    if (!given) options_.emplace_back(keyword, value);
  }
  where_ = (user.empty() ? "" : user + "@") + (host.empty() ? "localhost" : host) +
           (port.empty() ? "" : ":" + port) + "/" + (dbname.empty() ? user : dbname);
}

std::string ConnectionSettings::pocoConnectionString() const {
  std::string out;
  for (const auto& [keyword, value] : options_) {
    if (value.find_first_of(" \t\n") != std::string::npos) {
      throw StoreError("the store URL's " + keyword +
                       " holds a space, which Poco's PostgreSQL connector cannot pass on");
    }
    if (!out.empty()) out += ' ';
    out += keyword;
    out += '=';
    for (const char c : value) {
      if (c == '\\' || c == '\'') out += '\\';
      out += c;
    }
  }
  return out;
}

std::string ConnectionSettings::scrub(std::string message) const {
  if (password_.empty()) return message;
  for (std::size_t at = message.find(password_); at != std::string::npos;
       at = message.find(password_, at + 3)) {
    message.replace(at, password_.size(), "***");
  }
  return message;
}

std::string limitText(int limit) {
  return limit < 0 ? std::to_string(std::numeric_limits<std::int64_t>::max())
                   : std::to_string(limit);
}

std::string storable(std::string text) {
  for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at + 3)) {
    text.replace(at, 1, "\xEF\xBF\xBD");
  }
  return text;
}

Poco::Nullable<std::string> storable(const std::optional<std::string>& text) {
  return text ? Poco::Nullable<std::string>(storable(*text)) : Poco::Nullable<std::string>();
}

PgResult::~PgResult() { PQclear(result_); }

int PgResult::rows() const { return PQntuples(result_); }

bool PgResult::isNull(int row, int column) const { return PQgetisnull(result_, row, column) == 1; }

std::string PgResult::text(int row, int column) const {
  return std::string(PQgetvalue(result_, row, column),
                     static_cast<std::size_t>(PQgetlength(result_, row, column)));
}

std::optional<std::string> PgResult::optText(int row, int column) const {
  return isNull(row, column) ? std::nullopt : std::optional<std::string>(text(row, column));
}

std::int64_t PgResult::int64(int row, int column) const {
  const char* begin = PQgetvalue(result_, row, column);
  const char* end = begin + PQgetlength(result_, row, column);
  std::int64_t value = 0;
  const auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop != end || begin == end) {
    throw StoreError(std::string("column ") + PQfname(result_, column) + " holds '" +
                     std::string(begin, end) + "', not an integer");
  }
  return value;
}

std::optional<std::int64_t> PgResult::optInt64(int row, int column) const {
  return isNull(row, column) ? std::nullopt : std::optional<std::int64_t>(int64(row, column));
}

int PgResult::int32(int row, int column) const { return static_cast<int>(int64(row, column)); }

std::optional<int> PgResult::optInt32(int row, int column) const {
  return isNull(row, column) ? std::nullopt : std::optional<int>(int32(row, column));
}

PgConnection::PgConnection(const ConnectionSettings& settings) {
  std::vector<const char*> keywords, values;
  for (const auto& [keyword, value] : settings.options()) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keywords.data(), values.data(), 0);
  if (!conn_) throw std::runtime_error("cannot connect: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    throw std::runtime_error("cannot connect: " + message);
  }
  PQsetNoticeProcessor(conn_, &logNotice, nullptr);
}

PgConnection::~PgConnection() { PQfinish(conn_); }

void PgConnection::fail(std::string_view what, pg_result* result) const {
  std::string message = trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (message.empty()) message = trimmed(PQerrorMessage(conn_));
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state) message += std::string(" (SQLSTATE ") + state + ")";
  PQclear(result);
  throw std::runtime_error(std::string(what) + ": " + message);
}

PgResult PgConnection::run(const std::string& sql,
                           const std::vector<std::optional<std::string>>& params) {
  auto found = prepared_.find(&sql);
  if (found == prepared_.end()) {
    std::string name = "collectord_" + std::to_string(prepared_.size());
    PGresult* prepared =
        PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) fail("cannot prepare", prepared);
    PQclear(prepared);
    found = prepared_.emplace(&sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* result = PQexecPrepared(conn_, found->second.c_str(), static_cast<int>(params.size()),
                                    values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) fail("query failed", result);
  return PgResult(result);
}

void PgConnection::exec(const char* sql) {
  PGresult* result = PQexec(conn_, sql);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) fail("query failed", result);
  PQclear(result);
}

std::vector<PgConnection::Notification> PgConnection::notifications(
    std::chrono::milliseconds wait) {
  std::vector<Notification> out;
  auto take = [&] {
    if (PQconsumeInput(conn_) != 1) fail("connection lost", nullptr);
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back({n->relname, n->extra});
      PQfreemem(n);
    }
  };
  take();
  if (!out.empty()) return out;
  pollfd socket{PQsocket(conn_), POLLIN, 0};
  const int ready = ::poll(&socket, 1, static_cast<int>(wait.count()));
  if (ready > 0) take();
  return out;
}

bool PgConnection::usable() {
  if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  pollfd socket{PQsocket(conn_), POLLIN, 0};
  const int ready = ::poll(&socket, 1, 0);
  if (ready == 0) return true;
  if (ready < 0) return false;
  // An idle connection hears from the server when it goes away (a FATAL message, then the end
  // of the stream) or, rarely, with a notice: read what came, and see whether it is still up.
  return PQconsumeInput(conn_) == 1 && PQstatus(conn_) == CONNECTION_OK;
}

bool PgConnection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

void logNotices(Poco::Data::Session& session) {
  // Poco's PostgreSQL sessions publish their libpq handle as the property "handle".
  auto* handle =
      Poco::AnyCast<Poco::Data::PostgreSQL::SessionHandle*>(session.getProperty("handle"));
  PQsetNoticeProcessor(*handle, &logNotice, nullptr);
}

void requireReachable(const ConnectionSettings& settings) { PgConnection probe(settings); }

Poco::Data::Session beginTransaction(Poco::Data::SessionPool& pool,
                                     const ConnectionSettings& settings) {
  for (int tries = 0;; ++tries) {
    if (pool.idle() == 0) requireReachable(settings);  // get() connects anew
    Poco::Data::Session session = pool.get();
    logNotices(session);
    try {
      session.begin();
      return session;
    } catch (const Poco::Exception& e) {
      if (session.isConnected() || tries > pool.capacity()) throw;
      Poco::Logger::get("collectord.store")
          .debug("dropping a dead pooled session: %s", e.displayText());
    }
  }
}

namespace {

JobStatus statusOf(const std::string& text) {
  const auto status = parseJobStatus(text);
  if (!status) throw StoreError("unknown status '" + text + "' in the store");
  return *status;
}

}  // namespace

// Row `r` of a job statement (store_sql::kJobColumns).
JobRecord jobFromRow(const PgResult& q, int r, int first) {
  JobRecord j;
  j.job_id = q.text(r, first + 0);
  j.batch_id = q.text(r, first + 1);
  j.collector = q.text(r, first + 2);
  j.job_name = q.text(r, first + 3);
  j.status = statusOf(q.text(r, first + 4));
  j.progress_percent = q.optInt32(r, first + 5);
  j.message = q.optText(r, first + 6);
  j.error = q.optText(r, first + 7);
  j.started_at = q.int64(r, first + 8);
  j.updated_at = q.int64(r, first + 9);
  j.ended_at = q.optInt64(r, first + 10);
  j.attempt = q.int32(r, first + 11);
  j.pid = q.optInt32(r, first + 12);
  j.max_attempts = q.int32(r, first + 13);
  j.next_attempt_at = q.optInt64(r, first + 14);
  j.node_id = q.optText(r, first + 15);
  return j;
}

BatchRecord batchFromRow(const PgResult& q, int r, int first) {
  BatchRecord b;
  b.batch_id = q.text(r, first + 0);
  b.status = statusOf(q.text(r, first + 1));
  b.priority = parsePriority(q.text(r, first + 2)).value_or(Priority::kNormal);
  b.progress_percent = q.int32(r, first + 3);
  b.message = q.optText(r, first + 4);
  b.error = q.optText(r, first + 5);
  b.started_at = q.int64(r, first + 6);
  b.updated_at = q.int64(r, first + 7);
  b.ended_at = q.optInt64(r, first + 8);
  b.estimated_completion = q.optInt64(r, first + 9);
  return b;
}

}  // namespace collectord::postgres
