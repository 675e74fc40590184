// Supervision: job logs. GET /api/collectors/runs/job/{id}/log serves a job's stdout and
// stderr (and collectord's "[collectord]" lines) by offsets into everything the job ever wrote,
// with X-Log-Offset / X-Log-Next-Offset / X-Log-Size / X-Log-Dropped; logs are capped at
// logs.max_bytes_per_job (the oldest output dropped, a marker line saying how much), and job
// logs older than logs.retention_days are removed.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <ctime>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using Poco::JSON::Object;

std::string logPath(const std::string& job_id, const std::string& query = "") {
  return "/api/collectors/runs/job/" + job_id + "/log" + (query.empty() ? "" : "?" + query);
}

std::uint64_t header(const HttpResponse& response, const std::string& name) {
  const auto value = response.header(name);
  if (!value) {
    ADD_FAILURE() << "no " << name << " header in " << response.describe();
    return ~0ULL;
  }
  return std::stoull(*value);
}

// The first line the daemon writes to a job's log.
std::string startLine(const DaemonConfig& config, const std::string& collector, pid_t pid,
                      int attempt = 1, int of = 1) {
  return "[collectord] attempt " + std::to_string(attempt) + " of " + std::to_string(of) +
         ": started " + config.collectorsDir() + "/" + collector + ".sh as pid " +
         std::to_string(pid) + "\n";
}

TEST(SupervisionLog, ServesStdoutAndStderrInTheOrderWritten) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("talker", R"sh(
echo $$ > "$PIDFILE"
echo "out one"
echo "err one" >&2
echo "out two"
)sh",
                      {{"env.PIDFILE", dir.file("talker.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"talker"});
  ASSERT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("completed"));
  const pid_t pid = waitForPidFile(dir.file("talker.pid"));

  const std::string expected = startLine(config, "talker", pid) +
                               "out one\nerr one\nout two\n"
                               "[collectord] exit code 0; job completed\n";
  const HttpResponse log = client.get(logPath(run.job_ids[0]));
  ASSERT_EQ(log.status, 200) << log.describe();
  EXPECT_EQ(log.header("Content-Type").value_or(""), "text/plain; charset=utf-8");
  EXPECT_EQ(log.body, expected);
  EXPECT_EQ(readFile(config.jobLogPath(run.job_ids[0])).value_or(""), expected);
  EXPECT_EQ(header(log, "X-Log-Offset"), 0u);
  EXPECT_EQ(header(log, "X-Log-Next-Offset"), expected.size());
  EXPECT_EQ(header(log, "X-Log-Size"), expected.size());
  EXPECT_EQ(header(log, "X-Log-Dropped"), 0u);
}

TEST(SupervisionLog, PagesByOffsetAndLimitAndTailsByLines) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("pager", "for i in $(seq 1 30); do echo \"line $i\"; done\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"pager"});
  ASSERT_EQ(jsonOf(*waitForBatchTerminal(client, run.batch_id).object(), "status"),
            jsonString("completed"));
  const std::string whole = readFile(config.jobLogPath(run.job_ids[0])).value_or("");
  ASSERT_GT(whole.size(), 200u);

  // Pages of 64 bytes, each starting where the last one said the next starts.
  std::string joined;
  std::uint64_t offset = 0;
  int pages = 0;
  while (offset < whole.size() && pages < 100) {
    const HttpResponse page = client.get(logPath(run.job_ids[0], "offset=" + std::to_string(offset) + "&limit=64"));
    ASSERT_EQ(page.status, 200) << page.describe();
    EXPECT_EQ(header(page, "X-Log-Offset"), offset);
    EXPECT_EQ(page.body, whole.substr(offset, 64));
    EXPECT_EQ(header(page, "X-Log-Next-Offset"), offset + page.body.size());
    EXPECT_EQ(header(page, "X-Log-Size"), whole.size());
    EXPECT_EQ(header(page, "X-Log-Dropped"), 0u);
    joined += page.body;
    offset = header(page, "X-Log-Next-Offset");
    ++pages;
  }
  EXPECT_EQ(joined, whole);
  EXPECT_EQ(pages, static_cast<int>((whole.size() + 63) / 64));

  // Past the end: nothing, at the end.
  const HttpResponse past = client.get(logPath(run.job_ids[0], "offset=100000"));
  ASSERT_EQ(past.status, 200);
  EXPECT_EQ(past.body, "");
  EXPECT_EQ(header(past, "X-Log-Offset"), whole.size());
  EXPECT_EQ(header(past, "X-Log-Next-Offset"), whole.size());

  // The last lines.
  const std::string last3 = "line 29\nline 30\n[collectord] exit code 0; job completed\n";
  const HttpResponse tail = client.get(logPath(run.job_ids[0], "tail=3"));
  ASSERT_EQ(tail.status, 200) << tail.describe();
  EXPECT_EQ(tail.body, last3);
  EXPECT_EQ(header(tail, "X-Log-Offset"), whole.size() - last3.size());
  EXPECT_EQ(header(tail, "X-Log-Next-Offset"), whole.size());
  EXPECT_EQ(header(tail, "X-Log-Size"), whole.size());
  const HttpResponse none = client.get(logPath(run.job_ids[0], "tail=0"));
  EXPECT_EQ(none.body, "");
  EXPECT_EQ(header(none, "X-Log-Offset"), whole.size());
  EXPECT_EQ(client.get(logPath(run.job_ids[0], "tail=10000")).body, whole);
}

TEST(SupervisionLog, ACappedLogKeepsTheNewestOutputBehindADroppedMarker) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[logs]\nmax_bytes_per_job = 4K\n");
  // 100 KiB of numbered 10-byte lines, so any byte's value is known from its offset. The last
  // 8 KiB go in one write() once the daemon has read everything before them (FIONREAD is 0):
  // a single chunk larger than the cap reaches the log.
  const std::string writer = R"py(
import fcntl, os, struct, termios, time
data = b"".join(b"%09d\n" % i for i in range(1, 10241))
def write_all(chunk):
    view = memoryview(chunk)
    while view:
        view = view[os.write(1, view):]
def unread():
    return struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD, b"\0\0\0\0"))[0]
