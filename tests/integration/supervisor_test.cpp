// The supervisor on its own, without HTTP: a real SQLite store in a temp folder (wrapped only to
// count writes) and real child processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_harness.h"
#include "sqlite_job_store.h"
#include "supervisor.h"
#include "time_format.h"

namespace collectord {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The real store; counts the transactions that save progress.
class CountingStore final : public JobStore {
 public:
  explicit CountingStore(const std::string& path) : real_(path) {}
  bool insertBatch(const BatchRecord& b, const std::vector<JobRecord>& j) override {
    const bool inserted = real_.insertBatch(b, j);
    // As a database server whose answer to COMMIT is lost: written, and reported as failed.
    if (lose_next_insert_answer.exchange(false)) throw StoreError("server closed the connection");
    return inserted;
  }
  void save(const std::vector<JobRecord>& j, const std::vector<BatchRecord>& b,
            const std::vector<std::pair<std::string, AttemptRecord>>& a = {},
            const std::vector<WebhookOutboxRow>& o = {}) override {
    ++saves;
    real_.save(j, b, a, o);
  }
  std::vector<AttemptRecord> attemptsOf(const std::string& id) override { return real_.attemptsOf(id); }
  std::optional<BatchRecord> findBatch(const std::string& id) override { return real_.findBatch(id); }
  std::vector<JobRecord> jobsOfBatch(const std::string& id) override { return real_.jobsOfBatch(id); }
  std::optional<JobRecord> findJob(const std::string& id) override { return real_.findJob(id); }
  std::optional<JobRecord> latestRun(const std::string& c) override { return real_.latestRun(c); }
  std::vector<JobRecord> history(int limit) override { return real_.history(limit); }
  std::optional<JobRecord> lastFinishedRun(const std::string& c) override {
    return real_.lastFinishedRun(c);
  }
  std::vector<JobRecord> activeJobs() override { return real_.activeJobs(); }
  void ping() override { real_.ping(); }
  std::optional<Micros> lastScheduledRun(const std::string& c) override {
    return real_.lastScheduledRun(c);
  }
  void recordScheduledRun(const std::string& c, Micros at) override {
    real_.recordScheduledRun(c, at);
  }

  std::atomic<int> saves{0};
  std::atomic<bool> lose_next_insert_answer{false};

 private:
  SqliteJobStore real_;
};

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/collectord-supervisor-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    config_.logs_directory = (dir_ / "logs").string();
    store_ = std::make_unique<CountingStore>((dir_ / "jobs.db").string());
  }
  void TearDown() override {
    supervisor_.reset();
    store_.reset();
    if (!::getenv("COLLECTORD_KEEP_TEST_DIRS")) fs::remove_all(dir_);
  }

  // A collector running `script` (Python 3) with the progress pipe on fd 3.
  void addPythonCollector(const std::string& name, const std::string& script) {
    const fs::path file = dir_ / (name + ".py");
    std::ofstream(file) << "import os, sys, time\n" << script;
    CollectorConfig c;
    c.name = name;
    c.job_name = name + "-collector";
    c.command = "/usr/bin/python3";
    c.args = {file.string()};
    c.working_directory = dir_.string();
    config_.collectors.push_back(c);
  }

  void start() {
    config_.shutdown_grace = 2000ms;
    supervisor_ = std::make_unique<Supervisor>(config_, *store_, SupervisorOptions{100ms});
    supervisor_->start();
  }

  JobRecord runToEnd(const std::string& name) {
    const TriggerResult t = supervisor_->trigger({name}, Priority::kNormal);
    return waitTerminal(t.jobs.at(0).job_id);
  }

  JobRecord waitTerminal(const std::string& job_id, std::chrono::seconds limit = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto job = store_->findJob(job_id);
      if (job && isTerminal(job->status)) return *job;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "job " << job_id << " not terminal in time";
        return job.value_or(JobRecord{});
      }
      std::this_thread::sleep_for(20ms);  // polling the store for a state change
    }
  }

  std::string jobLog(const std::string& job_id) {
    std::ifstream in(dir_ / "logs" / (job_id + ".log"));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path dir_;
  Config config_;
  std::unique_ptr<CountingStore> store_;
  std::unique_ptr<Supervisor> supervisor_;
};

