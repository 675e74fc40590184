#include "api_checks.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/String.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Timestamps must be recent: this catches local time sent as UTC, seconds sent as micros, etc.
constexpr std::int64_t kPastSlackMicros = 600LL * 1000000;
constexpr std::int64_t kFutureSlackMicros = 5LL * 1000000;
// duration_seconds has millisecond precision; both timestamps have microsecond precision.
constexpr double kDurationTolerance = 0.0015;

const std::set<std::string> kStatuses = {"queued", "running", "completed", "failed", "cancelled"};

bool isTerminalStatus(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

std::string compact(const Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

// Collects every problem found in one JSON object, then reports them together.
class Problems {
 public:
  Problems(const Object& object, std::string what) : object_(object), what_(std::move(what)) {}

  void add(const std::string& problem) { problems_.push_back(problem); }
  bool empty() const { return problems_.empty(); }

  bool has(const std::string& key) {
    if (object_.has(key)) return true;
    add("'" + key + "' is missing");
    return false;
  }
  bool isNull(const std::string& key) { return object_.has(key) && object_.get(key).isEmpty(); }

  std::optional<std::string> string(const std::string& key) {
    if (!has(key)) return std::nullopt;
    auto value = object_.get(key);
    if (!value.isString()) {
      add("'" + key + "' should be a string, is " + jsonOf(object_, key));
      return std::nullopt;
    }
    return value.extract<std::string>();
  }
  // A string or null; nullopt for null (and for problems, which are recorded).
  std::optional<std::string> stringOrNull(const std::string& key) {
    if (!has(key) || isNull(key)) return std::nullopt;
    return string(key);
  }
  std::optional<std::int64_t> integer(const std::string& key, std::int64_t low, std::int64_t high) {
    if (!has(key)) return std::nullopt;
    auto value = object_.get(key);
    if (!value.isInteger() || value.isBoolean()) {
      add("'" + key + "' should be an integer, is " + jsonOf(object_, key));
      return std::nullopt;
    }
    auto number = value.convert<std::int64_t>();
    if (number < low || number > high) {
      add("'" + key + "' should be within " + std::to_string(low) + ".." + std::to_string(high) +
          ", is " + std::to_string(number));
    }
    return number;
  }
  std::optional<std::int64_t> integerOrNull(const std::string& key, std::int64_t low,
                                            std::int64_t high) {
    if (!has(key) || isNull(key)) return std::nullopt;
    return integer(key, low, high);
  }
  std::optional<double> numberOrNull(const std::string& key) {
    if (!has(key) || isNull(key)) return std::nullopt;
    auto value = object_.get(key);
    if (!value.isNumeric() || value.isBoolean()) {
      add("'" + key + "' should be a number or null, is " + jsonOf(object_, key));
      return std::nullopt;
    }
    return value.convert<double>();
  }
  // A YYYY-MM-DDTHH:MM:SS.ffffffZ timestamp close to now, as microseconds.
  std::optional<std::int64_t> timestamp(const std::string& key) {
    auto text = string(key);
    if (!text) return std::nullopt;
    if (!isMicroTimestamp(*text)) {
      add("'" + key + "' should look like 2025-10-06T15:16:10.552780Z, is '" + *text + "'");
      return std::nullopt;
    }
    auto micros = *parseTimestamp(*text);
    checkRecent(key, micros);
    return micros;
  }
  std::optional<std::int64_t> timestampOrNull(const std::string& key) {
    if (!has(key) || isNull(key)) return std::nullopt;
    return timestamp(key);
  }
  std::optional<std::string> status(const std::string& key) {
    auto text = string(key);
    if (text && kStatuses.count(*text) == 0) {
      add("'" + key + "' should be a job status, is '" + *text + "'");
      return std::nullopt;
    }
    return text;
  }
  void checkRecent(const std::string& key, std::int64_t micros) {
    auto now = nowMicros();
    if (micros < now - kPastSlackMicros || micros > now + kFutureSlackMicros) {
      add("'" + key + "' is not close to the current UTC time");
    }
  }

  ::testing::AssertionResult result() const {
    if (problems_.empty()) return ::testing::AssertionSuccess();
    auto failure = ::testing::AssertionFailure();
    failure << what_ << " has " << problems_.size() << " problem(s):";
    for (const auto& problem : problems_) failure << "\n  - " << problem;
    failure << "\n  in " << compact(object_);
    return failure;
  }

 private:
  const Object& object_;
  std::string what_;
  std::vector<std::string> problems_;
};

// The fields every job view shares (batch item, job status, latest item, history item), and the
// relations between them. Returns the status when it is valid.
std::optional<std::string> checkJobFields(Problems& p, const Object& job) {
  if (auto id = p.string("job_id"); id && !isJobId(*id)) {
    p.add("'job_id' should match ^[a-z0-9]{2}_[0-9]{8}$, is '" + *id + "'");
  }
  if (auto name = p.string("job_name"); name && name->empty()) p.add("'job_name' is empty");
  auto status = p.status("status");
  auto started = p.timestamp("started_at");
  auto updated = p.timestamp("updated_at");
  auto ended = p.timestampOrNull("ended_at");
  auto progress = p.integerOrNull("progress_percent", 0, 100);
  p.stringOrNull("message");
  auto error = p.stringOrNull("error");
  auto duration = p.numberOrNull("duration_seconds");

  if (started && updated && *updated < *started) p.add("'updated_at' is before 'started_at'");
  if (status && isTerminalStatus(*status)) {
    if (p.isNull("ended_at")) p.add("'ended_at' is null but the job is " + *status);
    if (p.isNull("duration_seconds")) {
      p.add("'duration_seconds' is null but the job is " + *status);
    }
    if (started && ended && *ended < *started) p.add("'ended_at' is before 'started_at'");
    if (updated && ended && *updated < *ended) p.add("'updated_at' is before 'ended_at'");
    if (duration && std::fabs(*duration * 1000 - std::round(*duration * 1000)) > 1e-6) {
      p.add("'duration_seconds' should have millisecond precision, is " +
            jsonOf(job, "duration_seconds"));
    }
    if (started && ended && duration) {
      double expected = static_cast<double>(*ended - *started) / 1e6;
      if (std::fabs(*duration - expected) > kDurationTolerance) {
        p.add("'duration_seconds' is " + std::to_string(*duration) + ", ended_at - started_at is " +
              std::to_string(expected));
      }
    }
    if (*status == "completed") {
      if (!progress || *progress != 100) p.add("a completed job should have progress_percent 100");
      if (!p.isNull("error")) p.add("a completed job should have error null");
    }
    if ((*status == "failed" || *status == "cancelled") && (!error || error->empty())) {
      p.add("a " + *status + " job should say why in 'error'");
    }
  } else if (status) {
    if (job.has("ended_at") && !p.isNull("ended_at")) {
      p.add("'ended_at' should be null while " + *status);
    }
    if (job.has("duration_seconds") && !p.isNull("duration_seconds")) {
      p.add("'duration_seconds' should be null while " + *status);
    }
  }
  return status;
}

void checkBatchSummaryOfJob(Problems& p) {
  if (auto id = p.string("batch_id"); id && !isBatchId(*id)) {
    p.add("'batch_id' should match ^bc_[0-9]{8}$, is '" + *id + "'");
  }
  auto batch_status = p.status("batch_status");
  p.integer("batch_progress_percent", 0, 100);
  auto estimate = p.stringOrNull("estimated_completion");
  if (estimate && !isSecondTimestamp(*estimate)) {
    p.add("'estimated_completion' should look like 2025-10-06T15:17:45Z, is '" + *estimate + "'");
  }
  if (batch_status && isTerminalStatus(*batch_status) && !p.isNull("estimated_completion")) {
    p.add("'estimated_completion' should be null once the batch is " + *batch_status);
  }
  if (auto message = p.string("batch_message"); message && message->empty()) {
    p.add("'batch_message' is empty");
  }
}

std::string plural(std::size_t n) { return n == 1 ? "collector" : "collectors"; }

}  // namespace

std::string jsonOf(const Object& object, const std::string& key) {
  if (!object.has(key)) return "<missing>";
  Poco::Dynamic::Var value = object.get(key);
  if (value.isEmpty()) return "null";
  if (value.isBoolean()) return value.convert<bool>() ? "true" : "false";
  if (value.isString()) return jsonString(value.extract<std::string>());
  if (value.isInteger()) return value.convert<std::string>();
  if (value.isNumeric()) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6f", value.convert<double>());
    std::string text = buffer;
    while (text.size() > 1 && text.back() == '0' && text[text.size() - 2] != '.') text.pop_back();
    return text;
  }
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(value, out);
  return out.str();
}

