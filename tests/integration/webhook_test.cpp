// Webhooks end to end: the real daemon delivers to the example receiver of the docs
// (examples/webhooks/receiver.py), which checks every signature with Python's hmac, apart from
// collectord's code, and logs a JSON line per request it gets. Retries, give-ups, restarts (a
// graceful stop and kill -9) while a delivery is pending, the events each endpoint asks for, a
// slow endpoint beside a fast one, reloads, the deliveries listing and bad configurations.

#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"
#include "webhook_receiver.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Poco::JSON::Object;

const std::string kSecret = "correct horse battery staple";

using Receiver = WebhookReceiver;

int answered(const Object& request) { return request.getValue<int>("answered"); }

// GET /api/webhooks/deliveries + `query`, which must answer 200 with the listing.
std::vector<Object::Ptr> deliveries(const HttpClient& client, const std::string& query = "") {
  const HttpResponse response = client.get("/api/webhooks/deliveries" + query);
  if (!IsJsonResponse(response, 200)) throw std::runtime_error(response.describe());
  const auto body = response.object();
  const auto list = objectsOf(*body, "deliveries");
  if (body->getValue<int>("total_deliveries") != static_cast<int>(list.size())) {
    throw std::runtime_error("total_deliveries is not the size of the list: " + response.body);
  }
  return list;
}

// Waits until `count` deliveries are listed, each in `state`.
bool waitForDeliveries(const HttpClient& client, std::size_t count, const std::string& state,
                       std::chrono::milliseconds timeout = 15s) {
  return waitUntil(
      [&] {
        const auto list = deliveries(client);
        return list.size() == count &&
               std::all_of(list.begin(), list.end(), [&](const Object::Ptr& d) {
                 return d->getValue<std::string>("state") == state;
               });
      },
      timeout, 50ms);
}

