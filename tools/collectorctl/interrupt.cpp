#include "interrupt.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

namespace collectorctl {
namespace {

std::atomic<bool> g_interrupted{false};

void onSignal(int) { g_interrupted.store(true); }

}  // namespace

void catchInterrupts() {
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

bool interrupted() { return g_interrupted.load(); }

void exitIfOutputClosed(std::ostream& out) {
  if (!out) std::_Exit(128 + SIGPIPE);
}

bool sleepUnlessInterrupted(std::chrono::milliseconds duration) {
  // Slices short enough that Ctrl-C feels immediate.
  constexpr std::chrono::milliseconds kSlice{50};
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!interrupted()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kSlice, deadline - now));
  }
  return false;
}

}  // namespace collectorctl
