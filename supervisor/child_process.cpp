#include "child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/close_range.h>
#include <grp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Boost 1.81 Process v2 with std::filesystem misses these includes of its own.
#include <boost/optional.hpp>
#include <type_traits>

#include <boost/process/v2/process.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string_view>

#include "unique_fd.h"

namespace collectord {

namespace bp = boost::process::v2;

struct ChildProcess::Handle {
  bp::process process;
};

namespace {

// Everything the child needs, prepared before it exists. The child is started with
// clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does: it runs in the daemon's memory on
// a stack of its own until exec, the supervision thread waits meanwhile, and no page table is
// copied (a fork of the daemon copied them, and every thread then took copy-on-write faults).
// The child therefore may only make async-signal-safe calls that touch no shared state: it
// neither allocates nor locks, and changes credentials with raw system calls: glibc's setuid()
// in a threaded process takes its thread-list lock and signals every thread to switch too.
// posix_spawn itself cannot set limits, credentials or the parent-death signal.
// Under AddressSanitizer or ThreadSanitizer the child is a plain fork: their interceptors keep
// per-process state that a child sharing the daemon's memory would change.
struct ChildPlan {
  const char* executable;
  char* const* argv;
  char* const* envp;
  const char* working_directory;  // nullptr: the daemon's own
  int stdin_fd;                   // /dev/null
  int output_fd;                  // stdout and stderr
  int progress_fd;
  int exec_error_fd;  // close-on-exec: EOF at exec, errno if the set-up or exec failed
  pid_t parent;
  const SpawnRequest* request;
};

// Applies the plan in the child; returns an errno value, or 0. All source descriptors are
// above kProgressFd, so each dup2 below lands on a free slot and clears close-on-exec there.
int setUpChild(const ChildPlan& plan) {
  // Every signal is blocked here (see startChild). The daemon's handlers must not run in the
  // child, so they go back to the defaults before anything is unblocked; the daemon ignores
  // SIGPIPE, which exec would keep. Then the collector starts with no signal blocked.
  struct sigaction action {};
  for (int sig = 1; sig < NSIG; ++sig) {
    if (::sigaction(sig, nullptr, &action) != 0) continue;  // not a signal one may set
    if (action.sa_handler == SIG_DFL || (action.sa_handler == SIG_IGN && sig != SIGPIPE)) continue;
    action = {};
    action.sa_handler = SIG_DFL;
    ::sigaction(sig, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::setpgid(0, 0) == -1) return errno;
  if (::dup2(plan.stdin_fd, STDIN_FILENO) == -1 || ::dup2(plan.output_fd, STDOUT_FILENO) == -1 ||
      ::dup2(plan.output_fd, STDERR_FILENO) == -1 || ::dup2(plan.progress_fd, kProgressFd) == -1) {
    return errno;
  }
  // Nothing but stdio and the pipe may reach the collector: everything above the progress fd
  // closes at exec (which keeps the exec-error pipe working until exec succeeds).
  if (::syscall(SYS_close_range, kProgressFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
    for (int fd = kProgressFd + 1; fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (plan.working_directory && ::chdir(plan.working_directory) == -1) return errno;
  const SpawnRequest& r = *plan.request;
  auto limit = [](int resource, std::uint64_t value) {
    const struct rlimit rl{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
    return ::setrlimit(resource, &rl);
  };
  if (r.memory_limit && limit(RLIMIT_AS, *r.memory_limit) == -1) return errno;
  if (r.cpu_seconds) {
    // The soft limit sends SIGXCPU, which names the limit; the hard one, 5 s of CPU later,
    // SIGKILLs a child that ignores it.
    const struct rlimit cpu{static_cast<rlim_t>(*r.cpu_seconds), static_cast<rlim_t>(*r.cpu_seconds + 5)};
    if (::setrlimit(RLIMIT_CPU, &cpu) == -1) return errno;
  }
  if (r.max_open_files && limit(RLIMIT_NOFILE, *r.max_open_files) == -1) return errno;
  // Absolute, whatever the daemon's own niceness (nice() would add to it).
  if (r.nice && ::setpriority(PRIO_PROCESS, 0, *r.nice) == -1) return errno;
  if (r.gid && (::syscall(SYS_setgroups, r.groups.size(), r.groups.data()) == -1 ||
                ::syscall(SYS_setresgid, *r.gid, *r.gid, *r.gid) == -1)) {
    return errno;
  }
  if (r.uid && ::syscall(SYS_setresuid, *r.uid, *r.uid, *r.uid) == -1) return errno;
  // Die with the supervisor: a collector must never run unsupervised. Set after the identity
  // switch, which clears the parent-death signal.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) return errno;
  if (::getppid() != plan.parent) ::_exit(127);  // the supervisor died before prctl took effect
  return 0;
}

[[noreturn]] void runChild(const ChildPlan& plan) {
  int error = setUpChild(plan);
  if (error == 0) {
    ::execve(plan.executable, plan.argv, plan.envp);
    error = errno;
  }
  while (::write(plan.exec_error_fd, &error, sizeof error) == -1 && errno == EINTR) {
  }
  ::_exit(127);
}

int childMain(void* plan) { runChild(*static_cast<const ChildPlan*>(plan)); }

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kShareMemory = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kShareMemory = false;
#else
constexpr bool kShareMemory = true;
#endif
#else
constexpr bool kShareMemory = true;
#endif

// Starts the child and returns its pid once it has exec'd or failed (-1 with errno when it
// could not be created). Signals are blocked around it: a handler running in the child would
// run on the daemon's memory.
pid_t startChild(const ChildPlan& plan) {
  if (!kShareMemory) {
    const pid_t pid = ::fork();
    if (pid == 0) runChild(plan);
    return pid;
  }
  constexpr std::size_t kStackBytes = 128 * 1024;
  void* stack = ::mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  // Every signal, glibc's two internal ones too (which sigfillset and pthread_sigmask leave
  // out), as posix_spawn does: through the system call itself.
  sigset_t all, old;
  std::memset(&all, 0xff, sizeof all);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, NSIG / 8);
  const pid_t pid = ::clone(childMain, static_cast<char*>(stack) + kStackBytes,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, const_cast<ChildPlan*>(&plan));
  const int error = errno;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, NSIG / 8);
  ::munmap(stack, kStackBytes);
  errno = error;
  return pid;
}

// `fd` moved above kProgressFd (see setUpChild), close-on-exec; the original is closed.
UniqueFd above3(UniqueFd fd) {
  if (!fd || fd.get() > kProgressFd) return fd;
  return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, kProgressFd + 1));
}

std::vector<char*> cArray(const std::vector<std::string>& strings, const std::string* first) {
  std::vector<char*> array;
  array.reserve(strings.size() + 2);
  if (first) array.push_back(const_cast<char*>(first->c_str()));
  for (const std::string& s : strings) array.push_back(const_cast<char*>(s.c_str()));
  array.push_back(nullptr);
  return array;
}

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

// From /proc/PID/stat: the state, the process group and the start time (clock ticks after
// boot). The fields after the command name, which is in parentheses and may hold anything.
bool parseStat(const std::string& stat, char& state, int& pgrp, std::uint64_t& start_ticks) {
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  state = stat[paren + 2];
  unsigned long long start = 0;
  // ppid pgrp, then 16 fields up to starttime (proc(5): fields 4, 5 and 22).
  if (std::sscanf(stat.c_str() + paren + 3,
                  "%*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                  &pgrp, &start) != 2) {
    return false;
  }
  start_ticks = start;
  return true;
}

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
  auto fail = [&error](const char* what) {
    error = std::string(what) + ": " + std::strerror(errno);
    return nullptr;
  };
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == -1) return fail("cannot create the progress pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) == -1) return fail("cannot create the output pipe");
  UniqueFd output_read(fds[0]), output_write(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) == -1) return fail("cannot create a pipe");
  UniqueFd exec_error_read(fds[0]), exec_error_write(fds[1]);
  UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!dev_null) return fail("cannot open /dev/null");
  // A daemon started with stdio closed gets low numbers from pipe(); lift the child's ends.
  dev_null = above3(std::move(dev_null));
  output_write = above3(std::move(output_write));
  write_end = above3(std::move(write_end));
  exec_error_write = above3(std::move(exec_error_write));
  if (!dev_null || !output_write || !write_end || !exec_error_write) {
    return fail("cannot duplicate a descriptor");
  }

