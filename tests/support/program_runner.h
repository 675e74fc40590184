#pragma once

// A program under test (a client such as collectorctl) run the way a user runs it: stdout on a
// pipe, or on a pseudo-terminal of a given size, stderr on a pipe of its own. The test reads the
// output as it comes, so it can wait for a line before acting, and waits for the exit, bounded.
// Nothing here sleeps to synchronise: waits poll the output and give up after a deadline.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

struct ProgramOptions {
  // Changes to the test's environment: a value sets the variable, nullopt unsets it.
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  // stdout on a pseudo-terminal (so isatty(1) holds) of `columns` x `rows`, instead of a pipe.
  // The terminal's line discipline turns each "\n" into "\r\n", as a real one does.
  bool terminal = false;
  unsigned short columns = 100;
  unsigned short rows = 40;
};

class Program {
 public:
  // Starts argv[0] (a path) with `argv`, stdin from /dev/null. Throws when it cannot start.
  Program(const std::vector<std::string>& argv, const ProgramOptions& options = {});
  // Kills (SIGKILL) and reaps the program if it still runs.
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  pid_t pid() const { return pid_; }
  // Reads what has come, until stdout contains `text` or `timeout` passes. True when it does.
  bool waitForOutput(std::string_view text,
                     std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Reads everything until the program exits and both streams close, bounded by `timeout`.
  // Returns its exit code (128 + signal when killed), or nullopt when it has not exited in time.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends `signal` to the program.
  void signal(int signal) const;

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // Reads whatever is ready within `timeout`; false once both streams have closed.
  bool pump(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;  // the pipe's read end, or the terminal's master side
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> exit_code_;
};

// Starts `argv` and waits for it (bounded; throws std::runtime_error on timeout, with what it
// printed).
RunResult runProgram(const std::vector<std::string>& argv, const ProgramOptions& options = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `text` without ANSI escape sequences (CSI sequences such as colours and cursor movements).
std::string stripAnsi(std::string_view text);

}  // namespace collectord::test
