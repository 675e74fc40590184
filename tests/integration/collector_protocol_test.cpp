// The progress protocol on fd 3: bad lines become warnings in the job log and change nothing,
// and the supervisor keeps reading the lines after them.

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

// The line numbers of "[collectord] protocol warning: line N: REASON" lines in `log`; a warning
// without a reason counts as line 0, so that it fails the comparison.
std::multiset<int> warnedLines(const std::string& log) {
  static const std::regex warning(R"(^\[collectord\] protocol warning: line ([0-9]+): (.*)$)");
  std::multiset<int> lines;
  std::istringstream text(log);
  for (std::string line; std::getline(text, line);) {
    std::smatch match;
    if (std::regex_match(line, match, warning)) {
      lines.insert(match[2].str().empty() ? 0 : std::stoi(match[1].str()));
    }
  }
  return lines;
}

TEST(CollectorProtocol, LogsAWarningForEachBadLineAndIgnoresIt) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
long=$(head -c 70000 /dev/zero | tr '\0' a)
printf 'this is not json\n' >&3
printf '[1, 2, 3]\n' >&3
printf '{"progress": 150}\n' >&3
printf '{"progress": -1}\n' >&3
printf '{"progress": "50"}\n' >&3
printf '{"status": "finished"}\n' >&3
printf '{"message": 42}\n' >&3
printf '{"error": ["API returned 401"]}\n' >&3
printf '{"message": "\377\376 not UTF-8"}\n' >&3
printf '{"progress": 40, "message": "Still going"}\n' >&3
printf '{"message": "%s"}\n' "$long" >&3
printf '{"progress": 45.7}\n' >&3
printf '{"progress": 101, "message": "too far"}\n' >&3
printf '{"status": "failed", "error": 401}\n' >&3
printf '"just a string"\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});
  const std::string log_path = config.jobLogPath(run.job_ids[0]);
  const std::multiset<int> bad_lines = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15};

  ASSERT_TRUE(waitUntil([&] { return warnedLines(readFile(log_path).value_or("")).size() >= 13; }))
      << readFile(log_path).value_or("(no job log)");
  auto response = waitForJob(client, run.job_ids[0],
                             [](const Object& j) { return jsonOf(j, "progress_percent") == "45"; });

  EXPECT_EQ(warnedLines(readFile(log_path).value_or("")), bad_lines)
      << readFile(log_path).value_or("");
  ASSERT_TRUE(IsJsonResponse(response, 200));
  ASSERT_TRUE(HasJobStatusShape(*response.object()));
  EXPECT_EQ(jsonOf(*response.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*response.object(), "progress_percent"), "45");
  EXPECT_EQ(jsonOf(*response.object(), "message"), jsonString("Still going"));
  EXPECT_EQ(jsonOf(*response.object(), "error"), "null");

  config.release("ninja");
  auto batch = waitForBatchTerminal(client, run.batch_id);
  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed"));
  auto job = client.job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  ASSERT_TRUE(HasJobStatusShape(*job.object()));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("completed"));
  EXPECT_EQ(jsonOf(*job.object(), "message"), jsonString("Still going"));
  EXPECT_EQ(jsonOf(*job.object(), "error"), "null");
}

TEST(CollectorProtocol, AcceptsEveryFieldAsOptionalAndIgnoresUnknownKeys) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", R"sh(
printf '{}\n' >&3
printf '{"progress": 25, "message": "Processing devices...", "devices": {"seen": [1, 2]}}\n' >&3
printf '{"status": "running"}\n' >&3
wait_for_release 1
)sh");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});

  auto response = waitForJob(client, run.job_ids[0], [](const Object& j) {
    return stringField(j, "message") == "Processing devices...";
  });

  ASSERT_TRUE(IsJsonResponse(response, 200));
  EXPECT_EQ(jsonOf(*response.object(), "status"), jsonString("running"));
  EXPECT_EQ(jsonOf(*response.object(), "progress_percent"), "25");
  config.release("ninja");
  waitForBatchTerminal(client, run.batch_id);
  EXPECT_EQ(warnedLines(readFile(config.jobLogPath(run.job_ids[0])).value_or("")),
            std::multiset<int>{})
      << readFile(config.jobLogPath(run.job_ids[0])).value_or("");
}

TEST(CollectorProtocol, SurvivesACollectorThatFloodsThePipe) {
  TempDir dir;
  DaemonConfig config(dir);
  // Thousands of lines in a burst, garbage mixed in: the daemon must neither block the child
  // nor fall over, and the last good line wins.
  config.addCollector("ninja", R"py(#!/usr/bin/python3
import os
with os.fdopen(3, "w") as progress:
    for i in range(5000):
        progress.write('{"progress": %d, "message": "item %d"}\n' % (i % 100, i))
        if i % 500 == 0:
            progress.write("garbage\n")
    progress.write('{"progress": 99, "message": "Saving to database..."}\n')
)py");
  Daemon daemon(config);
  auto client = daemon.client();
  auto run = triggerOrThrow(client, {"ninja"});

  auto batch = waitForBatchTerminal(client, run.batch_id, std::chrono::seconds(30));

  ASSERT_TRUE(IsJsonResponse(batch, 200));
  EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("completed"));
  auto job = client.job(run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "message"), jsonString("Saving to database..."));
  const std::string log_path = config.jobLogPath(run.job_ids[0]);
  EXPECT_TRUE(waitUntil([&] { return warnedLines(readFile(log_path).value_or("")).size() == 10; }))
      << "expected 10 protocol warnings in " << readFile(log_path).value_or("(no job log)");
}

}  // namespace
}  // namespace collectord::test
