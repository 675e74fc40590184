// Crash and restart: the daemon is killed with SIGKILL while jobs run, while a client triggers
// runs, while collectors flood progress lines and in the middle of a SIGTERM shutdown, then
// started again on the same folder. After each restart the store's database itself (read
// directly, not through the API: the SQLite file, or the PostgreSQL database in the suite's
// PostgreSQL run) must show: every job terminal with the exact error of its fate, every batch
// the API acknowledged present exactly once with exactly its jobs, no orphan rows, SQLite's
// `PRAGMA integrity_check` = ok, and no process left of any of those jobs.
//
// The random moments come from a seeded generator: the seed is printed, and
// COLLECTORD_CRASH_SEED=N replays a run. COLLECTORD_CRASH_ITERATIONS sets how many kills the
// random test makes (default 5, about 20 s).

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "postgres_server.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

constexpr const char* kRestarted = "supervisor restarted while the job was running";
constexpr const char* kShutdown = "supervisor shutting down";
constexpr const char* kDone = "done";

// Reports progress in a loop until the file $STOP exists, then ends with progress 100. Its
// `sleep 300` child outlives the collector when the daemon dies (only the collector has the
// parent-death signal): the next start must find and kill it.
constexpr const char* kLooper = R"sh(
echo "S $COLLECTOR_JOB_ID $COLLECTOR_ATTEMPT" >> "$EVENTS"
sleep 300 &
i=0
while [ ! -e "$STOP" ]; do
  i=$((i + 1))
  printf '{"progress": %d, "message": "step %d"}\n' $((i % 100)) $i >&3
  sleep 0.2
done
printf '{"progress": 100, "message": "done"}\n' >&3
)sh";

// A short run: three progress lines, then done. Also leaves a child behind if killed.
constexpr const char* kQuick = R"sh(
echo "S $COLLECTOR_JOB_ID $COLLECTOR_ATTEMPT" >> "$EVENTS"
sleep 300 &
printf '{"progress": 30, "message": "fetching"}\n' >&3
sleep 0.05
printf '{"progress": 60, "message": "processing"}\n' >&3
sleep 0.05
printf '{"progress": 100, "message": "done"}\n' >&3
)sh";

// Progress lines as fast as awk writes them, until $STOP exists.
constexpr const char* kFlood = R"sh(
echo "S $COLLECTOR_JOB_ID $COLLECTOR_ATTEMPT" >> "$EVENTS"
sleep 300 &
awk -v stop="$STOP" 'BEGIN {
  for (i = 1; ; i++) {
    printf "{\"progress\": %d, \"message\": \"line %d\"}\n", i % 100, i
    if (i % 2000 == 0) { fflush(); if ((getline line < stop) >= 0) exit }
  }
}' >&3
printf '{"progress": 100, "message": "done"}\n' >&3
)sh";

// The store's database, read directly: the SQLite file through Poco::Data, or the PostgreSQL
// database (when the suite runs against one) through libpq. Queries take at most one `?`.
class StoreFile {
 public:
  explicit StoreFile(const DaemonConfig& config)
      : postgres_url_(config.onPostgres() ? config.storeUrl() : ""),
        session_(open(postgres_url_.empty() ? config.dbPath() : ":memory:")) {}

  // SQLite's own check of the file; PostgreSQL keeps its pages consistent itself (WAL and
  // checksummed crash recovery), so there is nothing of ours to check there.
  std::string integrityCheck() {
    if (!postgres_url_.empty()) return "ok";
    std::string result;
    session_ << "PRAGMA integrity_check", into(result), now;
    return result;
  }
  int count(const std::string& sql, const std::string& arg = "") {
    return std::stoi(rows(sql, arg).at(0).at(0));
  }
  // Every row of `sql` as strings (NULL as "<null>").
  std::vector<std::vector<std::string>> rows(const std::string& sql, const std::string& arg = "") {
    if (!postgres_url_.empty()) {
      std::string numbered = sql;
      if (const auto at = numbered.find('?'); at != std::string::npos) numbered.replace(at, 1, "$1");
      return queryRows(postgres_url_, numbered,
                       arg.empty() ? std::vector<std::string>{} : std::vector<std::string>{arg});
    }
    Statement statement(session_);
    std::string value = arg;
    statement << sql;
    if (!arg.empty()) statement, use(value);
    statement.execute();
    RecordSet rs(statement);
    std::vector<std::vector<std::string>> out;
    for (std::size_t row = 0; row < rs.rowCount(); ++row) {
      std::vector<std::string> fields;
      for (std::size_t column = 0; column < rs.columnCount(); ++column) {
        const Poco::Dynamic::Var v = rs.value(column, row);
        fields.push_back(v.isEmpty() ? "<null>" : v.convert<std::string>());
      }
      out.push_back(std::move(fields));
    }
    return out;
  }