std::string metric(const HttpClient& client, const std::string& series) {
  const std::string text = client.get("/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "<missing>";
  const auto start = at + series.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

class Webhooks : public ::testing::Test {
 protected:
  Webhooks() {
    writeFile(secret_file_, kSecret + "\n", 0600);
    base_main_ = readFile(config_.mainPath()).value();
  }

  // Retries 100 ms apart, doubling to 400 ms at most.
  static std::string fastRetries(int max_attempts) {
    return "[webhooks]\nretry_backoff = 100ms\nretry_backoff_max = 400ms\nmax_attempts = " +
           std::to_string(max_attempts) + "\n";
  }
  std::string endpoint(const std::string& name, const std::string& url, const std::string& events,
                       const std::string& extra = "") const {
    return "[webhook." + name + "]\nurl = " + url + "\nsecret = @file:" + secret_file_ +
           "\nevents = " + events + "\n" + extra;
  }
  // collectord.ini: the harness's settings followed by `webhooks`.
  void setWebhooks(const std::string& webhooks) { config_.replaceMain(base_main_ + webhooks); }
  std::unique_ptr<Receiver> receiver(const std::string& name,
                                     const std::vector<std::string>& args = {}, int port = 0) {
    return std::make_unique<Receiver>(dir_, name, secret_file_, args, port);
  }

  // Triggers a run whose batch.completed the receiver refuses, stops the daemon (`graceful`:
  // SIGTERM, else SIGKILL) while the delivery is pending, and starts it again with a receiver on
  // the same port that accepts: the event arrives, and exactly once.
  void pendingDeliverySurvivesARestart(bool graceful) {
    config_.addCollector("ninja", "exit 0\n");
    auto refusing = receiver("refusing", {"--fail-first", "1000"});
    setWebhooks(fastRetries(1000) + endpoint("ops", refusing->url(), "batch.completed"));
    std::string event_id;
    {
      Daemon daemon(config_);
      const HttpClient client = daemon.client();
      const Triggered run = triggerOrThrow(client, {"ninja"});
      event_id = "batch.completed:" + run.batch_id;
      ASSERT_TRUE(waitUntil([&] {
        const auto list = deliveries(client);
        return list.size() == 1 && list[0]->getValue<int>("attempt_count") >= 2;
      })) << daemon.logText();
      ASSERT_EQ(deliveries(client)[0]->getValue<std::string>("state"), "pending");
      if (graceful) {
        ASSERT_EQ(daemon.stop(), 0);
      } else {
        daemon.killHard();
      }
    }
    const std::size_t refused = refusing->requests().size();
    refusing->stop();
    ASSERT_GE(refused, 2u);

    auto accepting = receiver("accepting", {}, refusing->port());
    Daemon daemon(config_);
    const HttpClient client = daemon.client();
    ASSERT_TRUE(waitForDeliveries(client, 1, "delivered")) << daemon.logText();
    const auto got = accepting->requestsFor(event_id);
    ASSERT_EQ(got.size(), 1u) << "delivered once after the restart";
    EXPECT_EQ(answered(*got[0]), 200);
    EXPECT_EQ(jsonOf(*got[0], "signature_ok"), "true");
    EXPECT_EQ(accepting->requests().size(), 1u);
    const auto listed = deliveries(client)[0];
    EXPECT_EQ(jsonOf(*listed, "event_id"), jsonString(event_id));
    // The attempts before the restart are still counted and listed: at least the two seen
    // before the stop, at most every request the refusing receiver got (the stop or the kill
    // may come between a request and the record of its answer).
    const auto attempts = listed->getValue<std::size_t>("attempt_count");
    EXPECT_GE(attempts, 3u);
    EXPECT_LE(attempts, refused + 1);
    EXPECT_EQ(objectsOf(*listed, "attempts").size(), attempts);
    EXPECT_EQ(jsonOf(*objectsOf(*listed, "attempts").back(), "http_status"), "200");
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  const std::string secret_file_ = dir_.file("webhook.secret");
  std::string base_main_;
};

TEST_F(Webhooks, BatchCompletedArrivesOnceWithTheBatchStatusAsPayloadAndValidSignatures) {
  auto r = receiver("receiver");
  config_.addCollector("ninja",
                       "echo '{\"progress\": 40, \"message\": \"Processing devices...\"}' >&3\n"
                       "echo '{\"status\": \"completed\", \"message\": \"Collection completed\"}' "
                       ">&3\n");
  setWebhooks(endpoint("ops", r->url(), "batch.completed"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja"});
  const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
  ASSERT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  const std::string event_id = "batch.completed:" + run.batch_id;
  ASSERT_TRUE(waitForDeliveries(client, 1, "delivered")) << daemon.logText();

  const auto requests = r->requests();
  ASSERT_EQ(requests.size(), 1u) << "only batch.completed was asked for, and it came once";
  const Object& got = *requests[0];
  EXPECT_EQ(jsonOf(got, "path"), jsonString("/hooks/collectord"));
  EXPECT_EQ(jsonOf(got, "event"), jsonString("batch.completed"));
  EXPECT_EQ(jsonOf(got, "event_id"), jsonString(event_id));
  EXPECT_EQ(jsonOf(got, "attempt"), jsonString("1"));
  EXPECT_EQ(jsonOf(got, "content_type"), jsonString("application/json"));
  EXPECT_EQ(jsonOf(got, "signature_ok"), "true") << "X-Signature: HMAC-SHA256 of the raw body";
  EXPECT_EQ(jsonOf(got, "timestamped_signature_ok"), "true");
  EXPECT_EQ(jsonOf(got, "fresh"), "true");
  EXPECT_EQ(answered(got), 200);

  // The body is the batch status, byte for byte, between the event fields and the timestamp.
  const std::string ended_at = batch.object()->getValue<std::string>("ended_at");
  const std::string expected = "{\"event\":\"batch.completed\",\"event_id\":\"" + event_id + "\"," +
                               batch.body.substr(1, batch.body.size() - 2) + ",\"timestamp\":\"" +
                               ended_at + "\"}";
  const std::string body = got.getValue<std::string>("body");
  EXPECT_EQ(body, expected);
  Poco::JSON::Parser parser;
  const auto payload = parser.parse(body).extract<Object::Ptr>();
  EXPECT_EQ(jsonOf(*payload, "batch_id"), jsonString(run.batch_id));
  EXPECT_EQ(jsonOf(*payload, "status"), jsonString("completed"));
  ASSERT_EQ(objectsOf(*payload, "collectors").size(), 1u);
  EXPECT_EQ(jsonOf(*objectsOf(*payload, "collectors")[0], "job_id"), jsonString(run.job_ids[0]));
  EXPECT_TRUE(isMicroTimestamp(payload->getValue<std::string>("timestamp")));

  const auto listed = deliveries(client);
  EXPECT_EQ(jsonOf(*listed[0], "event_id"), jsonString(event_id));
  EXPECT_EQ(jsonOf(*listed[0], "endpoint"), jsonString("ops"));
  EXPECT_EQ(jsonOf(*listed[0], "attempt_count"), "1");
  EXPECT_EQ(jsonOf(*listed[0], "last_status"), "200");
  EXPECT_EQ(metric(client, "collectord_webhook_events_total"), "1");
}

TEST_F(Webhooks, ANonSuccessAnswerIsRetriedWithBackoffAndEveryAttemptIsListed) {
  auto r = receiver("receiver", {"--fail-first", "2"});
  config_.addCollector("ninja", "exit 0\n");
  setWebhooks(fastRetries(5) + endpoint("ops", r->url(), "batch.completed"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitForDeliveries(client, 1, "delivered")) << daemon.logText();

  const auto delivery = deliveries(client)[0];
  EXPECT_EQ(jsonOf(*delivery, "attempt_count"), "3");
  EXPECT_EQ(jsonOf(*delivery, "last_status"), "200");
  EXPECT_EQ(jsonOf(*delivery, "last_error"), "null");
  EXPECT_EQ(jsonOf(*delivery, "next_attempt_at"), "null");
  EXPECT_TRUE(isMicroTimestamp(delivery->getValue<std::string>("finished_at")));
  const auto attempts = objectsOf(*delivery, "attempts");
  ASSERT_EQ(attempts.size(), 3u) << jsonOf(*delivery, "attempts");
  std::vector<std::int64_t> started;
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    EXPECT_EQ(jsonOf(*attempts[i], "attempt"), std::to_string(i + 1));
    EXPECT_EQ(jsonOf(*attempts[i], "http_status"), i < 2 ? "500" : "200");
    const std::string error = jsonOf(*attempts[i], "error");
    if (i < 2) {
      EXPECT_NE(error.find("HTTP 500 Internal Server Error"), std::string::npos) << error;
    } else {
      EXPECT_EQ(error, "null");
    }
    EXPECT_GE(attempts[i]->getValue<int>("duration_ms"), 0);
    started.push_back(parseTimestamp(attempts[i]->getValue<std::string>("started_at")).value());
  }
  EXPECT_GE(started[1] - started[0], 100'000) << "retry_backoff before the second attempt";
  EXPECT_GE(started[2] - started[1], 200'000) << "doubled before the third";

  // The receiver saw the same signed bytes three times.
  const auto got = r->requestsFor("batch.completed:" + run.batch_id);
  ASSERT_EQ(got.size(), 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(answered(*got[i]), i < 2 ? 500 : 200);
    EXPECT_EQ(jsonOf(*got[i], "attempt"), jsonString(std::to_string(i + 1)));
    EXPECT_EQ(jsonOf(*got[i], "signature_ok"), "true");
    EXPECT_EQ(jsonOf(*got[i], "timestamped_signature_ok"), "true");
    EXPECT_EQ(got[i]->getValue<std::string>("body"), got[0]->getValue<std::string>("body"));
  }
  EXPECT_EQ(
      metric(client, "collectord_webhook_attempts_total{endpoint=\"ops\",result=\"failure\"}"),
      "2");
  EXPECT_EQ(
      metric(client, "collectord_webhook_attempts_total{endpoint=\"ops\",result=\"success\"}"),
      "1");
}

TEST_F(Webhooks, ADeliveryThatKeepsFailingEndsFailedAfterMaxAttemptsSayingWhy) {
  auto r = receiver("receiver", {"--fail-first", "1000"});
  config_.addCollector("ninja", "exit 0\n");
  setWebhooks(fastRetries(3) + endpoint("ops", r->url(), "batch.completed"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitForDeliveries(client, 1, "failed")) << daemon.logText();

  const auto delivery = deliveries(client)[0];
  EXPECT_EQ(jsonOf(*delivery, "attempt_count"), "3");
  EXPECT_EQ(objectsOf(*delivery, "attempts").size(), 3u);
  EXPECT_EQ(jsonOf(*delivery, "last_status"), "500");
  EXPECT_NE(jsonOf(*delivery, "last_error").find("HTTP 500"), std::string::npos);
  EXPECT_EQ(jsonOf(*delivery, "next_attempt_at"), "null");
  EXPECT_EQ(r->requests().size(), 3u);
  EXPECT_EQ(deliveries(client, "?state=failed").size(), 1u);
  EXPECT_TRUE(deliveries(client, "?state=pending").empty());
  EXPECT_EQ(
      metric(client, "collectord_webhook_deliveries_total{endpoint=\"ops\",state=\"failed\"}"),
      "1");
  EXPECT_TRUE(waitForDaemonLog(daemon, "failed after 3 attempts, giving up"));
}

TEST_F(Webhooks, EachEndpointGetsOnlyTheEventsItAsksFor) {
  auto r = receiver("receiver");
  config_.addCollector("good", "exit 0\n");
  config_.addCollector("bad", "exit 3\n");
  setWebhooks(endpoint("failures", r->url("/failures"), "job.failed") +
              endpoint("summary", r->url("/summary"), "job.completed, batch.failed") +
              endpoint("none", r->url("/none"), "batch.cancelled, job.cancelled"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"good", "bad"});
  ASSERT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("failed"));
  ASSERT_TRUE(waitForDeliveries(client, 3, "delivered")) << daemon.logText();

  std::multimap<std::string, std::string> got;  // path -> event ID
  for (const auto& request : r->requests()) {
    got.emplace(request->getValue<std::string>("path"), request->getValue<std::string>("event_id"));
  }
  const std::multimap<std::string, std::string> expected = {
      {"/failures", "job.failed:" + run.job_ids[1]},
      {"/summary", "job.completed:" + run.job_ids[0]},
      {"/summary", "batch.failed:" + run.batch_id},
  };
  EXPECT_EQ(got, expected);
}

TEST_F(Webhooks, APendingDeliveryIsSentOnceAfterAGracefulRestart) {
  pendingDeliverySurvivesARestart(true);
}

TEST_F(Webhooks, APendingDeliveryIsSentOnceAfterTheDaemonIsKilled) {
  pendingDeliverySurvivesARestart(false);
}

TEST_F(Webhooks, AJobRunningWhenTheDaemonWasKilledGetsItsFailedEventsFromTheNextStart) {
  auto r = receiver("receiver");
  config_.addBlockingCollector("slow", "wait_for_release 1\n");
  setWebhooks(endpoint("ops", r->url(), "*"));
  ProcessReaper reaper;
  std::string job_id, batch_id;
  {
    Daemon daemon(config_);
    const HttpClient client = daemon.client();
    const Triggered run = triggerOrThrow(client, {"slow"});
    job_id = run.job_ids[0];
    batch_id = run.batch_id;
    ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, job_id, "running"), 200));
    daemon.killHard();
  }
  for (pid_t pid : processesOfJob(job_id)) reaper.add(pid);
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  ASSERT_TRUE(waitForDeliveries(client, 2, "delivered")) << daemon.logText();
  const auto job_event = r->requestsFor("job.failed:" + job_id);
  const auto batch_event = r->requestsFor("batch.failed:" + batch_id);
  ASSERT_EQ(job_event.size(), 1u);
  ASSERT_EQ(batch_event.size(), 1u);
  EXPECT_EQ(r->requests().size(), 2u) << "nothing else: the run never completed";
  Poco::JSON::Parser parser;
  const auto payload =
      parser.parse(job_event[0]->getValue<std::string>("body")).extract<Object::Ptr>();
  EXPECT_EQ(jsonOf(*payload, "error"),
            jsonString("supervisor restarted while the job was running"));
}

TEST_F(Webhooks, ASlowEndpointHoldsBackNeitherAnotherEndpointNorTheApiNorAStop) {
  auto slow = receiver("slow", {"--delay", "6"});
  auto fast = receiver("fast");
  config_.addCollector("ninja", "exit 0\n");
  setWebhooks(endpoint("slow", slow->url(), "batch.completed", "timeout = 20s\n") +
              endpoint("fast", fast->url(), "batch.completed"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  triggerOrThrow(client, {"ninja"});
  const auto ended = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitUntil([&] { return fast->requests().size() == 1; }, 3s))
      << "the fast endpoint got its event without waiting for the slow one";
  EXPECT_LT(std::chrono::steady_clock::now() - ended, 3s);
  ASSERT_TRUE(waitUntil([&] { return slow->requests().size() == 1; }, 10s))
      << "the slow receiver has the request and holds its answer";
  // Meanwhile the daemon answers and runs jobs as usual.
  const auto before = std::chrono::steady_clock::now();
  const Triggered again = triggerOrThrow(client, {"ninja"});
  EXPECT_EQ(jsonOf(*waitForBatchTerminal(client, again.batch_id).object(), "status"),
            jsonString("completed"));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);

  // A stop cuts the slow attempt off instead of waiting for the answer (or the 20 s timeout).
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 3s);
}

TEST_F(Webhooks, AReloadAddsAndRemovesEndpoints) {
  auto refusing = receiver("refusing", {"--fail-first", "1000"});
  auto accepting = receiver("accepting");
  config_.addCollector("ninja", "exit 0\n");
  setWebhooks(fastRetries(1000) + endpoint("old", refusing->url(), "batch.completed"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  const Triggered first = triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitUntil([&] { return !refusing->requests().empty(); })) << daemon.logText();

  setWebhooks(fastRetries(1000) + endpoint("new", accepting->url(), "batch.completed"));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_TRUE(waitUntil([&] { return deliveries(client, "?state=failed").size() == 1; }))
      << "the removed endpoint's pending delivery ended\n"
      << daemon.logText();
  const auto old = deliveries(client, "?state=failed");
  EXPECT_EQ(jsonOf(*old[0], "event_id"), jsonString("batch.completed:" + first.batch_id));
  EXPECT_EQ(jsonOf(*old[0], "last_error"), jsonString("endpoint 'old' is no longer configured"));

  const Triggered second = triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitUntil([&] { return deliveries(client, "?state=delivered").size() == 1; }))
      << daemon.logText();
  ASSERT_EQ(accepting->requests().size(), 1u);
  EXPECT_EQ(jsonOf(*accepting->requests()[0], "event_id"),
            jsonString("batch.completed:" + second.batch_id));
  EXPECT_EQ(deliveries(client).size(), 2u) << "no delivery of the new event to the old endpoint";
  EXPECT_EQ(deliveries(client)[0]->getValue<int>("attempt_count"), 1);
  EXPECT_EQ(deliveries(client, "?state=failed").size(), 1u)
      << "an answer to an attempt in flight during the reload does not revive the delivery";
}

// A self-signed certificate for `name`, made with the openssl CLI: DIR/NAME.pem and NAME.key.
std::string makeCertificate(const TempDir& dir, const std::string& name) {
  const std::string command =
      "timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=" + name +
      " -days 1 -addext subjectAltName=DNS:" + name + " -keyout " + dir.file(name + ".key") +
      " -out " + dir.file(name + ".pem") + " >" + dir.file("openssl.log") + " 2>&1";
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error(readFile(dir.file("openssl.log")).value_or("openssl failed"));
  }
  return dir.file(name + ".pem");
}

TEST_F(Webhooks, AnHttpsReceiverIsTrustedThroughItsCaFileAndItsNameIsChecked) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the openssl command is not installed";
  }
  const std::string good = makeCertificate(dir_, "localhost");
  const std::string other = makeCertificate(dir_, "elsewhere.invalid");
  auto r = receiver("tls", {"--tls-cert", good, "--tls-key", dir_.file("localhost.key")});
  auto impostor =
      receiver("impostor", {"--tls-cert", other, "--tls-key", dir_.file("elsewhere.invalid.key")});
  const std::string url = "https://localhost:" + std::to_string(r->port()) + "/";
  config_.addCollector("ninja", "exit 0\n");
  setWebhooks(fastRetries(2) +
              endpoint("trusted", url, "batch.completed", "ca_file = " + good + "\n") +
              endpoint("untrusted", url, "batch.completed") +
              endpoint("wrongname", "https://localhost:" + std::to_string(impostor->port()) + "/",
                       "batch.completed", "ca_file = " + other + "\n"));
  Daemon daemon(config_);
  const HttpClient client = daemon.client();
  triggerOrThrow(client, {"ninja"});
  ASSERT_TRUE(waitUntil([&] {
    return deliveries(client).size() == 3 && deliveries(client, "?state=pending").empty();
  })) << daemon.logText();
  std::map<std::string, std::string> outcome;  // endpoint -> "STATE: LAST_ERROR"
  for (const auto& d : deliveries(client)) {
    outcome[d->getValue<std::string>("endpoint")] =
        d->getValue<std::string>("state") + ": " + jsonOf(*d, "last_error");
  }
  EXPECT_EQ(outcome["trusted"], "delivered: null");
  EXPECT_EQ(outcome["untrusted"].rfind("failed: ", 0), 0u) << outcome["untrusted"];
  EXPECT_NE(outcome["untrusted"].find("certificate verify failed"), std::string::npos)
      << outcome["untrusted"];
  EXPECT_EQ(outcome["wrongname"].rfind("failed: ", 0), 0u) << outcome["wrongname"];
  EXPECT_NE(outcome["wrongname"].find("localhost"), std::string::npos) << outcome["wrongname"];
  ASSERT_EQ(r->requests().size(), 1u) << "only the trusted endpoint's request got through";
  EXPECT_EQ(jsonOf(*r->requests()[0], "signature_ok"), "true");
  EXPECT_TRUE(impostor->requests().empty());
}