write_all(data[:-8192])
deadline = time.time() + 20
while unread() > 0 and time.time() < deadline:
    time.sleep(0.01)
write_all(data[-8192:])
)py";
  writeFile(dir.file("writer.py"), writer);
  config.addBlockingCollector("cap", R"sh(
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
python3 "$WRITER"
wait_for_release 1
)sh",
                              {{"env.PIDFILE", dir.file("cap.pid")}, {"env.WRITER", dir.file("writer.py")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"cap"});
  const std::string id = run.job_ids[0];
  const pid_t pid = waitForPidFile(dir.file("cap.pid"));
  ASSERT_GT(pid, 0);

  std::string data;
  for (int i = 1; i <= 10240; ++i) {
    char line[16];
    std::snprintf(line, sizeof line, "%09d\n", i);
    data += line;
  }
  const std::string start = startLine(config, "cap", pid);
  const std::size_t max_bytes = 4096;

  // Checks the log against everything the job wrote so far: `stream`.
  auto checkLog = [&](const std::string& stream, const std::string& when) {
    SCOPED_TRACE(when);
    const std::string file = readFile(config.jobLogPath(id)).value_or("");
    const std::string prefix = "[collectord] ";
    const std::string suffix = " earlier bytes of output were dropped (logs.max_bytes_per_job)\n";
    ASSERT_EQ(file.rfind(prefix, 0), 0u) << "no dropped marker at the start:\n" << file.substr(0, 200);
    const std::size_t marker_end = file.find('\n') + 1;
    const std::string marker = file.substr(0, marker_end);
    ASSERT_GT(marker.size(), prefix.size() + suffix.size());
    ASSERT_EQ(marker.substr(marker.size() - suffix.size()), suffix) << marker;
    const std::uint64_t dropped =
        std::stoull(marker.substr(prefix.size(), marker.size() - prefix.size() - suffix.size()));
    EXPECT_GT(dropped, 0u);
    EXPECT_LE(file.size() - marker.size(), max_bytes)
        << "the log holds more than logs.max_bytes_per_job of output";
    EXPECT_EQ(dropped + (file.size() - marker.size()), stream.size())
        << "the marker's count plus what is left must be everything the job wrote";
    EXPECT_EQ(file.substr(marker_end), stream.substr(std::min<std::size_t>(dropped, stream.size())))
        << "what is left must be the newest output, in one piece";

    const HttpResponse all = client.get(logPath(id, "offset=0&limit=1048576"));
    ASSERT_EQ(all.status, 200) << all.describe();
    EXPECT_EQ(header(all, "X-Log-Dropped"), dropped);
    EXPECT_EQ(header(all, "X-Log-Offset"), dropped) << "an offset before the kept output starts where it does";
    EXPECT_EQ(header(all, "X-Log-Size"), stream.size());
    EXPECT_EQ(header(all, "X-Log-Next-Offset"), stream.size());
    EXPECT_EQ(all.body, stream.substr(std::min<std::size_t>(dropped, stream.size())));

    const std::uint64_t at = stream.size() - 1000;
    const HttpResponse page = client.get(logPath(id, "offset=" + std::to_string(at) + "&limit=100"));
    ASSERT_EQ(page.status, 200) << page.describe();
    EXPECT_EQ(header(page, "X-Log-Offset"), at);
    EXPECT_EQ(page.body, stream.substr(at, 100)) << "the bytes at an offset are the bytes written there";
    EXPECT_EQ(header(page, "X-Log-Next-Offset"), at + 100);

    const HttpResponse tail = client.get(logPath(id, "tail=2"));
    ASSERT_EQ(tail.status, 200);
    const std::size_t cut = stream.rfind('\n', stream.size() - 2);
    const std::size_t two = stream.rfind('\n', cut - 1) + 1;
    EXPECT_EQ(tail.body, stream.substr(two));
    EXPECT_EQ(header(tail, "X-Log-Offset"), two);
  };

  // While it runs: everything it wrote has reached the log.
  ASSERT_TRUE(waitUntil([&] {
    const HttpResponse tail = client.get(logPath(id, "tail=1"));
    return tail.status == 200 && tail.body == "000010240\n";
  })) << client.get(logPath(id, "tail=5")).describe();
  checkLog(start + data, "while running");

  config.release("cap");
  ASSERT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
  checkLog(start + data + "[collectord] exit code 0; job completed\n", "after the end");
}