 private:
  static Session open(const std::string& path) {
    Poco::Data::SQLite::Connector::registerConnector();
    Session session("SQLite", path);
    session.setConnectionTimeout(10);  // the daemon may hold the write lock for a moment
    return session;
  }
  std::string postgres_url_;
  Session session_;
};

// COLLECTOR_JOB_ID of every live process of this user, with its pids: one pass over /proc.
std::map<std::string, std::vector<pid_t>> collectorProcesses() {
  std::map<std::string, std::vector<pid_t>> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  const std::string marker = "COLLECTOR_JOB_ID=";
  while (dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto environ = readFile("/proc/" + name + "/environ");
    if (!environ) continue;
    std::size_t at = 0;
    while (at < environ->size()) {
      std::size_t end = environ->find('\0', at);
      if (end == std::string::npos) end = environ->size();
      if (environ->compare(at, marker.size(), marker) == 0) {
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (processAlive(pid)) {
          found[environ->substr(at + marker.size(), end - at - marker.size())].push_back(pid);
        }
        break;
      }
      at = end + 1;
    }
  }
  ::closedir(proc);
  return found;
}

// Live processes of the given jobs, as "JOB_ID: pid pid" lines; empty when there are none.
std::string leftoversOf(const std::set<std::string>& job_ids) {
  std::string out;
  for (const auto& [id, pids] : collectorProcesses()) {
    if (!job_ids.count(id)) continue;
    out += id + ":";
    for (pid_t pid : pids) out += " " + std::to_string(pid);
    out += "\n";
  }
  return out;
}

// SIGKILLs, on destruction, whatever is left of the jobs it was told about, so that a failed
// test leaves no `sleep 300` behind.
class JobReaper {
 public:
  ~JobReaper() {
    for (const auto& [id, pids] : collectorProcesses()) {
      if (!ids_.count(id)) continue;
      for (pid_t pid : pids) ::kill(pid, SIGKILL);
    }
  }
  void add(const std::string& job_id) {
    std::lock_guard lock(mutex_);
    ids_.insert(job_id);
  }

 private:
  std::mutex mutex_;
  std::set<std::string> ids_;  // guarded by mutex_
};

// What the API acknowledged with 201: each batch and its job IDs in request order.
struct Ledger {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> batches;  // guarded by mutex
  int unanswered = 0;  // triggers cut off by a kill: their batch may or may not exist

  void add(const Triggered& t) {
    std::lock_guard lock(mutex);
    batches[t.batch_id] = t.job_ids;
  }
};

int envInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

std::uint64_t seedFromEnvironment() {
  if (const char* value = std::getenv("COLLECTORD_CRASH_SEED"); value && *value) {
    return std::strtoull(value, nullptr, 10);
  }
  return std::random_device{}();
}

// Waits (bounded) until no row of the store is queued or running.
bool waitForQuietStore(StoreFile& store, std::chrono::milliseconds timeout) {
  return waitUntil(
      [&] {
        return store.count("SELECT COUNT(*) FROM job_runs WHERE status IN ('queued','running')") ==
                   0 &&
               store.count(
                   "SELECT COUNT(*) FROM job_batches WHERE status IN ('queued','running')") == 0;
      },
      timeout, std::chrono::milliseconds(100));
}

