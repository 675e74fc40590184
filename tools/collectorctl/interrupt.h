#pragma once

// Ctrl-C and SIGTERM while collectorctl waits: the wait ends cleanly (the terminal is left
// tidy, the exit status says so) instead of the process dying mid-redraw.

#include <chrono>

namespace collectorctl {

// Makes SIGINT and SIGTERM set a flag instead of ending the process. Call once, before waiting.
void catchInterrupts();

// True once SIGINT or SIGTERM has arrived since catchInterrupts().
bool interrupted();

// Sleeps for `duration`, or less when interrupted; returns !interrupted().
bool sleepUnlessInterrupted(std::chrono::milliseconds duration);

}  // namespace collectorctl