std::string jsonString(std::string_view text) {
  std::ostringstream out;
  Poco::JSON::Stringifier::formatString(std::string(text), out);
  return out.str();
}

std::vector<Object::Ptr> objectsOf(const Object& object, const std::string& key) {
  if (!object.isArray(key)) throw std::runtime_error("'" + key + "' is not an array");
  auto array = object.getArray(key);
  std::vector<Object::Ptr> result;
  for (unsigned i = 0; i < array->size(); ++i) {
    if (!array->isObject(i)) {
      throw std::runtime_error("'" + key + "[" + std::to_string(i) + "]' is not an object");
    }
    result.push_back(array->getObject(i));
  }
  return result;
}

::testing::AssertionResult IsJsonResponse(const HttpResponse& response, int status) {
  auto failure = ::testing::AssertionFailure();
  bool ok = true;
  if (response.status != status) {
    ok = false;
    failure << "expected HTTP " << status << "; ";
  }
  auto type = response.header("Content-Type").value_or("");
  if (Poco::toLower(type).rfind("application/json", 0) != 0) {
    ok = false;
    failure << "Content-Type is '" << type << "', not application/json; ";
  }
  if (!response.object()) {
    ok = false;
    failure << "the body is not a JSON object; ";
  }
  if (ok) return ::testing::AssertionSuccess();
  return failure << "got " << response.describe();
}