bool processAlive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST_F(SupervisorTest, ABatchWrittenDespiteAFailureReportRunsOnceAndIsNotWrittenAgain) {
  addPythonCollector("ninja", "sys.exit(0)\n");
  start();
  store_->lose_next_insert_answer = true;

  const TriggerResult t = supervisor_->trigger({"ninja"}, Priority::kNormal);

  ASSERT_TRUE(t.created);
  EXPECT_EQ(waitTerminal(t.jobs.at(0).job_id).status, JobStatus::kCompleted);
  EXPECT_EQ(store_->history(10).size(), 1u) << "the batch was inserted a second time";
}

TEST_F(SupervisorTest, BurstOfProgressLinesIsCoalescedIntoFewWrites) {
  addPythonCollector("burst", R"(
out = os.fdopen(3, "w", buffering=1 << 16)
for i in range(100000):
    out.write('{"progress": %d, "message": "line %d"}\n' % (i * 100 // 100000, i))
out.flush()
)");
  start();
  const auto started = std::chrono::steady_clock::now();
  const JobRecord job = runToEnd("burst");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(job.status, JobStatus::kCompleted) << job.error.value_or("");
  EXPECT_EQ(job.message, "line 99999") << "the last line wins";
  EXPECT_EQ(job.progress_percent, 100);
  // One write per flush interval, plus start and end: nowhere near one per line.
  const auto intervals = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() / 100;
  EXPECT_LE(store_->saves.load(), intervals + 5) << "elapsed " << intervals << " intervals";
  EXPECT_LT(store_->saves.load(), 1000);
}

TEST_F(SupervisorTest, LineSplitAcrossWritesIsReassembled) {
  addPythonCollector("split", R"(
os.write(3, b'{"progress": 3')
time.sleep(0.2)
os.write(3, b'3, "message": "split line"}\n')
)");
  start();
  const JobRecord job = runToEnd("split");
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.message, "split line");
  EXPECT_EQ(jobLog(job.job_id).find("protocol warning"), std::string::npos) << jobLog(job.job_id);
}

TEST_F(SupervisorTest, FinalLineWithoutNewlineCounts) {
  addPythonCollector("nonl", R"(
os.write(3, b'{"status": "failed", "error": "no newline"}')
)");
  start();
  const JobRecord job = runToEnd("nonl");
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error, "no newline");
}

TEST_F(SupervisorTest, OverlongLineIsLoggedAndSkippedAndLaterLinesStillCount) {
  addPythonCollector("long", R"(
os.write(3, b'{"message": "' + b'x' * 200000 + b'"}\n')
os.write(3, b'{"progress": 42, "message": "after"}\n')
os.write(3, b'garbage\n')
os.write(3, b'{"status": "failed", "error": "reported"}\n')
)");
  start();
  const JobRecord job = runToEnd("long");
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error, "reported");
  EXPECT_EQ(job.message, "after");
  EXPECT_EQ(job.progress_percent, 42);
  const std::string log = jobLog(job.job_id);
  EXPECT_NE(log.find("protocol warning: line 1: longer than 65536 bytes"), std::string::npos) << log;
  EXPECT_NE(log.find("protocol warning: line 3: "), std::string::npos) << log;
}

TEST_F(SupervisorTest, GrandchildHoldingThePipeDoesNotDelayTheEndAndIsKilled) {
  const fs::path pid_file = dir_ / "grandchild.pid";
  addPythonCollector("orphan", "pid_file = '" + pid_file.string() + "'\n" + R"(
pid = os.fork()
if pid == 0:
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)   # keeps fd 3 open
    os._exit(0)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(pid))
