// /healthz, /readyz and /metrics on the real daemon: liveness, readiness (and its 503 while the
// daemon shuts down), and a Prometheus exposition that a strict parser written here accepts (and
// prometheus_client too, when it is installed), whose counters follow what the test provokes.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

// ---- a strict reader of the Prometheus text format (version 0.0.4) ----------------------------

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Family {
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::optional<std::string> help;
  std::vector<Sample> samples;
};

struct Exposition {
  std::map<std::string, Family> families;  // by the name in # TYPE (or the sample's own name)
  std::vector<Sample> samples;             // every sample, in order

  // The value of the one sample `name` with exactly `labels`, or nullopt.
  std::optional<double> value(const std::string& name, const Labels& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
  // The samples named `name` whose labels include `subset`.
  std::vector<Sample> matching(const std::string& name, const Labels& subset = {}) const {
    std::vector<Sample> out;
    for (const Sample& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : subset) all = all && s.labels.count(k) && s.labels.at(k) == v;
      if (all) out.push_back(s);
    }
    return out;
  }
};

bool isMetricName(const std::string& name) {
  static const std::regex pattern("^[a-zA-Z_:][a-zA-Z0-9_:]*$");
  return std::regex_match(name, pattern);
}

bool isLabelName(const std::string& name) {
  static const std::regex pattern("^[a-zA-Z_][a-zA-Z0-9_]*$");
  return std::regex_match(name, pattern) && name.rfind("__", 0) != 0;
}

std::optional<double> parseValue(const std::string& text) {
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE) return std::nullopt;
  if (text.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  return value;
}

