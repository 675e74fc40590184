#include "child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/close_range.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Boost 1.81 Process v2 with std::filesystem misses these includes of its own.
#include <boost/optional.hpp>
#include <type_traits>

#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include "unique_fd.h"

namespace collectord {

namespace bp = boost::process::v2;

struct ChildProcess::Handle {
  bp::process process;
};

namespace {

// The parts of the child's set-up that Boost.Process has no initializer for. on_exec_setup
// runs in the forked child before exec, so it uses only async-signal-safe calls.
struct CollectorChildSetup {
  int progress_write_fd;
  pid_t parent;
  const char* const* envp;
  const SpawnRequest* request;

  bp::error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&,
                          const char* const*) {
    launcher.fd_whitelist.push_back(kProgressFd);
    launcher.env = envp;
    return {};
  }

  bp::error_code on_exec_setup(bp::posix::default_launcher&, const bp::filesystem::path&,
                               const char* const*) {
    if (::setpgid(0, 0) == -1) return {errno, bp::system_category()};
    if (progress_write_fd == kProgressFd) {
      if (::fcntl(kProgressFd, F_SETFD, 0) == -1) return {errno, bp::system_category()};
    } else if (::dup2(progress_write_fd, kProgressFd) == -1) {
      return {errno, bp::system_category()};
    }
    // Nothing but stdio and the pipe may reach the collector. Boost 1.81's own clean-up skips
    // the gaps between the descriptors it keeps, so mark everything above 3 close-on-exec
    // (which also keeps Boost's exec-error pipe working until exec succeeds).
    if (::syscall(SYS_close_range, kProgressFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
      for (int fd = kProgressFd + 1; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    const SpawnRequest& r = *request;
    auto limit = [](int resource, std::uint64_t value) {
      const struct rlimit rl{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
      return ::setrlimit(resource, &rl);
    };
    if (r.memory_limit && limit(RLIMIT_AS, *r.memory_limit) == -1) return {errno, bp::system_category()};
    if (r.cpu_seconds) {
      // The soft limit sends SIGXCPU, which names the limit; the hard one, 5 s of CPU later,
      // SIGKILLs a child that ignores it.
      const struct rlimit cpu{static_cast<rlim_t>(*r.cpu_seconds), static_cast<rlim_t>(*r.cpu_seconds + 5)};
      if (::setrlimit(RLIMIT_CPU, &cpu) == -1) return {errno, bp::system_category()};
    }
    if (r.max_open_files && limit(RLIMIT_NOFILE, *r.max_open_files) == -1) {
      return {errno, bp::system_category()};
    }
    // Absolute, whatever the daemon's own niceness (nice() would add to it).
    if (r.nice && ::setpriority(PRIO_PROCESS, 0, *r.nice) == -1) return {errno, bp::system_category()};
    if (r.gid && (::setgroups(r.groups.size(), r.groups.data()) == -1 || ::setgid(*r.gid) == -1)) {
      return {errno, bp::system_category()};
    }
    if (r.uid && ::setuid(*r.uid) == -1) return {errno, bp::system_category()};
    // Die with the supervisor: a collector must never run unsupervised. Set after the identity
    // switch, which clears the parent-death signal.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) return {errno, bp::system_category()};
    if (::getppid() != parent) ::_exit(127);  // the supervisor died before prctl took effect
    // The daemon may ignore or block signals; the collector starts with the defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    return {};
  }
};

}  // namespace

ChildProcess::ChildProcess(boost::asio::io_context& io, std::unique_ptr<Handle> handle, int pid,
                           int progress_fd, int output_fd)
    : handle_(std::move(handle)), pid_(pid), progress_(io, progress_fd), output_(io, output_fd) {}

// A child still running here (a stop that gave up waiting) is killed with its whole group,
// then reaped by Boost's handle: nothing is leaked or orphaned.
ChildProcess::~ChildProcess() {
  bp::error_code ec;  // a reaped child answers "no child processes": nothing to do then
  if (handle_ && handle_->process.running(ec) && !ec) ::kill(-pid_, SIGKILL);
}

std::unique_ptr<ChildProcess> ChildProcess::spawn(boost::asio::io_context& io,
                                                  const SpawnRequest& request,
                                                  std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == -1) {
    error = std::string("cannot create the progress pipe: ") + std::strerror(errno);
    return nullptr;
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) == -1) {
    error = std::string("cannot create the output pipe: ") + std::strerror(errno);
    return nullptr;
  }
  UniqueFd output_read(fds[0]), output_write(fds[1]);

  std::vector<const char*> envp;
  envp.reserve(request.environment.size() + 1);
  for (const std::string& entry : request.environment) envp.push_back(entry.c_str());
  envp.push_back(nullptr);

  bp::error_code ec;
  CollectorChildSetup setup{write_end.get(), ::getpid(), envp.data(), &request};
  bp::posix::default_launcher launcher;
  auto process = launcher(io.get_executor(), ec, bp::filesystem::path(request.executable),
                          request.args,
                          bp::process_stdio{nullptr, output_write.get(), output_write.get()},
                          bp::process_start_dir{request.working_directory}, setup);
  if (ec) {
    error = ec.message();
    return nullptr;
  }
  write_end.reset();  // only the child writes; EOF arrives when every writer is gone
  output_write.reset();
  const int pid = process.id();
  for (int fd : {read_end.get(), output_read.get()}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto handle = std::make_unique<Handle>(Handle{std::move(process)});
  return std::unique_ptr<ChildProcess>(new ChildProcess(io, std::move(handle), pid,
                                                        read_end.release(), output_read.release()));
}

void ChildProcess::asyncWait(std::function<void(int wait_status)> on_exit) {
  handle_->process.async_wait(
      [this, on_exit = std::move(on_exit)](bp::error_code ec, int) {
        // Waiting can only fail if the pid was reaped elsewhere; report it as a lost child.
        on_exit(ec ? W_EXITCODE(255, 0) : handle_->process.native_exit_code());
      });
}

bool ChildProcess::signalGroup(int sig) const { return ::kill(-pid_, sig) == 0; }

}  // namespace collectord

namespace collectord {

namespace {

// The whole of a small /proc file into `out` (reusing its capacity); false when it cannot be
// read. Plain read(2): this runs for every process on the machine at the end of every run.
bool readProcFile(const char* path, std::string& out) {
  const UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  out.clear();
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(chunk, static_cast<std::size_t>(n));
  }
}

// Calls `fn(pid)` for each live (not zombie) process other than this one whose environment
// holds every entry of `markers`; processes for which `skip_group(pgrp)` holds are passed over
// before their environment is read.
template <typename SkipGroup, typename Fn>
void forEachMarkedProcess(const std::vector<std::string>& markers, SkipGroup skip_group, Fn fn) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  const pid_t self = ::getpid();
  std::string stat, environ;
  char path[64];
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if (!readProcFile(path, stat)) continue;  // gone meanwhile
    // After the command name in parentheses: state, ppid, pgrp.
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) continue;
    const char state = stat[paren + 2];
    int ppid = 0, pgrp = 0;
    if (std::sscanf(stat.c_str() + paren + 3, "%d %d", &ppid, &pgrp) != 2) continue;
    // A zombie is dead already: signalling it succeeds and achieves nothing.
    if (state == 'Z' || state == 'X' || skip_group(pgrp)) continue;
    std::snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    if (!readProcFile(path, environ)) continue;
    std::size_t found = 0;
    for (std::size_t at = 0; at < environ.size() && found < markers.size();) {
      std::size_t stop = environ.find('\0', at);
      if (stop == std::string::npos) stop = environ.size();
      const std::string_view variable(environ.data() + at, stop - at);
      found += static_cast<std::size_t>(std::count(markers.begin(), markers.end(), variable));
      at = stop + 1;
    }
    if (found == markers.size()) fn(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
}

}  // namespace

int killLeftoverProcesses(int pgid, const std::string& job_id) {
  int killed = 0;
  forEachMarkedProcess(
      {"COLLECTOR_JOB_ID=" + job_id}, [pgid](int pgrp) { return pgrp != pgid; },
      [&killed](pid_t pid) { killed += ::kill(pid, SIGKILL) == 0; });
  return killed;
}

int killProcessesOfJob(const std::string& job_id, const std::string& batch_id, int except_pgid) {
  const std::vector<std::string> markers = {"COLLECTOR_JOB_ID=" + job_id,
                                            "COLLECTOR_BATCH_ID=" + batch_id};
  std::set<pid_t> killed;
  // A killed process lingers until the kernel has torn it down, so a pass counts only pids it
  // had not seen; one that found none means nothing of the job is left forking.
  for (int pass = 0; pass < 10; ++pass) {
    std::size_t before = killed.size();
    forEachMarkedProcess(
        markers, [except_pgid](int pgrp) { return pgrp == except_pgid; },
        [&killed](pid_t pid) {
          if (!killed.count(pid) && ::kill(pid, SIGKILL) == 0) killed.insert(pid);
        });
    if (killed.size() == before) break;
  }
  return static_cast<int>(killed.size());
}

}  // namespace collectord