// The whole store against what the API acknowledged. Returns every job ID in the store.
std::set<std::string> expectConsistentStore(StoreFile& store, Ledger& ledger) {
  EXPECT_EQ(store.integrityCheck(), "ok");
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_runs WHERE status IN ('queued','running')"), 0);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_batches WHERE status IN ('queued','running')"),
            0);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_runs r LEFT JOIN job_batches b "
                        "ON r.batch_id = b.batch_id WHERE b.batch_id IS NULL"),
            0)
      << "jobs of a batch that does not exist";
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_batches b WHERE NOT EXISTS "
                        "(SELECT 1 FROM job_runs r WHERE r.batch_id = b.batch_id)"),
            0)
      << "batches without jobs";

  std::lock_guard lock(ledger.mutex);
  for (const auto& [batch_id, job_ids] : ledger.batches) {
    EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_batches WHERE batch_id = ?", batch_id), 1)
        << "acknowledged batch " << batch_id;
    std::vector<std::string> stored;
    for (const auto& row :
         store.rows("SELECT job_id FROM job_runs WHERE batch_id = ? ORDER BY position", batch_id)) {
      stored.push_back(row[0]);
    }
    EXPECT_EQ(stored, job_ids) << "jobs of acknowledged batch " << batch_id;
  }
  const int batches = store.count("SELECT COUNT(*) FROM job_batches");
  EXPECT_GE(batches, static_cast<int>(ledger.batches.size()));
  EXPECT_LE(batches, static_cast<int>(ledger.batches.size()) + ledger.unanswered)
      << "more batches than triggers";

  std::set<std::string> ids;
  for (const auto& row :
       store.rows("SELECT job_id, status, progress_percent, message, error FROM job_runs")) {
    ids.insert(row[0]);
    const std::string& status = row[1];
    const std::string what =
        row[0] + " " + status + " progress=" + row[2] + " message=" + row[3] + " error=" + row[4];
    if (status == "completed") {
      EXPECT_EQ(row[2], "100") << what;
      EXPECT_EQ(row[3], kDone) << what;
      EXPECT_EQ(row[4], "<null>") << what;
    } else if (status == "failed") {
      EXPECT_EQ(row[4], kRestarted) << what;
    } else if (status == "cancelled") {
      EXPECT_EQ(row[4], kShutdown) << what;
    } else {
      ADD_FAILURE() << "not terminal: " << what;
    }
  }
  return ids;
}

// Waits (bounded) until no process of `ids` is alive; a failure lists those that are.
void expectNoProcessLeft(const std::set<std::string>& ids) {
  std::string left;
  // A collector killed by its parent-death signal may leave a `sleep 0.2` for that long.
  waitUntil([&] { return (left = leftoversOf(ids)).empty(); }, std::chrono::seconds(10),
            std::chrono::milliseconds(100));
  EXPECT_EQ(left, "") << "processes of these jobs are still alive";
}

// Starts of one job attempt seen more than once in the events file.
std::string repeatedStarts(const std::string& events_path) {
  std::map<std::string, int> starts;
  for (const std::string& line : readLines(events_path)) ++starts[line];
  std::string out;
  for (const auto& [line, n] : starts) {
    if (n > 1) out += line + " x" + std::to_string(n) + "\n";
  }
  return out;
}

class CrashRecovery : public ::testing::Test {
 protected:
  CrashRecovery() : config_(dir_) {
    config_.appendToMain("[collectors]\nmax_concurrent = 50\n");
    for (const char* name : {"loop1", "loop2", "loop3", "loop4", "loop5"}) {
      config_.addCollector(name, kLooper, keys("10"));
    }
    config_.addCollector("quick1", kQuick, keys("8"));
    config_.addCollector("quick2", kQuick, keys("8"));
    config_.addCollector("flood", kFlood, keys("1"));
  }

  Keys keys(const std::string& concurrency) const {
    return {{"overlap", "parallel"},
            {"concurrency", concurrency},
            {"env.STOP", stopFile()},
            {"env.EVENTS", eventsFile()}};
  }
  std::string stopFile() const { return dir_.file("stop"); }
  std::string eventsFile() const { return dir_.file("events"); }

  // Triggers and records the batch, or fails the test.
  Triggered trigger(const HttpClient& client, const std::vector<std::string>& names) {
    Triggered t = triggerOrThrow(client, names);
    ledger_.add(t);
    for (const std::string& id : t.job_ids) reaper_.add(id);
    return t;
  }

  TempDir dir_;
  DaemonConfig config_;
  Ledger ledger_;
  JobReaper reaper_;
};