// Parses `text`, or explains in `error` the first line that breaks the format.
std::optional<Exposition> parsePrometheus(const std::string& text, std::string& error) {
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                               "untyped"};
  Exposition out;
  if (text.empty() || text.back() != '\n') {
    error = "the exposition does not end with a newline";
    return std::nullopt;
  }
  std::set<std::string> sampled_families;
  std::set<std::pair<std::string, Labels>> seen;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  auto fail = [&](const std::string& why) {
    error = "line " + std::to_string(number) + ": " + why + ": '" + line + "'";
    return std::nullopt;
  };
  // The family a sample name belongs to, given the TYPEs declared so far.
  auto familyOf = [&](const std::string& sample) -> std::string {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
        const std::string base = sample.substr(0, sample.size() - s.size());
        auto it = out.families.find(base);
        if (it != out.families.end() &&
            (it->second.type == "histogram" || (it->second.type == "summary" && s != "_bucket"))) {
          return base;
        }
      }
    }
    return sample;
  };
  while (std::getline(lines, line)) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (hash != "#" || (keyword != "HELP" && keyword != "TYPE")) continue;  // a comment
      if (!isMetricName(name)) return fail("bad metric name in " + keyword);
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      Family& family = out.families[name];
      if (keyword == "HELP") {
        if (family.help) return fail("second HELP for " + name);
        family.help = rest;
      } else {
        if (!family.type.empty()) return fail("second TYPE for " + name);
        if (sampled_families.count(name)) return fail("TYPE after samples of " + name);
        if (!kTypes.count(rest)) return fail("unknown type '" + rest + "'");
        family.type = rest;
      }
      continue;
    }
    // name{label="value",...} value [timestamp]
    Sample sample;
    std::size_t at = 0;
    while (at < line.size() && line[at] != '{' && line[at] != ' ') ++at;
    sample.name = line.substr(0, at);
    if (!isMetricName(sample.name)) return fail("bad metric name");
    if (at < line.size() && line[at] == '{') {
      ++at;
      while (at < line.size() && line[at] != '}') {
        const std::size_t eq = line.find('=', at);
        if (eq == std::string::npos) return fail("label without '='");
        const std::string label = line.substr(at, eq - at);
        if (!isLabelName(label)) return fail("bad label name '" + label + "'");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') return fail("label value not quoted");
        std::string value;
        std::size_t i = eq + 2;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\') {
            if (i + 1 >= line.size()) return fail("dangling escape");
            const char c = line[++i];
            if (c == 'n') value += '\n';
            else if (c == '\\' || c == '"') value += c;
            else return fail(std::string("bad escape \\") + c);
          } else {
            value += line[i];
          }
        }
        if (i >= line.size()) return fail("unterminated label value");
        if (!sample.labels.emplace(label, value).second) return fail("label " + label + " twice");
        at = i + 1;
        if (at < line.size() && line[at] == ',') ++at;
        else if (at >= line.size() || line[at] != '}') return fail("expected ',' or '}'");
      }
      if (at >= line.size()) return fail("unterminated label set");
      ++at;  // '}'
    }
    if (at >= line.size() || line[at] != ' ') return fail("no space before the value");
    std::istringstream rest(line.substr(at + 1));
    std::string value_text, timestamp, extra;
    rest >> value_text >> timestamp >> extra;
    if (!extra.empty()) return fail("trailing text");
    const auto value = parseValue(value_text);
    if (!value) return fail("bad value '" + value_text + "'");
    if (!timestamp.empty() && timestamp.find_first_not_of("-0123456789") != std::string::npos) {
      return fail("bad timestamp");
    }
    sample.value = *value;
    if (!seen.emplace(sample.name, sample.labels).second) return fail("duplicate sample");
    const std::string family_name = familyOf(sample.name);
    Family& family = out.families[family_name];
    if (family.type.empty()) family.type = "untyped";
    if (family.type == "histogram" && sample.name == family_name) {
      return fail("a histogram sample without _bucket, _sum or _count");
    }
    if (sample.name == family_name + "_bucket" && !sample.labels.count("le")) {
      return fail("a bucket without 'le'");
    }
    sampled_families.insert(family_name);
    family.samples.push_back(sample);
    out.samples.push_back(sample);
  }
  // Histograms: cumulative buckets ending in +Inf, which equals _count.
  for (const auto& [name, family] : out.families) {
    if (family.type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;  // series -> (le, count)
    for (const Sample& s : family.samples) {
      if (s.name != name + "_bucket") continue;
      Labels series = s.labels;
      const auto le = parseValue(series["le"]);
      if (!le) {
        error = name + ": bad le '" + series["le"] + "'";
        return std::nullopt;
      }
      series.erase("le");
      buckets[series].emplace_back(*le, s.value);
    }
    for (auto& [series, list] : buckets) {
      for (std::size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first) || list[i].second < list[i - 1].second) {
          error = name + ": buckets are not increasing and cumulative";
          return std::nullopt;
        }
      }
      if (list.empty() || !std::isinf(list.back().first)) {
        error = name + ": no +Inf bucket";
        return std::nullopt;
      }
      const auto count = out.value(name + "_count", series);
      if (!count || *count != list.back().second || !out.value(name + "_sum", series)) {
        error = name + ": _count or _sum missing, or +Inf bucket != _count";
        return std::nullopt;
      }
    }
  }
  return out;
}

// GET /metrics, checked and parsed; fails the test (and returns an empty exposition) otherwise.
Exposition fetchMetrics(const HttpClient& client) {
  auto response = client.get("/metrics");
  EXPECT_EQ(response.status, 200) << response.describe();
  EXPECT_EQ(response.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  std::string error;
  auto parsed = parsePrometheus(response.body, error);
  EXPECT_TRUE(parsed) << error << "\n" << response.body;
  return parsed.value_or(Exposition{});
}

double valueOr(const Exposition& metrics, const std::string& name, const Labels& labels = {}) {
  return metrics.value(name, labels).value_or(-1);
}

// ---- the tests ----------------------------------------------------------------------------------

TEST(Health, LivenessAndReadinessAre200) {
  TempDir dir;
  DaemonConfig config(dir);
  Daemon daemon(config);
  auto health = daemon.client().get("/healthz");
  ASSERT_TRUE(IsJsonResponse(health, 200));
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  auto ready = daemon.client().get("/readyz");
  ASSERT_TRUE(IsJsonResponse(ready, 200));
  EXPECT_EQ(ready.body, R"({"status":"ready"})");
}

// Shutdown waits for running jobs (SIGTERM, then SIGKILL after a grace period) while the HTTP
// server still answers: a job that traps SIGTERM and holds on makes that window last as long
// as the test needs, and its trap tells the test when the daemon is inside it.
TEST(Health, ReadinessIs503WhileShuttingDown) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
trap 'touch "$RELEASE/term"; wait_for_release 2; exit 0' TERM
touch "$RELEASE/started"
wait_for_release 1
)sh");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("ninja") + "/started"); }));
  ASSERT_TRUE(IsJsonResponse(client.get("/readyz"), 200));

  ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);
  ASSERT_TRUE(waitUntil([&] { return fileExists(config.releaseDir("ninja") + "/term"); }))
      << "the job never got SIGTERM";

  EXPECT_TRUE(IsErrorResponse(client.get("/readyz"), 503,
                              "Not ready: collectord is shutting down"));
  EXPECT_TRUE(IsJsonResponse(client.get("/healthz"), 200)) << "the process is still alive";
  EXPECT_TRUE(IsErrorResponse(client.trigger({"ninja"}), 503,
                              "collectord is shutting down; try again later"));

  config.release("ninja", 2);
  EXPECT_TRUE(waitUntil([&] { return !processAlive(daemon.pid()); }, 20s));
  EXPECT_EQ(daemon.stop(), 0);  // reaps it; it had already exited
}