TEST_F(Webhooks, TheDeliveriesListingNeedsTheAdminScopeAndChecksItsParameters) {
  auto r = receiver("receiver");
  config_.addCollector("ninja", "exit 0\n");
  writeFile(dir_.file("api_keys"),
            "reader-key-0123456789 read reader\n"
            "admin-key-0123456789 admin admin\n",
            0600);
  setWebhooks("[auth]\nrequired = true\napi_keys_file = api_keys\n" +
              endpoint("ops", r->url(), "job.completed, batch.completed"));
  Daemon daemon(config_);
  const HttpClient admin = daemon.client().withHeaders(apiKeyHeader("admin-key-0123456789"));
  const HttpClient reader = daemon.client().withHeaders(apiKeyHeader("reader-key-0123456789"));
  const Triggered run = triggerOrThrow(admin, {"ninja"});
  ASSERT_TRUE(waitForDeliveries(admin, 2, "delivered")) << daemon.logText();

  EXPECT_EQ(reader.get("/api/webhooks/deliveries").status, 403);
  EXPECT_EQ(daemon.client().get("/api/webhooks/deliveries").status, 401);
  const auto newest = deliveries(admin, "?limit=1");
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(jsonOf(*newest[0], "event_id"), jsonString("batch.completed:" + run.batch_id))
      << "newest first: the batch ends after its job";
  EXPECT_EQ(jsonOf(*deliveries(admin, "?state=delivered&limit=2")[1], "event_id"),
            jsonString("job.completed:" + run.job_ids[0]));
  EXPECT_TRUE(IsErrorResponse(admin.get("/api/webhooks/deliveries?limit=0"), 400,
                              "'limit' must be an integer from 1 to 1000"));
  EXPECT_TRUE(IsErrorResponse(admin.get("/api/webhooks/deliveries?state=done"), 400,
                              "'state' must be pending, delivered or failed"));
}

