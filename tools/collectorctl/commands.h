#pragma once

// The subcommands. Each takes the parsed command line and a client, prints what it has to say
// on the context's streams and returns collectorctl's exit status (exit_codes.h).

#include <ostream>

#include "api_client.h"
#include "command_line.h"
#include "terminal.h"

namespace collectorctl {

struct CommandContext {
  const CommandLine& line;
  ApiClient& client;
  std::ostream& out;
  std::ostream& err;
  TextStyle style;  // for `out`
  bool out_is_terminal = false;
  int out_width = 0;  // terminal columns of `out`; 0 when it is not a terminal
  bool json = false;  // --json: the server's JSON instead of tables
};

// Runs line.command (one of the names command_line.h knows).
int runCommand(CommandContext& context);

// run NAME... [--priority P] [--wait]
int runRun(CommandContext& context);
// status ID [--wait]
int runStatus(CommandContext& context);
// cancel ID
int runCancel(CommandContext& context);
// latest [NAME...]
int runLatest(CommandContext& context);
// history [--limit N]
int runHistory(CommandContext& context);
// collectors
int runCollectors(CommandContext& context);
// logs JOB_ID [-f] [--tail N]
int runLogs(CommandContext& context);

// Prints "collectorctl: PROBLEM" for a failed exchange and returns kExitServer.
int reportFailure(CommandContext& context, const ApiResponse& response);
// Prints the server's JSON body as it came, on one line.
void printJson(CommandContext& context, const std::string& body);

}  // namespace collectorctl

namespace collectorctl {

class RunState;
// Follows the runs in `state` to their end (as run --wait does) and returns the exit status:
// 0 when every followed job completed, 1 when one failed or was cancelled, 3 when the server
// refused or could not be reached, 130 when interrupted. With --json it prints, at the end, the
// document at `json_path` when one is given, else each followed batch's.
int waitForRuns(CommandContext& context, RunState& state, const std::string& json_path = "");

}  // namespace collectorctl
