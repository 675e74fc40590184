// The store's database on a filesystem that stops taking writes: full, or remounted read-only.
// A small tmpfs holds the database (root may mount one; elsewhere the test is skipped with the
// reason). While writes fail, the API answers 503 JSON instead of a stale state, running jobs
// go on, and once the filesystem takes writes again the store catches up with nothing lost.

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "postgres_server.h"
#include "supervision_support.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

// A tmpfs of `size` mounted on `path` for the object's lifetime.
class TmpfsMount {
 public:
  TmpfsMount(std::string path, const std::string& size) : path_(std::move(path)) {
    ::mkdir(path_.c_str(), 0755);
    const std::string options = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (error_.empty()) ::umount2(path_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  // Empty when mounted; otherwise why not.
  const std::string& error() const { return error_; }
  bool remount(bool read_only) {
    const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    return ::mount("tmpfs", path_.c_str(), "tmpfs", flags, nullptr) == 0;
  }

 private:
  std::string path_;
  std::string error_;
};

// Writes zeros into `path` until the filesystem is full; true when it ended with ENOSPC.
bool fillUp(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  std::setvbuf(f, nullptr, _IONBF, 0);
  const std::vector<char> block(64 * 1024, 0);
  std::size_t chunk = block.size();
  bool full = false;
  while (!full) {
    if (std::fwrite(block.data(), 1, chunk, f) != chunk) {
      if (errno != ENOSPC) break;
      if (chunk == 1) {
        full = true;
      } else {
        chunk /= 2;  // fill the last partial blocks too
      }
    }
  }
  std::fclose(f);
  return full;
}

std::string integrityCheck(const std::string& db_path) {
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session session("SQLite", db_path);
  std::string result;
  session << "PRAGMA integrity_check", Poco::Data::Keywords::into(result),
      Poco::Data::Keywords::now;
  return result;
}

// A collector that reports, then waits for the test at each stage, so the test decides when
// the store sees writes.
constexpr const char* kSteadyScript = R"(
progress() { printf '{"progress": %s, "message": "%s"}\n' "$1" "$2" >&3; }
echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
progress 10 "before the trouble"
wait_for_release 1
i=0
while [ $i -lt 20 ]; do i=$((i + 1)); progress $((20 + i)) "during the trouble $i"; done
wait_for_release 2
progress 100 "finished while the disk was full"
)";

TEST(DiskTrouble, FullDiskAnswers503WhileJobsRunOnAndTheStoreCatchesUpAfterwards) {
  TempDir dir;
  if (sharedPostgres()) {
    GTEST_SKIP() << "a SQLite file on a full disk; PostgresDaemon covers a database that goes away";
  }
  TmpfsMount store(dir.file("store"), "2m");
  if (!store.error().empty()) GTEST_SKIP() << "cannot mount a tmpfs: " << store.error();
  DaemonConfig config(dir);
  config.useStore("sqlite:store/collectord.db");
  config.addBlockingCollector("steady", kSteadyScript, {{"env.PIDFILE", dir.file("steady.pid")}});
  Daemon daemon(config);
  const HttpClient client = daemon.client();

  const Triggered run = triggerOrThrow(client, {"steady"});
  const std::string job_id = run.job_ids.front();
  ASSERT_TRUE(waitForJob(client, job_id, [](const Poco::JSON::Object& job) {
                return stringField(job, "message") == "before the trouble";
              }).status == 200);
  ProcessReaper reaper;
  const pid_t collector = waitForPidFile(dir.file("steady.pid"));
  ASSERT_GT(collector, 0);
  reaper.add(collector);

  const std::string filler = dir.file("store/filler");
  ASSERT_TRUE(fillUp(filler)) << "the tmpfs did not fill up";
  config.release("steady", 1);  // twenty progress lines the store cannot take

  // Reads answer 503 rather than the state from before the trouble.
  HttpResponse during;
  ASSERT_TRUE(waitUntil([&] { return (during = client.job(job_id)).status == 503; }, 15s))
      << during.describe();
  EXPECT_TRUE(IsErrorResponse(during, 503, "The job store is unavailable; try again shortly"));
  EXPECT_EQ(during.header("Retry-After").value_or(""), "1");
  EXPECT_TRUE(IsErrorResponse(client.batch(run.batch_id), 503,
                              "The job store is unavailable; try again shortly"));
  EXPECT_TRUE(IsErrorResponse(client.get("/api/collectors/history"), 503,
                              "The job store is unavailable; try again shortly"));
  EXPECT_TRUE(IsErrorResponse(client.trigger({"steady"}), 503,
                              "The job store is unavailable; try again shortly"));
  const HttpResponse ready = client.get("/readyz");
  EXPECT_TRUE(IsErrorResponseStartingWith(ready, 503, "Not ready: the job store does not take "
                                                      "writes"));
  EXPECT_TRUE(IsJsonResponse(client.get("/healthz"), 200)) << "alive all the same";
  const std::string metrics = client.get("/metrics").body;
  EXPECT_EQ(metrics.find("collectord_store_write_failures_total 0\n"), std::string::npos)
      << "the failed writes are counted";

  // The run goes on and ends while the store is still failing.
  EXPECT_TRUE(processAlive(collector)) << "the collector was killed";
  config.release("steady", 2);
  EXPECT_TRUE(waitUntilGone(collector));
  EXPECT_TRUE(IsErrorResponse(client.job(job_id), 503,
                              "The job store is unavailable; try again shortly"));

  // Space returns: the store catches up with the whole story, the run's end included.
  ASSERT_EQ(::unlink(filler.c_str()), 0) << std::strerror(errno);
  const HttpResponse after = waitForJobTerminal(client, job_id, 15s);
  ASSERT_EQ(after.status, 200) << after.describe();
  const auto job = after.object();
  EXPECT_EQ(stringField(*job, "status"), "completed");
  EXPECT_EQ(intField(*job, "progress_percent"), 100);
  EXPECT_EQ(stringField(*job, "message"), "finished while the disk was full");
  const HttpResponse batch = waitForBatchTerminal(client, run.batch_id);
  EXPECT_EQ(stringField(*batch.object(), "status"), "completed");
  EXPECT_TRUE(IsJsonResponse(client.get("/readyz"), 200));
  EXPECT_EQ(client.trigger({"steady"}).status, 201) << "triggers work again";

  daemon.stop();
  EXPECT_EQ(integrityCheck(dir.file("store/collectord.db")), "ok");
}

// Linux refuses to remount a filesystem read-only while a file on it is open for writing, so a
// store turning read-only under a running daemon cannot be staged here; one that is read-only
// when the daemon starts can, and must stop the start with a message naming the file.
TEST(DiskTrouble, ReadOnlyStoreStopsTheStartWithAClearMessage) {
  TempDir dir;
  if (sharedPostgres()) {
    GTEST_SKIP() << "a SQLite file on a full disk; PostgresDaemon covers a database that goes away";
  }
  TmpfsMount store(dir.file("store"), "2m");
  if (!store.error().empty()) GTEST_SKIP() << "cannot mount a tmpfs: " << store.error();
  DaemonConfig config(dir);
  config.useStore("sqlite:store/collectord.db");
  ASSERT_TRUE(store.remount(true)) << std::strerror(errno);

  const RunResult run = runCollectord({"--config=" + config.mainPath()});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find(dir.file("store/collectord.db")), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("Read-only file system"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace collectord::test