  const std::vector<char*> argv = cArray(request.args, &request.executable);
  const std::vector<char*> envp = cArray(request.environment, nullptr);
  const ChildPlan plan{request.executable.c_str(),
                       argv.data(),
                       envp.data(),
                       request.working_directory.empty() ? nullptr : request.working_directory.c_str(),
                       dev_null.get(),
                       output_write.get(),
                       write_end.get(),
                       exec_error_write.get(),
                       ::getpid(),
                       &request};
  const pid_t pid = startChild(plan);
  if (pid == -1) return fail("cannot start a process");

  // Only the child writes; EOF arrives when every writer is gone.
  write_end.reset();
  output_write.reset();
  exec_error_write.reset();
  int child_error = 0;
  ssize_t n;
  while ((n = ::read(exec_error_read.get(), &child_error, sizeof child_error)) == -1 && errno == EINTR) {
  }
  if (n > 0) {
    int status;
    while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
    }
    error = std::strerror(child_error);
    return nullptr;
  }
  for (int fd : {read_end.get(), output_read.get()}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto handle = std::make_unique<Handle>(Handle{bp::process(io.get_executor(), pid)});
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess(
      io, std::move(handle), pid, read_end.release(), output_read.release()));
  // Readable even when the child has exited already: it is not reaped before asyncWait.
  std::string stat;
  char state = 0;
  int pgrp = 0;
  if (readProcFile(("/proc/" + std::to_string(pid) + "/stat").c_str(), stat)) {
    parseStat(stat, state, pgrp, child->start_ticks_);
  }
  return child;
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

// Calls `fn(pid)` for each live (not zombie) process other than this one whose environment
// holds every entry of `markers`; processes for which `skip(pgrp, start_ticks)` holds are passed
// over before their environment is read (one open(2) each instead of two).
template <typename Skip, typename Fn>
void forEachMarkedProcess(const std::vector<std::string>& markers, Skip skip, Fn fn) {
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
    char state = 0;
    int pgrp = 0;
    std::uint64_t start_ticks = 0;
    if (!parseStat(stat, state, pgrp, start_ticks)) continue;
    // A zombie is dead already: signalling it succeeds and achieves nothing.
    if (state == 'Z' || state == 'X' || skip(pgrp, start_ticks)) continue;
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

int killProcessesOfJob(const std::string& job_id, const std::string& batch_id,
                       const std::vector<int>& spared_groups, std::uint64_t started_since) {
  const std::vector<std::string> markers = {"COLLECTOR_JOB_ID=" + job_id,
                                            "COLLECTOR_BATCH_ID=" + batch_id};
  std::set<pid_t> killed;
  const auto skip = [&](int pgrp, std::uint64_t start_ticks) {
    return start_ticks < started_since ||
           std::find(spared_groups.begin(), spared_groups.end(), pgrp) != spared_groups.end();
  };
  // A killed process lingers until the kernel has torn it down, so a pass counts only pids it
  // had not seen; one that found none means nothing of the job is left forking.
  for (int pass = 0; pass < 10; ++pass) {
    std::size_t before = killed.size();
    forEachMarkedProcess(markers, skip, [&killed](pid_t pid) {
      if (!killed.count(pid) && ::kill(pid, SIGKILL) == 0) killed.insert(pid);
    });
    if (killed.size() == before) break;
  }
  return static_cast<int>(killed.size());
}

}  // namespace collectord