TEST(Metrics, TheExpositionIsStrictPrometheusText) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto run = triggerOrThrow(daemon.client(), {"ninja"});
  waitForBatchTerminal(daemon.client(), run.batch_id);
  const Exposition metrics = fetchMetrics(daemon.client());

  const std::map<std::string, std::string> families = {
      {"collectord_jobs_total", "counter"},
      {"collectord_job_duration_seconds", "histogram"},
      {"collectord_jobs_running", "gauge"},
      {"collectord_queue_length", "gauge"},
      {"collectord_http_requests_total", "counter"},
      {"collectord_http_rate_limited_total", "counter"},
      {"collectord_http_auth_failures_total", "counter"},
      {"collectord_store_writes_total", "counter"},
      {"collectord_store_write_failures_total", "counter"},
      {"collectord_progress_lines_total", "counter"},
      {"collectord_progress_lines_dropped_total", "counter"},
  };
  for (const auto& [name, type] : families) {
    ASSERT_TRUE(metrics.families.count(name)) << name;
    const Family& family = metrics.families.at(name);
    EXPECT_EQ(family.type, type) << name;
    EXPECT_TRUE(family.help && !family.help->empty()) << name << " has no HELP";
  }
  for (const Sample& sample : metrics.samples) {
    EXPECT_FALSE(std::isnan(sample.value)) << sample.name;
    EXPECT_GE(sample.value, 0) << sample.name;
  }
}

// The python3 that has prometheus_client, if any (Debian's package installs it for
// /usr/bin/python3, which need not be the first python3 on PATH).
std::optional<std::string> pythonWithPrometheusClient() {
  for (const std::string python : {"python3", "/usr/bin/python3"}) {
    const std::string command =
        "timeout 30 " + python + " -c 'import prometheus_client.parser' >/dev/null 2>&1";
    if (std::system(command.c_str()) == 0) return python;
  }
  return std::nullopt;
}

