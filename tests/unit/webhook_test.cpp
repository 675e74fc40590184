// Webhooks as pure logic: the signature against RFC 4231's HMAC-SHA256 vectors, the backoff, the
// event names and IDs, which endpoints get which event, reading the settings from a config file,
// and the payload's shape.
#include "webhook.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config.h"
#include "webhook_views.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(WebhookSignature, MatchesRfc4231TestVectors) {
  // Test case 2: a short key.
  EXPECT_EQ(webhookSignature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the hash's block, which HMAC hashes first.
  EXPECT_EQ(webhookSignature(std::string(131, '\xaa'),
                             "Test Using Larger Than Block-Size Key - Hash Key First"),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(WebhookSignature, CoversEveryByteOfTheMessage) {
  const std::string body = R"({"batch_id":"bc_12345678","status":"completed"})";
  EXPECT_NE(webhookSignature("secret", body), webhookSignature("secret", body + " "));
  EXPECT_NE(webhookSignature("secret", body), webhookSignature("Secret", body));
  std::string with_nul = body;
  with_nul[3] = '\0';
  EXPECT_NE(webhookSignature("secret", body), webhookSignature("secret", with_nul));
}

TEST(WebhookRetryDelay, DoublesFromTheBackoffUpToTheCap) {
  WebhookSettings s;
  s.retry_backoff = 100ms;
  s.retry_backoff_max = 1000ms;
  EXPECT_EQ(webhookRetryDelay(s, 1), 100ms);
  EXPECT_EQ(webhookRetryDelay(s, 2), 200ms);
  EXPECT_EQ(webhookRetryDelay(s, 4), 800ms);
  EXPECT_EQ(webhookRetryDelay(s, 5), 1000ms);
  EXPECT_EQ(webhookRetryDelay(s, 1000), 1000ms) << "no overflow after many attempts";
}

TEST(WebhookEvents, NamesRoundTripAndUnknownNamesAreRefused) {
  for (int i = 0; i < kWebhookEventTypeCount; ++i) {
    const auto type = static_cast<WebhookEventType>(i);
    EXPECT_EQ(parseWebhookEventType(toString(type)), type);
  }
  EXPECT_EQ(parseWebhookEventType("batch.done"), std::nullopt);
  EXPECT_EQ(parseWebhookEventType("Batch.Completed"), std::nullopt);
}

BatchRecord batchWith(JobStatus status) {
  BatchRecord b;
  b.batch_id = "bc_12345678";
  b.status = status;
  b.started_at = 1'000'000;
  b.updated_at = 2'000'000;
  if (isTerminal(status)) b.ended_at = 3'000'000;
  return b;
}

JobRecord jobWith(JobStatus status) {
  JobRecord j;
  j.job_id = "ni_87654321";
  j.batch_id = "bc_12345678";
  j.collector = "ninja";
  j.job_name = "ninja-collector";
  j.status = status;
  j.started_at = 1'000'000;
  j.updated_at = 2'500'000;
  if (isTerminal(status)) j.ended_at = 2'500'000;
  return j;
}

TEST(WebhookEvents, OnlyTerminalStatesGiveEventsWithStableIds) {
  EXPECT_FALSE(batchEvent(batchWith(JobStatus::kRunning), {}));
  EXPECT_FALSE(jobEvent(jobWith(JobStatus::kQueued), batchWith(JobStatus::kRunning)));
  const auto batch = batchEvent(batchWith(JobStatus::kCancelled), {jobWith(JobStatus::kCancelled)});
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->type, WebhookEventType::kBatchCancelled);
  EXPECT_EQ(batch->id, "batch.cancelled:bc_12345678");
  EXPECT_EQ(batch->at, 3'000'000);
  const auto job = jobEvent(jobWith(JobStatus::kFailed), batchWith(JobStatus::kRunning));
  ASSERT_TRUE(job);
  EXPECT_EQ(job->type, WebhookEventType::kJobFailed);
  EXPECT_EQ(job->id, "job.failed:ni_87654321");
  EXPECT_EQ(job->at, 2'500'000);
}

TEST(WebhookEvents, EachEndpointGetsARowForTheEventsItWants) {
  WebhookSettings s;
  WebhookEndpoint batches{"batches", "http://a/", "s", 0b000111};
  WebhookEndpoint failures{"failures", "http://b/", "s",
                           1u << static_cast<int>(WebhookEventType::kJobFailed)};
  s.endpoints = {batches, failures};
  int rendered = 0;
  const WebhookPayloadRenderer render = [&rendered](const WebhookEvent& e) {
    ++rendered;
    return "body of " + e.id;
  };
  const std::vector<WebhookEvent> events = {
      *jobEvent(jobWith(JobStatus::kFailed), batchWith(JobStatus::kFailed)),
      *batchEvent(batchWith(JobStatus::kFailed), {jobWith(JobStatus::kFailed)}),
      *jobEvent(jobWith(JobStatus::kCompleted), batchWith(JobStatus::kRunning)),
  };
  const auto rows = webhookOutboxRows(events, s, render, 42);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].endpoint, "failures");
  EXPECT_EQ(rows[0].event_id, "job.failed:ni_87654321");
  EXPECT_EQ(rows[0].event_type, "job.failed");
  EXPECT_EQ(rows[0].body, "body of job.failed:ni_87654321");
  EXPECT_EQ(rows[0].created_at, 42);
  EXPECT_EQ(rows[1].endpoint, "batches");
  EXPECT_EQ(rows[1].event_id, "batch.failed:bc_12345678");
  EXPECT_EQ(rendered, 2) << "an event nobody wants is not rendered";
  EXPECT_TRUE(webhookOutboxRows(events, s, nullptr, 42).empty()) << "no renderer, no rows";
}

