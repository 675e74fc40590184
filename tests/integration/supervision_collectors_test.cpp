// Supervision: GET /api/collectors, the configured collectors with their limits and live state
// (running, queued, the active run, the last finished run), before, during and after runs.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// Object::getNames() lists keys sorted, so these are too.
const std::vector<std::string> kItemKeys = {"active_run", "job_name",          "last_run",
                                            "limits",     "name",              "next_scheduled_at",
                                            "queued",     "running",           "schedule",
                                            "type"};
const std::vector<std::string> kLimitKeys = {"concurrency", "kill_grace",    "overlap",
                                             "retries",     "retry_backoff", "stall_timeout",
                                             "timeout"};

TEST(SupervisionCollectorList, ShowsEveryFieldBeforeDuringAndAfterRuns) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 0\n",
                      {{"job_name", "Alpha Job"},
                       {"timeout", "30s"},
                       {"stall_timeout", "10s"},
                       {"kill_grace", "2s"},
                       {"retries", "3"},
                       {"retry_backoff", "5s"},
                       {"overlap", "parallel"},
                       {"concurrency", "3"},
                       {"schedule", "every 1h"}});
  config.addBlockingCollector("beta", "printf '{\"progress\": 25, \"message\": \"beta busy\"}\\n' >&3\nwait_for_release \"$COLLECTOR_JOB_ID\"\n");
  const std::int64_t started = nowMicros();
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const HttpResponse list = client.get("/api/collectors");
  ASSERT_TRUE(IsJsonResponse(list, 200));
  const auto body = list.object();
  EXPECT_EQ(body->getNames(), (std::vector<std::string>{"collectors", "generated_at", "total"}));
  EXPECT_EQ(jsonOf(*body, "total"), "2");
  EXPECT_TRUE(isMicroTimestamp(stringField(*body, "generated_at")));
  const auto items = objectsOf(*body, "collectors");
  ASSERT_EQ(items.size(), 2u);
  const Object& alpha = *items[0];
  const Object& beta = *items[1];
  EXPECT_EQ(alpha.getNames(), kItemKeys);
  EXPECT_EQ(beta.getNames(), kItemKeys);

  EXPECT_EQ(jsonOf(alpha, "name"), jsonString("alpha"));
  EXPECT_EQ(jsonOf(alpha, "job_name"), jsonString("Alpha Job"));
  EXPECT_EQ(jsonOf(alpha, "type"), jsonString("exec"));
  EXPECT_EQ(jsonOf(alpha, "schedule"), jsonString("every 1h"));
  const auto next = parseTimestamp(stringField(alpha, "next_scheduled_at"));
  ASSERT_TRUE(next.has_value()) << jsonOf(alpha, "next_scheduled_at");
  EXPECT_GE(*next, started + 3600LL * 1'000'000 - 1'000'000);
  EXPECT_LE(*next, nowMicros() + 3600LL * 1'000'000);
  const auto alpha_limits = alpha.getObject("limits");
  ASSERT_TRUE(alpha_limits);
  EXPECT_EQ(alpha_limits->getNames(), kLimitKeys);
  EXPECT_EQ(jsonOf(*alpha_limits, "overlap"), jsonString("parallel"));
  EXPECT_EQ(jsonOf(*alpha_limits, "concurrency"), "3");
  EXPECT_EQ(jsonOf(*alpha_limits, "timeout"), jsonString("30s"));
  EXPECT_EQ(jsonOf(*alpha_limits, "stall_timeout"), jsonString("10s"));
  EXPECT_EQ(jsonOf(*alpha_limits, "kill_grace"), jsonString("2s"));
  EXPECT_EQ(jsonOf(*alpha_limits, "retries"), "3");
  EXPECT_EQ(jsonOf(*alpha_limits, "retry_backoff"), jsonString("5s"));
  EXPECT_EQ(jsonOf(alpha, "running"), "0");
  EXPECT_EQ(jsonOf(alpha, "queued"), "0");
  EXPECT_EQ(jsonOf(alpha, "active_run"), "null");
  EXPECT_EQ(jsonOf(alpha, "last_run"), "null");

  EXPECT_EQ(jsonOf(beta, "name"), jsonString("beta"));
  EXPECT_EQ(jsonOf(beta, "job_name"), jsonString("beta-collector"));
  EXPECT_EQ(jsonOf(beta, "schedule"), "null");
  EXPECT_EQ(jsonOf(beta, "next_scheduled_at"), "null");
  const auto beta_limits = beta.getObject("limits");
  ASSERT_TRUE(beta_limits);
  EXPECT_EQ(jsonOf(*beta_limits, "overlap"), jsonString("queue"));
  EXPECT_EQ(jsonOf(*beta_limits, "concurrency"), "1");
  EXPECT_EQ(jsonOf(*beta_limits, "timeout"), "null");
  EXPECT_EQ(jsonOf(*beta_limits, "stall_timeout"), "null");
  EXPECT_EQ(jsonOf(*beta_limits, "kill_grace"), jsonString("5s"));
  EXPECT_EQ(jsonOf(*beta_limits, "retries"), "0");
  EXPECT_EQ(jsonOf(*beta_limits, "retry_backoff"), jsonString("30s"));
  EXPECT_EQ(jsonOf(beta, "active_run"), "null");
  EXPECT_EQ(jsonOf(beta, "last_run"), "null");

  // One run: running, and it is the active run.
  const Triggered first = triggerOrThrow(client, {"beta"});
  ASSERT_TRUE(IsJsonResponse(waitForJob(client, first.job_ids[0], [](const Object& job) {
                return stringField(job, "message") == "beta busy";
              }),
              200));
  auto item = collectorItem(client, "beta");
  ASSERT_TRUE(item);
  EXPECT_EQ(jsonOf(*item, "running"), "1");
  EXPECT_EQ(jsonOf(*item, "queued"), "0");
  ASSERT_TRUE(item->isObject("active_run")) << jsonOf(*item, "active_run");
  EXPECT_TRUE(HasJobStatusShape(*item->getObject("active_run")));
  EXPECT_EQ(jsonOf(*item->getObject("active_run"), "job_id"), jsonString(first.job_ids[0]));
  EXPECT_EQ(jsonOf(*item->getObject("active_run"), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*item->getObject("active_run"), "progress_percent"), "25");
  EXPECT_EQ(jsonOf(*item, "last_run"), "null");

  // A second one waits behind it (overlap = queue) and is now the newest active run.
  const Triggered second = triggerOrThrow(client, {"beta"});
  item = collectorItem(client, "beta");
  ASSERT_TRUE(item);
  EXPECT_EQ(jsonOf(*item, "running"), "1");
  EXPECT_EQ(jsonOf(*item, "queued"), "1");
  ASSERT_TRUE(item->isObject("active_run"));
  EXPECT_EQ(jsonOf(*item->getObject("active_run"), "job_id"), jsonString(second.job_ids[0]));
  EXPECT_EQ(jsonOf(*item->getObject("active_run"), "status"), jsonString("queued"));

  releaseWord(config, "beta", first.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, second.job_ids[0], "running"), 200));
  item = collectorItem(client, "beta");
  ASSERT_TRUE(item);
  EXPECT_EQ(jsonOf(*item, "running"), "1");
  EXPECT_EQ(jsonOf(*item, "queued"), "0");
  ASSERT_TRUE(item->isObject("last_run")) << jsonOf(*item, "last_run");
  EXPECT_TRUE(HasJobStatusShape(*item->getObject("last_run")));
  EXPECT_EQ(jsonOf(*item->getObject("last_run"), "job_id"), jsonString(first.job_ids[0]));
  EXPECT_EQ(jsonOf(*item->getObject("last_run"), "status"), jsonString("completed"));

  releaseWord(config, "beta", second.job_ids[0]);
  ASSERT_EQ(jsonOf(*waitForJobTerminal(client, second.job_ids[0]).object(), "status"),
            jsonString("completed"));
  item = collectorItem(client, "beta");
  ASSERT_TRUE(item);
  EXPECT_EQ(jsonOf(*item, "running"), "0");
  EXPECT_EQ(jsonOf(*item, "queued"), "0");
  EXPECT_EQ(jsonOf(*item, "active_run"), "null");
  ASSERT_TRUE(item->isObject("last_run"));
  EXPECT_EQ(jsonOf(*item->getObject("last_run"), "job_id"), jsonString(second.job_ids[0]));
  EXPECT_EQ(jsonOf(*item->getObject("last_run"), "progress_percent"), "100");
  // The other collector is untouched.
  auto alpha_after = collectorItem(client, "alpha");
  ASSERT_TRUE(alpha_after);
  EXPECT_EQ(jsonOf(*alpha_after, "last_run"), "null");
  EXPECT_EQ(jsonOf(*alpha_after, "next_scheduled_at"), jsonOf(alpha, "next_scheduled_at"));
}

}  // namespace
}  // namespace collectord::test