TEST(SupervisionLog, BadParametersAre400AndUnknownJobs404) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nmax_concurrent = 1\n");
  config.addBlockingCollector("blocker", "wait_for_release 1\n");
  config.addCollector("later", "echo later\n");
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered blocker = triggerOrThrow(client, {"blocker"});
  const Triggered queued = triggerOrThrow(client, {"later"});
  const std::string id = queued.job_ids[0];
  ASSERT_EQ(jobStatus(client, id), "queued");

  // A job that has not started has an empty log.
  const HttpResponse empty = client.get(logPath(id));
  ASSERT_EQ(empty.status, 200) << empty.describe();
  EXPECT_EQ(empty.body, "");
  for (const char* name : {"X-Log-Offset", "X-Log-Next-Offset", "X-Log-Size", "X-Log-Dropped"}) {
    EXPECT_EQ(header(empty, name), 0u) << name;
  }

  const std::string tail_error = "'tail' must be an integer from 0 to 10000";
  const std::string offset_error = "'offset' must be a non-negative integer";
  const std::string limit_error = "'limit' must be an integer from 1 to 1048576";
  const std::string both_error = "Use either 'tail' or 'offset'/'limit', not both";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tail=abc", tail_error},        {"tail=-1", tail_error},
      {"tail=10001", tail_error},      {"tail=", tail_error},
      {"offset=x", offset_error},      {"offset=-5", offset_error},
      {"offset=1.5", offset_error},    {"limit=0", limit_error},
      {"limit=1048577", limit_error},  {"limit=ten", limit_error},
      {"tail=5&offset=0", both_error}, {"tail=5&limit=10", both_error},
  };
  for (const auto& [query, message] : cases) {
    EXPECT_TRUE(IsErrorResponse(client.get(logPath(id, query)), 400, message)) << query;
  }
  EXPECT_TRUE(IsErrorResponse(client.get(logPath("la_00000000")), 404, "Job not found"));
  EXPECT_TRUE(IsErrorResponse(client.get(logPath("bogus")), 404, "Job not found"));

  config.release("blocker");
  ASSERT_EQ(jsonOf(*waitForJobTerminal(client, id).object(), "status"), jsonString("completed"));
  EXPECT_NE(client.get(logPath(id)).body.find("later\n"), std::string::npos);
  EXPECT_EQ(jobStatus(client, blocker.job_ids[0]), "completed");
}