::testing::AssertionResult IsErrorResponse(const HttpResponse& response, int status,
                                           const std::string& message) {
  auto json = IsJsonResponse(response, status);
  if (!json) return json;
  auto object = response.object();
  if (object->size() != 1 || jsonOf(*object, "error") != jsonString(message)) {
    return ::testing::AssertionFailure() << "expected exactly {\"error\": " << jsonString(message)
                                         << "}, got " << response.describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsErrorResponseStartingWith(const HttpResponse& response, int status,
                                                       const std::string& prefix) {
  auto json = IsJsonResponse(response, status);
  if (!json) return json;
  auto object = response.object();
  std::string error = stringField(*object, "error");
  if (object->size() != 1 || error.rfind(prefix, 0) != 0 || error.size() <= prefix.size()) {
    return ::testing::AssertionFailure() << "expected exactly {\"error\": \"" << prefix
                                         << "<detail>\"}, got " << response.describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult HasTriggerShape(const Object& body,
                                           const std::vector<std::string>& collectors,
                                           const std::vector<std::string>& job_names) {
  Problems p(body, "trigger response");
  if (auto id = p.string("batch_id"); id && !isBatchId(*id)) {
    p.add("'batch_id' should match ^bc_[0-9]{8}$, is '" + *id + "'");
  }
  if (!body.isArray("collectors")) {
    p.add("'collectors' should be an array");
    return p.result();
  }
  auto jobs = body.getArray("collectors");
  if (jobs->size() != collectors.size()) {
    p.add("'collectors' should have " + std::to_string(collectors.size()) + " items");
    return p.result();
  }
  std::set<std::string> ids;
  for (unsigned i = 0; i < jobs->size(); ++i) {
    auto job = jobs->getObject(i);
    if (!job) {
      p.add("collectors[" + std::to_string(i) + "] is not an object");
      continue;
    }
    Problems item(*job, "collectors[" + std::to_string(i) + "]");
    auto name = item.string("job_name");
    if (name && *name != job_names[i]) {
      item.add("'job_name' should be '" + job_names[i] + "', is '" + *name + "'");
    }
    auto id = item.string("job_id");
    std::string prefix = Poco::toLower(collectors[i].substr(0, 2)) + "_";
    if (id && (!isJobId(*id) || id->rfind(prefix, 0) != 0)) {
      item.add("'job_id' should be " + prefix + " and 8 digits, is '" + *id + "'");
    }
    if (id && !ids.insert(*id).second) item.add("'job_id' " + *id + " is not unique");
    auto status = item.string("status");
    if (status && *status != "queued")
      item.add("'status' should be 'queued', is '" + *status + "'");
    item.timestamp("started_at");
    if (!item.empty()) p.add(item.result().message());
  }
  return p.result();
}

::testing::AssertionResult HasBatchJobShape(const Object& job) {
  Problems p(job, "batch collectors[] item");
  checkJobFields(p, job);
  return p.result();
}

::testing::AssertionResult HasJobStatusShape(const Object& job) {
  Problems p(job, "job status");
  checkJobFields(p, job);
  checkBatchSummaryOfJob(p);
  return p.result();
}

::testing::AssertionResult HasHistoryItemShape(const Object& item) {
  Problems p(item, "history item");
  auto status = checkJobFields(p, item);
  if (auto id = p.string("batch_id"); id && !isBatchId(*id)) {
    p.add("'batch_id' should match ^bc_[0-9]{8}$, is '" + *id + "'");
  }
  auto duration_text = p.stringOrNull("duration");
  if (status && isTerminalStatus(*status)) {
    if (p.isNull("duration")) p.add("'duration' is null but the job is " + *status);
    if (duration_text) {
      auto seconds = parseDuration(*duration_text);
      auto exact = p.numberOrNull("duration_seconds");
      if (!seconds) {
        p.add("'duration' should look like 45s, 1m 20s or 2h 3m 4s, is '" + *duration_text + "'");
      } else if (exact && *seconds != static_cast<long>(std::floor(*exact)) &&
                 *seconds != static_cast<long>(std::lround(*exact))) {
        p.add("'duration' " + *duration_text + " does not match duration_seconds " +
              std::to_string(*exact));
      }
    }
  } else if (status && item.has("duration") && !p.isNull("duration")) {
    p.add("'duration' should be null while " + *status);
  }
  return p.result();
}

::testing::AssertionResult HasBatchShape(const Object& batch) {
  Problems p(batch, "batch status");
  if (auto id = p.string("batch_id"); id && !isBatchId(*id)) {
    p.add("'batch_id' should match ^bc_[0-9]{8}$, is '" + *id + "'");
  }
  auto status = p.status("status");
  auto progress = p.integer("progress_percent", 0, 100);
  auto estimate = p.stringOrNull("estimated_completion");
  auto started = p.timestamp("started_at");
  auto updated = p.timestamp("updated_at");
  auto ended = p.timestampOrNull("ended_at");
  auto message = p.string("message");
  auto error = p.stringOrNull("error");
  auto duration = p.numberOrNull("duration_seconds");
  if (started && updated && *updated < *started) p.add("'updated_at' is before 'started_at'");

  if (!batch.isArray("collectors") || batch.getArray("collectors")->size() == 0) {
    p.add("'collectors' should be a non-empty array");
    return p.result();
  }
  auto jobs = objectsOf(batch, "collectors");
  std::size_t n = jobs.size(), queued = 0, terminal = 0, failed = 0, cancelled = 0;
  long progress_sum = 0;
  std::optional<std::int64_t> last_end;
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < n; ++i) {
    auto shape = HasBatchJobShape(*jobs[i]);
    if (!shape) p.add("collectors[" + std::to_string(i) + "]: " + shape.message());
    std::string job_status = stringField(*jobs[i], "status");
    queued += job_status == "queued";
    if (isTerminalStatus(job_status)) {
      ++terminal;
      progress_sum += 100;
      if (auto end = parseTimestamp(stringField(*jobs[i], "ended_at"))) {
        last_end = std::max(last_end.value_or(*end), *end);
      }
    } else if (jobs[i]->has("progress_percent") && jobs[i]->get("progress_percent").isInteger()) {
      progress_sum += jobs[i]->get("progress_percent").convert<long>();
    }
    if (job_status == "failed") {
      ++failed;
      errors.push_back(stringField(*jobs[i], "job_name") + ": " + stringField(*jobs[i], "error"));
    }
    cancelled += job_status == "cancelled";
  }

  std::string want_status, want_message;
  std::string count = std::to_string(n) + " " + plural(n);
  if (queued == n) {
    want_status = "queued";
    want_message = "Waiting for " + count + " to start";
  } else if (terminal < n) {
    want_status = "running";
    want_message = "Processing collectors... " + std::to_string(terminal) + " of " +
                   std::to_string(n) + " finished";
  } else if (failed > 0) {
    want_status = "failed";
    want_message = std::to_string(failed) + " of " + count + " failed";
  } else if (cancelled > 0) {
    want_status = "cancelled";
    want_message = std::to_string(cancelled) + " of " + count + " cancelled";
  } else {
    want_status = "completed";
    want_message = std::to_string(n) + " of " + count + " completed";
  }
  if (status && *status != want_status) {
    p.add("'status' should roll up to '" + want_status + "', is '" + *status + "'");
  }
  if (message && *message != want_message) {
    p.add("'message' should be '" + want_message + "', is '" + *message + "'");
  }
  long floor_mean = progress_sum / static_cast<long>(n);
  long round_mean = std::lround(static_cast<double>(progress_sum) / static_cast<double>(n));
  if (progress && *progress != floor_mean && *progress != round_mean) {
    p.add("'progress_percent' should be the mean of the jobs (" + std::to_string(floor_mean) +
          "), is " + std::to_string(*progress));
  }
  std::string want_error;
  for (std::size_t i = 0; i < errors.size(); ++i) want_error += (i ? "; " : "") + errors[i];
  if (errors.empty() && !p.isNull("error")) p.add("'error' should be null: no job failed");
  if (!errors.empty() && error != want_error) {
    p.add("'error' should be '" + want_error + "', is " + jsonOf(batch, "error"));
  }

  bool is_terminal = status && isTerminalStatus(*status);
  if (is_terminal) {
    if (!ended) p.add("'ended_at' should be set once the batch is " + *status);
    if (ended && last_end && *ended != *last_end) {
      p.add("'ended_at' should be the latest job ended_at");
    }
    if (started && ended && duration &&
        std::fabs(*duration - static_cast<double>(*ended - *started) / 1e6) > kDurationTolerance) {
      p.add("'duration_seconds' does not match ended_at - started_at");
    }
    if (!duration) p.add("'duration_seconds' should be a number once the batch is " + *status);
  } else {
    if (!p.isNull("ended_at")) p.add("'ended_at' should be null while the batch runs");
    if (!p.isNull("duration_seconds")) p.add("'duration_seconds' should be null while it runs");
  }

  bool wants_estimate = !is_terminal && progress && *progress > 0 && *progress < 100;
  if (!wants_estimate && !p.isNull("estimated_completion")) {
    p.add("'estimated_completion' should be null unless running with 0 < progress < 100");
  }
  if (wants_estimate && !estimate) p.add("'estimated_completion' should be set while running");
  if (estimate && !isSecondTimestamp(*estimate)) {
    p.add("'estimated_completion' should look like 2025-10-06T15:17:45Z, is '" + *estimate + "'");
  } else if (estimate && started && progress && *progress > 0) {
    auto at = *parseTimestamp(*estimate);
    auto latest = *started + (nowMicros() - *started) * 100 / *progress + 2000000;
    if (at < *started / 1000000 * 1000000 || at > latest) {
      p.add("'estimated_completion' is not started_at + elapsed * 100 / progress");
    }
  }
  return p.result();
}

::testing::AssertionResult HasListEnvelope(const Object& body, const std::string& list_key) {
  Problems p(body, "list response");
  if (!body.isArray(list_key)) {
    p.add("'" + list_key + "' should be an array");
  } else {
    auto size = static_cast<std::int64_t>(body.getArray(list_key)->size());
    auto total = p.integer("total_runs", 0, 1000000);
    if (total && *total != size) {
      p.add("'total_runs' should be the number of items, " + std::to_string(size));
    }
  }
  p.timestamp("generated_at");
  return p.result();
}

std::optional<long> parseDuration(std::string_view text) {
  static const std::regex pattern(
      "^(?:([1-9][0-9]*)h ([0-9]|[1-5][0-9])m ([0-9]|[1-5][0-9])s|([1-9][0-9]*)m "
      "([0-9]|[1-5][0-9])s"
      "|([0-9]|[1-5][0-9])s)$");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(text.begin(), text.end(), m, pattern)) return std::nullopt;
  auto part = [&](int group) { return m[group].matched ? std::stol(m[group].str()) : 0L; };
  return part(1) * 3600 + (part(2) + part(4)) * 60 + part(3) + part(5) + part(6);
}

bool hasMessage(const Poco::JSON::Object& job, const std::string& message) {
  return stringField(job, "message") == message;
}

std::string otherId(std::string id) {
  id.back() = static_cast<char>('0' + (id.back() - '0' + 5) % 10);
  return id;
}

std::vector<std::string> listedJobIds(
    const HttpResponse& response, const std::string& list_key,
    ::testing::AssertionResult (*item_shape)(const Poco::JSON::Object&)) {
  std::vector<std::string> ids;
  EXPECT_TRUE(IsJsonResponse(response, 200));
  if (!response.object()) return ids;
  EXPECT_TRUE(HasListEnvelope(*response.object(), list_key));
  for (const auto& item : objectsOf(*response.object(), list_key)) {
    EXPECT_TRUE(item_shape(*item));
    ids.push_back(stringField(*item, "job_id"));
  }
  return ids;
}

}  // namespace collectord::test