TEST_F(Webhooks, CheckConfigNamesEveryBadWebhookKey) {
  config_.addCollector("ninja", "exit 0\n");
  writeFile(dir_.file("empty.secret"), "\n");
  setWebhooks(
      "[webhooks]\nretry_backoff = 10s\nretry_backoff_max = 1s\nmax_attempts = 0\n"
      "colour = blue\n"
      "[webhook.ftp]\nurl = ftp://example.com/\nsecret = x\nevents = *\n"
      "[webhook.nosecret]\nurl = https://example.com/\nevents = batch.completed\n"
      "[webhook.noevents]\nurl = https://example.com/\nsecret = x\n"
      "[webhook.typo]\nurl = https://example.com/\nsecret = x\nevents = batch.done\n"
      "[webhook.relative]\nurl = https://example.com/\nsecret = @file:secret.txt\nevents = *\n"
      "[webhook.missing]\nurl = https://example.com/\nsecret = @file:" +
      dir_.file("nope") +
      "\nevents = *\n"
      "[webhook.empty]\nurl = https://example.com/\nsecret = @file:" +
      dir_.file("empty.secret") +
      "\nevents = *\n"
      "[webhook.extra]\nurl = https://example.com/\nsecret = x\nevents = *\nretries = 3\n"
      "[webhook.plain]\nurl = http://example.com/\nsecret = x\nevents = *\nca_file = " +
      secret_file_ + "\n");
  const RunResult result = runCollectord({"--check-config", "--config=" + config_.mainPath()});
  EXPECT_EQ(result.exit_code, 1);
  const std::string file = config_.mainPath() + ": ";
  for (const std::string& line : std::vector<std::string>{
           "webhooks.retry_backoff_max: must not be shorter than webhooks.retry_backoff",
           "webhooks.max_attempts: '0' is not a whole number from 1 to 1000",
           "webhooks.colour: unknown key",
           "webhook.ftp.url: 'ftp://example.com/' is not an http:// or https:// URL",
           "webhook.nosecret.secret: is required: receivers check the signature made with it",
           "webhook.noevents.events: is required: a comma list of batch.completed, batch.failed, "
           "batch.cancelled, job.completed, job.failed, job.cancelled, or * for all",
           "webhook.typo.events: 'batch.done' is not a webhook event (batch.completed, "
           "batch.failed, batch.cancelled, job.completed, job.failed, job.cancelled, or * for "
           "all)",
           "webhook.relative.secret: @file: needs an absolute path",
           "webhook.missing.secret: cannot read the secret from " + dir_.file("nope") +
               ": No such file or directory",
           "webhook.empty.secret: the secret file " + dir_.file("empty.secret") + " is empty",
           "webhook.extra.retries: unknown key",
           "webhook.plain.ca_file: applies to https:// URLs only",
       }) {
    EXPECT_NE(result.err.find(file + line + "\n"), std::string::npos) << "missing: " << line << "\n"
                                                                      << result.err;
  }
  EXPECT_NE(result.err.find("collectord: 12 configuration problems"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace collectord::test