TEST_F(CrashRecovery, AfterKill9FiftyRunningJobsFailWithTheRestartErrorAndNothingIsLostOrLeft) {
  std::vector<Triggered> batches;
  {
    Daemon daemon(config_);
    const HttpClient client = daemon.client();
    for (int i = 0; i < 10; ++i) {
      batches.push_back(trigger(client, {"loop1", "loop2", "loop3", "loop4", "loop5"}));
    }
    for (const Triggered& t : batches) {
      for (const std::string& id : t.job_ids) {
        // Running with a progress line of its own written to the store.
        const HttpResponse job = waitForJob(client, id, [](const Poco::JSON::Object& j) {
          return stringField(j, "status") == "running" &&
                 stringField(j, "message").rfind("step ", 0) == 0;
        });
        ASSERT_EQ(stringField(*job.object(), "status"), "running") << job.describe();
      }
    }
    daemon.killHard();
  }
  writeFile(stopFile(), "");

  Daemon restarted(config_);
  const HttpClient client = restarted.client();
  for (const Triggered& t : batches) {
    const HttpResponse batch = waitForBatchTerminal(client, t.batch_id);
    ASSERT_TRUE(IsJsonResponse(batch, 200));
    EXPECT_TRUE(HasBatchShape(*batch.object()));
    EXPECT_EQ(jsonOf(*batch.object(), "status"), jsonString("failed"));
    EXPECT_EQ(jsonOf(*batch.object(), "message"), jsonString("5 of 5 collectors failed"));
    for (const std::string& id : t.job_ids) {
      const HttpResponse job = client.job(id);
      ASSERT_TRUE(IsJsonResponse(job, 200));
      EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed")) << id;
      EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString(kRestarted)) << id;
    }
  }
  // Each collector's `sleep 300` outlived it (no parent-death signal): the restart killed it.
  const std::string log = restarted.logText();
  for (const Triggered& t : batches) {
    for (const std::string& id : t.job_ids) {
      EXPECT_NE(log.find("leftover processes of job " + id + "\n"), std::string::npos) << id;
    }
  }
  EXPECT_EQ(restarted.stop(), 0);

  StoreFile store(config_);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_batches"), 10);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_runs"), 50);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_runs WHERE status = 'failed' AND error = ?",
                        kRestarted),
            50);
  EXPECT_EQ(store.count("SELECT COUNT(*) FROM job_batches WHERE status = 'failed'"), 10);
  const std::set<std::string> ids = expectConsistentStore(store, ledger_);
  EXPECT_EQ(ids.size(), 50u);
  expectNoProcessLeft(ids);
  EXPECT_EQ(repeatedStarts(eventsFile()), "");
  EXPECT_EQ(readLines(eventsFile()).size(), 50u);
}

TEST_F(CrashRecovery, AJobWhoseDaemonDiesRightAfterStartingItIsNotStartedASecondTime) {
  Triggered run;
  {
    Daemon daemon(config_);
    run = trigger(daemon.client(), {"loop1"});
    // Killed as soon as the collector runs: well before the store's next coalesced write.
    ASSERT_TRUE(waitUntil([&] { return !readLines(eventsFile()).empty(); },
                          std::chrono::seconds(15), std::chrono::milliseconds(1)));
    daemon.killHard();
  }
  writeFile(stopFile(), "");

  Daemon restarted(config_);
  const HttpResponse job = waitForJobTerminal(restarted.client(), run.job_ids[0]);
  ASSERT_TRUE(IsJsonResponse(job, 200));
  EXPECT_EQ(jsonOf(*job.object(), "status"), jsonString("failed")) << job.describe();
  EXPECT_EQ(jsonOf(*job.object(), "error"), jsonString(kRestarted)) << job.describe();
  EXPECT_EQ(readLines(eventsFile()), std::vector<std::string>{"S " + run.job_ids[0] + " 1"})
      << "the job ran again after the restart";
  expectNoProcessLeft({run.job_ids[0]});
}

enum class Moment { kDuringTriggers, kDuringProgressBurst, kDuringShutdown };

const char* nameOf(Moment m) {
  switch (m) {
    case Moment::kDuringTriggers:
      return "during triggers";
    case Moment::kDuringProgressBurst:
      return "during a progress burst";
    case Moment::kDuringShutdown:
      return "during shutdown";
  }
  return "?";
}