TEST(SupervisionLog, RetentionRemovesOldJobLogsOnlyAtStart) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[logs]\nretention_days = 2\n");
  config.addCollector("quick", "exit 0\n");
  const std::string old_job = config.logsDir() + "/ab_12345678.log";
  const std::string recent_job = config.logsDir() + "/cd_12345678.log";
  const std::string old_other = config.logsDir() + "/notes.log";
  const std::string old_odd = config.logsDir() + "/ab_1234567.log";
  for (const std::string& path : {old_job, recent_job, old_other, old_odd}) writeFile(path, "x\n");
  const std::time_t three_days_ago = std::time(nullptr) - 3 * 24 * 3600;
  for (const std::string& path : {old_job, old_other, old_odd}) {
    const utimbuf times{three_days_ago, three_days_ago};
    ASSERT_EQ(::utime(path.c_str(), &times), 0);
  }
  Daemon daemon(config);

  EXPECT_FALSE(fileExists(old_job)) << "a job log older than retention_days is removed";
  EXPECT_TRUE(fileExists(recent_job));
  EXPECT_TRUE(fileExists(old_other)) << "only files named like job logs are touched";
  EXPECT_TRUE(fileExists(old_odd)) << "only files named like job logs are touched";
  EXPECT_TRUE(waitForDaemonLog(daemon, "removed 1 job logs older than 2 days"));
}

TEST(SupervisionLog, ACappedLogStaysConsistentAcrossRetries) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[logs]\nmax_bytes_per_job = 4K\n");
  // Each attempt writes 10,000 bytes of numbered lines; the first fails, the second succeeds.
  config.addCollector("twice", R"sh(
echo $$ >> "$PIDS"
seq -f '%09g' 1 1000
[ "$COLLECTOR_ATTEMPT" -ge 2 ]
)sh",
                      {{"retries", "1"}, {"retry_backoff", "1s"}, {"env.PIDS", dir.file("pids")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"twice"});
  const std::string id = run.job_ids[0];
  const HttpResponse done = waitForJobTerminal(client, id);
  ASSERT_EQ(jsonOf(*done.object(), "status"), jsonString("completed")) << done.describe();
  const auto pids = readLines(dir.file("pids"));
  ASSERT_EQ(pids.size(), 2u);

  std::string data;
  for (int i = 1; i <= 1000; ++i) {
    char line[16];
    std::snprintf(line, sizeof line, "%09d\n", i);
    data += line;
  }
  const std::string stream =
      startLine(config, "twice", std::stoi(pids[0]), 1, 2) + data +
      "[collectord] exit code 1; job queued: Retrying (attempt 2 of 2) after: exit code 1\n" +
      startLine(config, "twice", std::stoi(pids[1]), 2, 2) + data +
      "[collectord] exit code 0; job completed\n";

  const std::string file = readFile(config.jobLogPath(id)).value_or("");
  const std::size_t marker_end = file.find('\n') + 1;
  ASSERT_GT(marker_end, 0u);
  const std::string marker = file.substr(0, marker_end);
  const HttpResponse all = client.get(logPath(id, "offset=0&limit=1048576"));
  ASSERT_EQ(all.status, 200) << all.describe();
  const std::uint64_t dropped = header(all, "X-Log-Dropped");
  EXPECT_EQ(marker, "[collectord] " + std::to_string(dropped) +
                        " earlier bytes of output were dropped (logs.max_bytes_per_job)\n");
  EXPECT_EQ(header(all, "X-Log-Size"), stream.size())
      << "offsets count every byte of every attempt";
  EXPECT_EQ(header(all, "X-Log-Offset"), dropped);
  ASSERT_LE(dropped, stream.size());
  EXPECT_EQ(all.body, stream.substr(dropped));
  EXPECT_EQ(file.substr(marker_end), stream.substr(dropped));
  EXPECT_LE(file.size() - marker.size(), 4096u);
}

}  // namespace
}  // namespace collectord::test