TEST(Metrics, PrometheusClientParsesTheExpositionToTheSameSamples) {
  const auto python = pythonWithPrometheusClient();
  if (!python) GTEST_SKIP() << "python3 with prometheus_client (python3-prometheus-client) is not installed";
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "printf '{\"progress\": 50}\\n' >&3\nexit 0\n");
  config.addCollector("fails", "exit 3\n");
  Daemon daemon(config);
  for (const std::string name : {"ninja", "fails"}) {
    auto run = triggerOrThrow(daemon.client(), {name});
    waitForBatchTerminal(daemon.client(), run.batch_id);
  }
  daemon.client().get("/nowhere");
  auto response = daemon.client().get("/metrics");
  ASSERT_EQ(response.status, 200);
  std::string error;
  auto ours = parsePrometheus(response.body, error);
  ASSERT_TRUE(ours) << error;

  writeFile(dir.file("metrics.txt"), response.body);
  const std::string script =
      "import json, sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "families = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n"
      "print(json.dumps([[s.name, s.labels, s.value] for f in families for s in f.samples]))\n";
  writeFile(dir.file("parse.py"), script);
  const std::string command = "timeout 60 " + *python + " " + dir.file("parse.py") + " " +
                              dir.file("metrics.txt") + " >" + dir.file("parsed.json") + " 2>" +
                              dir.file("parse.err");
  ASSERT_EQ(std::system(command.c_str()), 0) << readFile(dir.file("parse.err")).value_or("");

  Poco::JSON::Parser parser;
  auto theirs = parser.parse(readFile(dir.file("parsed.json")).value_or("null"))
                    .extract<Poco::JSON::Array::Ptr>();
  ASSERT_TRUE(theirs);
  ASSERT_EQ(theirs->size(), ours->samples.size()) << response.body;
  for (std::size_t i = 0; i < theirs->size(); ++i) {
    auto item = theirs->getArray(static_cast<unsigned>(i));
    Labels labels;
    auto object = item->getObject(1);
    for (const auto& [key, value] : *object) labels[key] = value.toString();
    const std::string name = item->getElement<std::string>(0);
    const double value = item->get(2).convert<double>();
    const auto mine = ours->value(name, labels);
    ASSERT_TRUE(mine) << "prometheus_client reads " << name << " that the strict parser did not";
    if (std::isinf(value)) {
      EXPECT_TRUE(std::isinf(*mine)) << name;
    } else {
      EXPECT_DOUBLE_EQ(*mine, value) << name;
    }
  }
}

TEST(Metrics, JobAndRequestCountersFollowWhatHappened) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::string flag = dir.file("fail-next");
  // First run: completes after 3 protocol lines and 1 invalid one. Later runs: fail.
  config.addCollector("ninja", R"sh(
if [ -e "$FAIL" ]; then exit 3; fi
printf '{"progress": 10, "message": "starting"}\n' >&3
printf 'this is not a protocol line\n' >&3
printf '{"progress": 60}\n' >&3
printf '{"progress": 90, "message": "saving"}\n' >&3
exit 0
)sh",
                       {{"env.FAIL", flag}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const Exposition before = fetchMetrics(client);
  EXPECT_TRUE(before.matching("collectord_jobs_total").empty());
  EXPECT_EQ(valueOr(before, "collectord_progress_lines_total"), 0);

  auto first = triggerOrThrow(client, {"ninja"});
  auto done = waitForBatchTerminal(client, first.batch_id);
  ASSERT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.body;
  writeFile(flag, "");
  auto second = triggerOrThrow(client, {"ninja"});
  done = waitForBatchTerminal(client, second.batch_id);
  ASSERT_EQ(jsonOf(*done.object(), "status"), jsonString("failed")) << done.body;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.get("/healthz").status, 200);
  EXPECT_EQ(client.get("/nowhere").status, 404);

  Exposition metrics;
  // Counters are updated as things happen; gauges settle once the jobs are gone.
  EXPECT_TRUE(waitUntil([&] {
    metrics = fetchMetrics(client);
    return valueOr(metrics, "collectord_jobs_running") == 0 &&
           valueOr(metrics, "collectord_queue_length") == 0;
  }, 5s)) << "jobs_running/queue_length stay non-zero after every job ended";

  const Labels ninja = {{"collector", "ninja"}};
  EXPECT_EQ(valueOr(metrics, "collectord_jobs_total", {{"collector", "ninja"}, {"status", "completed"}}), 1);
  EXPECT_EQ(valueOr(metrics, "collectord_jobs_total", {{"collector", "ninja"}, {"status", "failed"}}), 1);
  EXPECT_EQ(metrics.matching("collectord_jobs_total").size(), 2u);
  EXPECT_EQ(valueOr(metrics, "collectord_job_duration_seconds_count", ninja), 2);
  EXPECT_EQ(valueOr(metrics, "collectord_job_duration_seconds_bucket",
                    {{"collector", "ninja"}, {"le", "+Inf"}}),
            2);
  const double sum = valueOr(metrics, "collectord_job_duration_seconds_sum", ninja);
  EXPECT_GE(sum, 0);
  EXPECT_LT(sum, 60);
  // Both runs took well under a second.
  EXPECT_EQ(valueOr(metrics, "collectord_job_duration_seconds_bucket",
                    {{"collector", "ninja"}, {"le", "1"}}),
            2);

  EXPECT_EQ(valueOr(metrics, "collectord_progress_lines_total"), 4);
  EXPECT_EQ(valueOr(metrics, "collectord_progress_lines_dropped_total"), 1);

  auto requests = [&](const std::string& route, const std::string& code) {
    return valueOr(metrics, "collectord_http_requests_total", {{"route", route}, {"code", code}});
  };
  EXPECT_EQ(requests("/api/collectors/run", "201"), 2);
  EXPECT_GE(requests("/api/collectors/runs/batch/{batch_id}", "200"), 2);
  EXPECT_EQ(requests("/healthz", "200"), 3);
  EXPECT_EQ(requests("unmatched", "404"), 1);
  EXPECT_GE(requests("/metrics", "200"), 1);
  EXPECT_EQ(valueOr(metrics, "collectord_http_auth_failures_total"), 0);
  EXPECT_EQ(valueOr(metrics, "collectord_http_rate_limited_total"), 0);
}

