// POST /api/collectors/run against the real daemon: the 201 answer and the runs it starts.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

TEST(Trigger, RespondsCreatedWithBatchIdAndOneQueuedJobPerCollectorInRequestOrder) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n").addCollector("threatlocker", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();

  auto response = client.trigger({"threatlocker", "ninja"}, "normal");

  ASSERT_TRUE(IsJsonResponse(response, 201));
  auto body = response.object();
  EXPECT_TRUE(HasTriggerShape(*body, {"threatlocker", "ninja"},
                              {"threatlocker-collector", "ninja-collector"}));
  auto jobs = objectsOf(*body, "collectors");
  ASSERT_EQ(jobs.size(), 2u);

  // The runs it announced are the runs that exist, in the same order, started when triggered.
  std::string batch_id = stringField(*body, "batch_id");
  auto final = waitForBatchTerminal(client, batch_id);
  ASSERT_TRUE(IsJsonResponse(final, 200));
  ASSERT_TRUE(HasBatchShape(*final.object()));
  auto batch_jobs = objectsOf(*final.object(), "collectors");
  ASSERT_EQ(batch_jobs.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(jsonOf(*batch_jobs[i], "job_id"), jsonOf(*jobs[i], "job_id"));
    EXPECT_EQ(jsonOf(*batch_jobs[i], "job_name"), jsonOf(*jobs[i], "job_name"));
    EXPECT_EQ(jsonOf(*batch_jobs[i], "started_at"), jsonOf(*jobs[i], "started_at"));
    auto job = client.job(stringField(*jobs[i], "job_id"));
    ASSERT_TRUE(IsJsonResponse(job, 200));
    EXPECT_EQ(jsonOf(*job.object(), "batch_id"), jsonString(batch_id));
    EXPECT_EQ(jsonOf(*job.object(), "started_at"), jsonOf(*jobs[i], "started_at"));
  }
}

TEST(Trigger, NamesJobIdsAfterTheFirstTwoLettersOfTheCollectorLowercased) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ThreatLocker", "exit 0\n").addCollector("X9-sensor", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();

  auto response = client.trigger({"ThreatLocker", "X9-sensor"});

  ASSERT_TRUE(IsJsonResponse(response, 201));
  EXPECT_TRUE(HasTriggerShape(*response.object(), {"ThreatLocker", "X9-sensor"},
                              {"ThreatLocker-collector", "X9-sensor-collector"}));
  auto jobs = objectsOf(*response.object(), "collectors");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(stringField(*jobs[0], "job_id").substr(0, 3), "th_");
  EXPECT_EQ(stringField(*jobs[1], "job_id").substr(0, 3), "x9_");
}

TEST(Trigger, UsesTheJobNameFromTheCollectorFile) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n", {{"job_name", "NinjaOne RMM sync"}});
  Daemon daemon(config);
  auto client = daemon.client();

  auto response = client.trigger({"ninja"});

  ASSERT_TRUE(IsJsonResponse(response, 201));
  EXPECT_TRUE(HasTriggerShape(*response.object(), {"ninja"}, {"NinjaOne RMM sync"}));
  auto run = objectsOf(*response.object(), "collectors");
  ASSERT_EQ(run.size(), 1u);
  auto job = waitForJob(client, stringField(*run[0], "job_id"),
                        [](const Poco::JSON::Object&) { return true; });
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "job_name"), jsonString("NinjaOne RMM sync"));
}

TEST(Trigger, AcceptsEachPriorityAndAnAbsentOne) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();

  for (const char* priority : {"high", "normal", "low"}) {
    auto response = client.trigger({"alpha"}, priority);
    ASSERT_TRUE(IsJsonResponse(response, 201)) << "priority " << priority;
    EXPECT_TRUE(HasTriggerShape(*response.object(), {"alpha"}, {"alpha-collector"}));
    auto batch = waitForBatchTerminal(client, stringField(*response.object(), "batch_id"));
    EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  }
  auto response = client.trigger({"alpha"});
  ASSERT_TRUE(IsJsonResponse(response, 201));
  EXPECT_TRUE(HasTriggerShape(*response.object(), {"alpha"}, {"alpha-collector"}));
}

TEST(Trigger, GivesEveryBatchAndEveryJobItsOwnId) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("alpha", "exit 0\n").addCollector("bravo", "exit 0\n");
  Daemon daemon(config);
  auto client = daemon.client();

  std::set<std::string> batch_ids, job_ids;
  for (int i = 0; i < 4; ++i) {
    auto run = triggerOrThrow(client, {"alpha", "bravo"});
    EXPECT_TRUE(batch_ids.insert(run.batch_id).second) << "repeated batch id " << run.batch_id;
    for (const auto& id : run.job_ids) {
      EXPECT_TRUE(job_ids.insert(id).second) << "repeated job id " << id;
    }
  }
  EXPECT_EQ(batch_ids.size(), 4u);
  EXPECT_EQ(job_ids.size(), 8u);
}

TEST(Trigger, StartsEveryCollectorOfTheBatch) {
  TempDir dir;
  DaemonConfig config(dir);
  // Each collector leaves a mark naming the job and batch the daemon told it it runs as.
  const std::string script =
      "echo \"$COLLECTOR_JOB_ID $COLLECTOR_BATCH_ID\" > \"$MARK_DIR/$COLLECTOR_NAME\"\n";
  config.addCollector("alpha", script, {{"env.MARK_DIR", dir.path()}})
      .addCollector("bravo", script, {{"env.MARK_DIR", dir.path()}})
      .addCollector("charlie", script, {{"env.MARK_DIR", dir.path()}});
  Daemon daemon(config);
  auto client = daemon.client();

  auto run = triggerOrThrow(client, {"bravo", "alpha"});
  auto batch = waitForBatchTerminal(client, run.batch_id);

  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed")) << batch.describe();
  EXPECT_EQ(readFile(dir.file("bravo")), run.job_ids[0] + " " + run.batch_id + "\n");
  EXPECT_EQ(readFile(dir.file("alpha")), run.job_ids[1] + " " + run.batch_id + "\n");
  EXPECT_FALSE(fileExists(dir.file("charlie"))) << "a collector that was not asked for ran";
}

}  // namespace
}  // namespace collectord::test