TEST(WebhookPayload, IsTheStatusShapeBetweenTheEventFieldsAndTheTimestamp) {
  const auto event = batchEvent(batchWith(JobStatus::kCompleted), {jobWith(JobStatus::kCompleted)});
  const std::string body = http::webhookPayloadJson(*event);
  Poco::JSON::Parser parser;
  const auto o = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(
      body.rfind("{\"event\":\"batch.completed\",\"event_id\":\"batch.completed:bc_12345678\","
                 "\"batch_id\":\"bc_12345678\",\"status\":\"completed\",",
                 0),
      0u)
      << body;
  EXPECT_EQ(o->getValue<std::string>("timestamp"), "1970-01-01T00:00:03.000000Z");
  EXPECT_EQ(o->getArray("collectors")->size(), 1u);
  const auto job = jobEvent(jobWith(JobStatus::kFailed), batchWith(JobStatus::kFailed));
  const auto j = parser.parse(http::webhookPayloadJson(*job)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(j->getValue<std::string>("event"), "job.failed");
  EXPECT_EQ(j->getValue<std::string>("job_id"), "ni_87654321");
  EXPECT_EQ(j->getValue<std::string>("batch_status"), "failed");
  EXPECT_EQ(j->getValue<std::string>("timestamp"), "1970-01-01T00:00:02.500000Z");
}

TEST(WebhookSecret, ComesFromTheValueOrFromAFileWithoutItsLineBreak) {
  std::string error;
  EXPECT_EQ(resolveWebhookSecret("plain", error), "plain");
  char pattern[] = "/tmp/collectord-secret-XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  std::ofstream(dir / "s") << "from file\r\n";
  EXPECT_EQ(resolveWebhookSecret("@file:" + (dir / "s").string(), error), "from file");
  EXPECT_EQ(resolveWebhookSecret("@file:" + (dir / "none").string(), error), std::nullopt);
  EXPECT_EQ(error, "cannot read the secret from " + (dir / "none").string() +
                       ": No such file or directory");
  fs::remove_all(dir);
}

TEST(WebhookConfig, ReadsEndpointsAndTheRetryPolicy) {
  char pattern[] = "/tmp/collectord-config-XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  fs::create_directories(dir / "collectors.d");
  std::ofstream(dir / "ca.pem") << "not checked here\n";
  const std::string text = R"(
[auth]
required = false
[webhooks]
retry_backoff = 2s
retry_backoff_max = 1m
max_attempts = 7
timeout = 4s
retention_days = 0
[webhook.ops]
url = https://ops.example.com/hooks?source=collectord
secret = s3cret
events = batch.completed, batch.failed,job.failed
ca_file = ca.pem
[webhook.Audit-1]
url = http://127.0.0.1:9000/
secret = other
events = *
timeout = 500ms
)";
  const ConfigResult result = parseConfig(text, (dir / "collectord.ini").string());
  ASSERT_TRUE(result.config) << (result.problems.empty() ? "" : result.problems[0].toString());
  const WebhookSettings& w = result.config->webhooks;
  EXPECT_EQ(w.retry_backoff, 2s);
  EXPECT_EQ(w.retry_backoff_max, 60s);
  EXPECT_EQ(w.max_attempts, 7);
  EXPECT_EQ(w.retention_days, 0);
  ASSERT_EQ(w.endpoints.size(), 2u);
  const WebhookEndpoint& audit = w.endpoints[0];  // sorted by name
  EXPECT_EQ(audit.name, "Audit-1");
  EXPECT_EQ(audit.events, (1u << kWebhookEventTypeCount) - 1);
  EXPECT_EQ(audit.timeout, 500ms);
  const WebhookEndpoint& ops = w.endpoints[1];
  EXPECT_EQ(ops.url, "https://ops.example.com/hooks?source=collectord");
  EXPECT_EQ(ops.secret, "s3cret");
  EXPECT_TRUE(ops.wants(WebhookEventType::kBatchCompleted));
  EXPECT_TRUE(ops.wants(WebhookEventType::kBatchFailed));
  EXPECT_TRUE(ops.wants(WebhookEventType::kJobFailed));
  EXPECT_FALSE(ops.wants(WebhookEventType::kJobCompleted));
  EXPECT_FALSE(ops.wants(WebhookEventType::kBatchCancelled));
  EXPECT_EQ(ops.timeout, 4s) << "[webhooks] timeout is the default";
  EXPECT_EQ(ops.ca_file, (dir / "ca.pem").string()) << "resolved against the file's folder";
  fs::remove_all(dir);
}

TEST(WebhookConfig, AnEndpointMustBeASectionOfItsOwn) {
  char pattern[] = "/tmp/collectord-config-XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  fs::create_directories(dir / "collectors.d");
  const ConfigResult result = parseConfig(
      "[auth]\nrequired = false\n[webhook]\nurl = http://x/\n[webhook.a.b]\nurl = http://x/\n",
      (dir / "collectord.ini").string());
  ASSERT_FALSE(result.config);
  std::vector<std::string> problems;
  for (const auto& p : result.problems) problems.push_back(p.key + ": " + p.message);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "webhook.a.b: unknown key",
                          "webhook.a.url: is required",
                          "webhook.a.secret: is required: receivers check the signature made "
                          "with it",
                          "webhook.a.events: is required: a comma list of batch.completed, "
                          "batch.failed, batch.cancelled, job.completed, job.failed, "
                          "job.cancelled, or * for all",
                          "webhook.url: endpoints go in sections of their own: [webhook.NAME] "
                          "with url, secret and events",
                      }));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace collectord
