#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace collectord {

// What to run, and how.
struct SpawnRequest {
  std::string executable;  // absolute path
  std::vector<std::string> args;
  std::string working_directory;
  std::vector<std::string> environment;  // "NAME=value", the child's whole environment
  std::optional<int> nice;
  std::optional<std::uint64_t> memory_limit;  // RLIMIT_AS, bytes
  std::optional<std::uint64_t> cpu_seconds;   // RLIMIT_CPU
  std::optional<std::uint64_t> max_open_files;
  std::optional<unsigned> uid;  // switch to this account (and its groups) when root
  std::optional<unsigned> gid;
  std::vector<gid_t> groups;  // supplementary groups of `uid`'s account
};

// The descriptor number the child finds the progress pipe on (COLLECTOR_PROGRESS_FD).
inline constexpr int kProgressFd = 3;

// One collector child process: its own process group, stdin on /dev/null, stdout and stderr
// into one pipe the supervisor reads, the write end of the progress pipe on fd 3, no other
// descriptor, its limits and account applied, and SIGKILL should the supervising thread die.
// Lives on one io_context thread.
class ChildProcess {
 public:
  // Starts the child. Returns nullptr with `error` set when it cannot start (missing program,
  // exec format error, no resources).
  static std::unique_ptr<ChildProcess> spawn(boost::asio::io_context& io,
                                             const SpawnRequest& request, std::string& error);
  ~ChildProcess();

  int pid() const { return pid_; }
  // When it started, in clock ticks after boot (/proc/PID/stat); 0 when unknown. Nothing that
  // started earlier descends from it.
  std::uint64_t startTicks() const { return start_ticks_; }
  // The read end of the progress pipe, non-blocking.
  boost::asio::posix::stream_descriptor& progress() { return progress_; }
  // The read end of the stdout+stderr pipe, non-blocking.
  boost::asio::posix::stream_descriptor& output() { return output_; }
  // Calls `on_exit` with the waitpid() status once the child has exited (not its group).
  void asyncWait(std::function<void(int wait_status)> on_exit);
  // Sends `sig` to the child's whole process group; false when the group is gone.
  bool signalGroup(int sig) const;

 private:
  struct Handle;
  ChildProcess(boost::asio::io_context& io, std::unique_ptr<Handle> handle, int pid,
               int progress_fd, int output_fd);

  std::unique_ptr<Handle> handle_;
  int pid_;
  std::uint64_t start_ticks_ = 0;
  boost::asio::posix::stream_descriptor progress_;
  boost::asio::posix::stream_descriptor output_;
};

}  // namespace collectord

namespace collectord {

// Kills (SIGKILL) every live process whose environment says it belongs to job `job_id` of
// batch `batch_id`, whatever its group or session: what a run left behind after a setsid or
// setpgid, which signals to the run's group miss. Scans /proc again while it finds new ones, so
// that children forked meanwhile go too. Returns how many it killed. Passed over without reading
// their environment: processes in `spared_groups` (the run's own group, signalled already, and
// other runs' groups) and processes started before `started_since` (clock ticks after boot, as
// ChildProcess::startTicks; 0: none). Processes that dropped those variables are not found.
int killProcessesOfJob(const std::string& job_id, const std::string& batch_id,
                       const std::vector<int>& spared_groups = {},
                       std::uint64_t started_since = 0);

}  // namespace collectord
