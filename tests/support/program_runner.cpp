#include "program_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace collectord::test {
namespace {

using Clock = std::chrono::steady_clock;

std::system_error systemError(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

Program::Program(const std::vector<std::string>& argv, const ProgramOptions& options) {
  int out_write = -1;
  if (options.terminal) {
    winsize size{};
    size.ws_col = options.columns;
    size.ws_row = options.rows;
    if (::openpty(&out_fd_, &out_write, nullptr, nullptr, &size) != 0) throw systemError("openpty");
    ::fcntl(out_fd_, F_SETFD, FD_CLOEXEC);
    ::fcntl(out_write, F_SETFD, FD_CLOEXEC);
  } else {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw systemError("pipe2");
    out_fd_ = fds[0];
    out_write = fds[1];
  }
  int err_fds[2];
  if (::pipe2(err_fds, O_CLOEXEC) != 0) {
    closeFd(out_fd_);
    closeFd(out_write);
    throw systemError("pipe2");
  }
  err_fd_ = err_fds[0];
  int err_write = err_fds[1];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write, 1);
  posix_spawn_file_actions_adddup2(&actions, err_write, 2);
  std::vector<std::string> args = argv;
  std::vector<std::string> env = environmentWith(options.env);
  auto c_args = cStrings(args);
  auto c_env = cStrings(env);
  const int rc = ::posix_spawn(&pid_, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  closeFd(out_write);
  closeFd(err_write);
  if (rc != 0) {
    closeFd(out_fd_);
    closeFd(err_fd_);
    errno = rc;
    throw systemError("posix_spawn " + argv.at(0));
  }
}

Program::~Program() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  closeFd(out_fd_);
  closeFd(err_fd_);
}

bool Program::pump(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  const int ready = ::poll(fds, 2, static_cast<int>(timeout.count()));
  if (ready <= 0) return true;
  int* owners[2] = {&out_fd_, &err_fd_};
  std::string* sinks[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0 || fds[i].revents == 0) continue;
    char buffer[8192];
    const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
    if (n > 0) {
      sinks[i]->append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      // End of a pipe, or EIO from a terminal whose last slave descriptor has closed.
      closeFd(*owners[i]);
    }
  }
  return out_fd_ >= 0 || err_fd_ >= 0;
}

bool Program::waitForOutput(std::string_view text, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (out_.find(text) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    if (!pump(std::chrono::milliseconds(20)) && out_.find(text) == std::string::npos) {
      return false;
    }
  }
  return true;
}

std::optional<int> Program::wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!exit_code_ && Clock::now() < deadline) {
    const bool open = pump(std::chrono::milliseconds(20));
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (!open) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // streams closed; exit is near
    }
  }
  // Drain what is left: the program has exited, so the streams end promptly.
  while (exit_code_ && Clock::now() < deadline && pump(std::chrono::milliseconds(20))) {
  }
  return exit_code_;
}

void Program::signal(int signal) const { ::kill(pid_, signal); }

RunResult runProgram(const std::vector<std::string>& argv, const ProgramOptions& options,
                     std::chrono::milliseconds timeout) {
  Program program(argv, options);
  const auto code = program.wait(timeout);
  if (!code) {
    throw std::runtime_error(argv.at(0) + " did not exit in time; stdout: " + program.out() +
                             "\nstderr: " + program.err());
  }
  return RunResult{*code, program.out(), program.err()};
}

std::string stripAnsi(std::string_view text) {
  std::string result;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '[') {
      i += 2;
      while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      continue;
    }
    result += text[i];
  }
  return result;
}

}  // namespace collectord::test