os.rename(pid_file + ".tmp", pid_file)
os.write(3, b'{"progress": 50, "message": "parent done"}\n')
)");
  start();
  const auto started = std::chrono::steady_clock::now();
  const JobRecord job = runToEnd("orphan");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.message, "parent done");
  pid_t grandchild = 0;
  std::ifstream(pid_file) >> grandchild;
  ASSERT_GT(grandchild, 0);
  // The grandchild was re-parented (to init or a subreaper); wait for it to disappear.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (processAlive(grandchild) && std::chrono::steady_clock::now() < deadline) {
    ::waitpid(grandchild, nullptr, WNOHANG);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(processAlive(grandchild)) << "no process of a finished job survives";
}

TEST_F(SupervisorTest, RestartFailsJobsLeftRunningAndKillsTheirProcesses) {
  addPythonCollector("quick", "pass\n");
  // A previous instance's job: a live process in its own group, marked with its job ID.
  const std::string job_id = "qu_12345678";
  const pid_t leftover = ::fork();
  if (leftover == 0) {
    ::setpgid(0, 0);
    // Recovery matches both IDs, so another daemon's processes are never taken for ours.
    const std::string job_marker = "COLLECTOR_JOB_ID=" + job_id;
    const std::string batch_marker = "COLLECTOR_BATCH_ID=bc_12345678";
    char* const argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("60"), nullptr};
    char* const envp[] = {const_cast<char*>(job_marker.c_str()),
                          const_cast<char*>(batch_marker.c_str()), nullptr};
    ::execve("/bin/sleep", argv, envp);
    ::_exit(127);
  }
  ::setpgid(leftover, leftover);
  // Recovery knows a process by its environment, which is the marked one only once the child
  // has exec'd: a slow child (a sanitizer build) must not be scanned before that.
  const std::string environ_path = "/proc/" + std::to_string(leftover) + "/environ";
  ASSERT_TRUE(test::waitUntil([&] {
    std::ifstream in(environ_path, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("COLLECTOR_JOB_ID=" + job_id) != std::string::npos;
  }));
  BatchRecord batch;
  batch.batch_id = "bc_12345678";
  batch.status = JobStatus::kRunning;
  batch.started_at = batch.updated_at = nowMicros();
  JobRecord job;
  job.job_id = job_id;
  job.batch_id = batch.batch_id;
  job.collector = "quick";
  job.job_name = "quick-collector";
  job.started_at = job.updated_at = batch.started_at;
  JobRecord queued = job;
  queued.job_id = "qu_87654321";
  ASSERT_TRUE(store_->insertBatch(batch, {job, queued}));
  job.status = JobStatus::kRunning;
  job.pid = leftover;
  store_->save({job}, {batch});

  start();
  const JobRecord failed = waitTerminal(job_id);
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.error, "supervisor restarted while the job was running");
  int status = 0;
  ASSERT_EQ(::waitpid(leftover, &status, 0), leftover);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  const JobRecord restarted = waitTerminal(queued.job_id);
  EXPECT_EQ(restarted.status, JobStatus::kCompleted) << "queued jobs are started on restart";
  const auto b = store_->findBatch(batch.batch_id);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status, JobStatus::kFailed);
  EXPECT_EQ(b->error, "quick-collector: supervisor restarted while the job was running");
}

TEST_F(SupervisorTest, StopCancelsRunningJobsAndWritesThem) {
  addPythonCollector("sleepy", R"(
os.write(3, b'{"progress": 10, "message": "sleeping"}\n')
time.sleep(60)
)");
  start();
  const TriggerResult t = supervisor_->trigger({"sleepy"}, Priority::kNormal);
  const std::string id = t.jobs.at(0).job_id;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (store_->findJob(id)->message != std::optional<std::string>("sleeping")) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(20ms);
  }
  supervisor_->stop();
  const auto job = store_->findJob(id);
  EXPECT_EQ(job->status, JobStatus::kCancelled);
  EXPECT_EQ(job->error, "supervisor shutting down");
  EXPECT_THROW(supervisor_->trigger({"sleepy"}, Priority::kNormal), ShuttingDownError);
}

}  // namespace
}  // namespace collectord
