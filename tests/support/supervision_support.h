#pragma once

// Helpers for the supervision suites (tests/integration/supervision_*.cpp): per-job release
// files, pid files, event files written by collector scripts, process checks, and shortcuts to
// GET /api/collectors. Like the rest of the harness, nothing here sleeps to synchronise: waits
// poll a condition and give up after a deadline.

#include <Poco/JSON/Object.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

// Lets a blocked `wait_for_release WORD` in collector NAME's script go on, WORD being any word:
// a job ID (`wait_for_release "$COLLECTOR_JOB_ID"`) releases one run of a collector that runs
// several times.
void releaseWord(const DaemonConfig& config, const std::string& collector, const std::string& word);

// A file's lines without their newlines (a last line without one included); empty when the
// file cannot be read.
std::vector<std::string> readLines(const std::string& path);

// Waits (bounded) until `path` holds a pid followed by a newline; 0 when it does not in time.
// Scripts should write it atomically: `echo $$ > "$F.tmp" && mv "$F.tmp" "$F"`.
pid_t waitForPidFile(const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Waits (bounded) until process `pid` is gone (or a zombie); true when it is.
bool waitUntilGone(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Live (non-zombie) processes of this user whose environment holds `entry` ("NAME=VALUE").
std::vector<pid_t> processesWithEnvironment(const std::string& entry);
// processesWithEnvironment("COLLECTOR_JOB_ID=" + job_id): whatever is left of a job's process
// tree, wherever it was re-parented.
std::vector<pid_t> processesOfJob(const std::string& job_id);

// SIGKILLs, on destruction, every pid and process group it was given that is still alive:
// a failed test must not leave collectors behind.
class ProcessReaper {
 public:
  ProcessReaper() = default;
  ProcessReaper(const ProcessReaper&) = delete;
  ProcessReaper& operator=(const ProcessReaper&) = delete;
  ~ProcessReaper();
  void add(pid_t pid);
  void addGroup(pid_t pgid);

 private:
  std::vector<pid_t> pids_;
  std::vector<pid_t> groups_;
};

// An event file collectors append "S JOB_ID" (started) and "E JOB_ID" (ending) lines to.
// The largest number of jobs between their S and E lines at any point.
int maxConcurrency(const std::vector<std::string>& events);
// The job IDs of the lines that start with `kind` ("S" or "E"), in file order.
std::vector<std::string> eventIds(const std::vector<std::string>& events, const std::string& kind);
// Jobs with an S line and no E line, in start order.
std::vector<std::string> liveIds(const std::vector<std::string>& events);

// GET /api/collectors: the item named `name`, or null when absent or not answered with 200.
Poco::JSON::Object::Ptr collectorItem(const HttpClient& client, const std::string& name);
// The integer field `key` of `object`, or nullopt when it is missing or not an integer.
std::optional<std::int64_t> intField(const Poco::JSON::Object& object, const std::string& key);

// GET job ID: its status, or "" when not answered with a JSON job.
std::string jobStatus(const HttpClient& client, const std::string& job_id);
// True for completed, failed and cancelled.
bool isTerminalName(const std::string& status);
// Polls the job until its status is terminal (bounded); returns the last response.
HttpResponse waitForJobTerminal(const HttpClient& client, const std::string& job_id,
                                std::chrono::milliseconds timeout = std::chrono::seconds(15));
// Polls the job until its status is `status` (bounded); returns the last response.
HttpResponse waitForJobStatus(const HttpClient& client, const std::string& job_id,
                              const std::string& status,
                              std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Waits (bounded) until the daemon's own log contains `text`.
bool waitForDaemonLog(const Daemon& daemon, const std::string& text,
                      std::chrono::milliseconds timeout = std::chrono::seconds(15));

// Nanoseconds since the epoch written by `date +%s%N` on each line of `path`.
std::vector<std::int64_t> readNanos(const std::string& path);

}  // namespace collectord::test