TEST_F(CrashRecovery, KillsAtRandomMomentsLoseNoAcknowledgedRunAndLeaveNothingBehind) {
  const std::uint64_t seed = seedFromEnvironment();
  const int iterations = envInt("COLLECTORD_CRASH_ITERATIONS", 5);
  std::cout << "[ crash    ] COLLECTORD_CRASH_SEED=" << seed
            << " COLLECTORD_CRASH_ITERATIONS=" << iterations << std::endl;
  SCOPED_TRACE("replay with COLLECTORD_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto between = [&rng](int low, int high) {
    return std::uniform_int_distribution<int>(low, high)(rng);
  };
  const int first = between(0, 2);

  std::optional<Daemon> daemon(std::in_place, config_);
  for (int i = 0; i < iterations; ++i) {
    const Moment moment = static_cast<Moment>((first + i) % 3);
    SCOPED_TRACE("iteration " + std::to_string(i) + ": kill " + nameOf(moment));
    ::unlink(stopFile().c_str());
    const HttpClient client = daemon->client();

    if (moment == Moment::kDuringTriggers) {
      // Two clients trigger in a loop, pausing a little; the kill lands between or inside
      // their requests.
      std::atomic<bool> stop{false};
      std::vector<std::thread> clients;
      std::vector<std::uint64_t> seeds = {rng(), rng()};
      for (std::uint64_t client_seed : seeds) {
        clients.emplace_back([&, client_seed] {
          std::mt19937_64 pace(client_seed);
          while (!stop) {
            HttpResponse response;
            try {
              response = client.trigger({"quick1", "quick2"});
            } catch (const std::exception&) {
              std::lock_guard lock(ledger_.mutex);
              ++ledger_.unanswered;  // cut off: the batch may or may not have been written
              return;
            }
            if (response.status != 201) {
              ADD_FAILURE() << "trigger: " << response.describe();
              return;
            }
            Triggered t;
            const auto body = response.object();
            t.batch_id = stringField(*body, "batch_id");
            for (const auto& job : objectsOf(*body, "collectors")) {
              t.job_ids.push_back(stringField(*job, "job_id"));
            }
            ledger_.add(t);
            for (const std::string& id : t.job_ids) reaper_.add(id);
            std::this_thread::sleep_for(
                std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 40)(pace)));
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(between(100, 1500)));
      daemon->killHard();
      stop = true;
      for (std::thread& t : clients) t.join();
    } else if (moment == Moment::kDuringProgressBurst) {
      const Triggered flood = trigger(client, {"flood", "loop1"});
      const HttpResponse running = waitForJob(client, flood.job_ids[0], [](const auto& j) {
        return stringField(j, "message").rfind("line ", 0) == 0;
      });
      ASSERT_EQ(stringField(*running.object(), "status"), "running") << running.describe();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 800)));
      daemon->killHard();
    } else {
      const Triggered loops = trigger(client, {"loop1", "loop2", "loop3", "loop4", "loop5"});
      for (const std::string& id : loops.job_ids) {
        ASSERT_TRUE(IsJsonResponse(waitForJobStatus(client, id, "running"), 200));
      }
      ::kill(daemon->pid(), SIGTERM);
      std::this_thread::sleep_for(std::chrono::microseconds(between(0, 30'000)));
      daemon->killHard();
    }

    writeFile(stopFile(), "");  // from now on, runs that start again end on their own
    daemon.emplace(config_);
    StoreFile store(config_);
    ASSERT_TRUE(waitForQuietStore(store, std::chrono::seconds(30)))
        << store.count("SELECT COUNT(*) FROM job_runs WHERE status IN ('queued','running')")
        << " jobs still active";
    const std::set<std::string> ids = expectConsistentStore(store, ledger_);
    expectNoProcessLeft(ids);
    EXPECT_EQ(repeatedStarts(eventsFile()), "") << "job attempts that ran twice";
    if (HasFailure()) break;
  }
  ASSERT_TRUE(daemon.has_value());
  EXPECT_EQ(daemon->stop(), 0);
  StoreFile store(config_);
  EXPECT_EQ(store.integrityCheck(), "ok");
  std::lock_guard lock(ledger_.mutex);
  std::cout << "[ crash    ] " << iterations << " kills, " << ledger_.batches.size()
            << " acknowledged batches, " << store.count("SELECT COUNT(*) FROM job_runs")
            << " jobs, " << ledger_.unanswered << " triggers cut off" << std::endl;
}

}  // namespace
}  // namespace collectord::test
