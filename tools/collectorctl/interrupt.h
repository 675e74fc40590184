#pragma once

// Ctrl-C and SIGTERM while collectorctl waits: the wait ends cleanly (the terminal is left
// tidy, the exit status says so) instead of the process dying mid-redraw.

#include <chrono>
#include <ostream>

namespace collectorctl {

// Makes SIGINT and SIGTERM set a flag instead of ending the process. Call once, before waiting.
void catchInterrupts();

// True once SIGINT or SIGTERM has arrived since catchInterrupts().
bool interrupted();

// Ends the process as SIGPIPE would have (status 141, quietly) when `out` can no longer be
// written: its reader has gone (`collectorctl run --wait | head -3`). SIGPIPE itself is ignored
// (see main), so that a server closing a connection cannot kill collectorctl mid-request.
void exitIfOutputClosed(std::ostream& out);

// Sleeps for `duration`, or less when interrupted; returns !interrupted().
bool sleepUnlessInterrupted(std::chrono::milliseconds duration);

}  // namespace collectorctl