TEST(Metrics, AuthFailuresAndRateLimitingAreCounted) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::string key = "metrics-key-0123456789abcdef";
  const std::string reader = "metrics-reader-0123456789ab";
  const std::string watcher = "metrics-watcher-0123456789a";
  writeFile(dir.file("api_keys"),
            key + " read,run ops\n" + reader + " read reader\n" + watcher + " read watcher\n", 0600);
  config.addCollector("ninja", "exit 0\n");
  config.appendToMain("[auth]\nrequired = true\napi_keys_file = api_keys\njwt_secret = s3cret-0123456789\n"
                      "[ratelimit]\nrequests_per_minute = 2\n");
  Daemon daemon(config);
  const HttpClient anonymous = daemon.client();
  const HttpClient ops = anonymous.withHeaders(apiKeyHeader(key));
  const HttpClient metrics_reader = anonymous.withHeaders(apiKeyHeader(watcher));

  const Exposition before = fetchMetrics(metrics_reader);
  EXPECT_EQ(valueOr(before, "collectord_http_auth_failures_total"), 0);
  EXPECT_EQ(valueOr(before, "collectord_http_rate_limited_total"), 0);

  EXPECT_EQ(anonymous.get("/api/collectors/runs/latest").status, 401);
  EXPECT_EQ(anonymous.get("/api/collectors/runs/latest", apiKeyHeader("wrong-key-0123456789abc")).status, 401);
  EXPECT_EQ(anonymous.get("/api/collectors/runs/latest", bearerHeader("not.a.token")).status, 401);
  EXPECT_EQ(anonymous.get("/metrics").status, 401);
  // A 403 is not an authentication failure.
  EXPECT_EQ(anonymous.post("/api/collectors/run", R"({"collectors": ["ninja"]})", apiKeyHeader(reader)).status, 403);
  EXPECT_EQ(ops.get("/api/collectors/runs/latest").status, 200);
  EXPECT_EQ(ops.get("/api/collectors/runs/latest").status, 200);
  EXPECT_EQ(ops.get("/api/collectors/runs/latest").status, 429);
  EXPECT_EQ(ops.get("/api/collectors/history").status, 429);

  const Exposition after = fetchMetrics(metrics_reader);
  EXPECT_EQ(valueOr(after, "collectord_http_auth_failures_total"), 4);
  EXPECT_EQ(valueOr(after, "collectord_http_rate_limited_total"), 2);
  auto requests = [&](const std::string& route, const std::string& code) {
    return valueOr(after, "collectord_http_requests_total", {{"route", route}, {"code", code}});
  };
  EXPECT_EQ(requests("/api/collectors/runs/latest", "401"), 3);
  EXPECT_EQ(requests("/api/collectors/runs/latest", "200"), 2);
  EXPECT_EQ(requests("/api/collectors/runs/latest", "429"), 1);
  EXPECT_EQ(requests("/api/collectors/history", "429"), 1);
  EXPECT_EQ(requests("/api/collectors/run", "403"), 1);
  EXPECT_EQ(requests("/metrics", "401"), 1);
}

}  // namespace
}  // namespace collectord::test
