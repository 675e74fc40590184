#include "commands.h"

#include "exit_codes.h"

namespace collectorctl {

int runCommand(CommandContext& context) {
  const std::string& command = context.line.command;
  if (command == "run") return runRun(context);
  if (command == "status") return runStatus(context);
  if (command == "cancel") return runCancel(context);
  if (command == "latest") return runLatest(context);
  if (command == "history") return runHistory(context);
  if (command == "collectors") return runCollectors(context);
  if (command == "logs") return runLogs(context);
  context.err << "collectorctl: unknown command '" << command << "'\n";
  return kExitUsage;
}

int reportFailure(CommandContext& context, const ApiResponse& response) {
  context.out.flush();
  if (response.ok()) {
    context.err << "collectorctl: the server's answer is not the JSON expected (HTTP "
                << response.status << ")\n";
  } else {
    context.err << "collectorctl: " << response.problem() << "\n";
  }
  return kExitServer;
}

void printJson(CommandContext& context, const std::string& body) {
  context.out << body;
  if (body.empty() || body.back() != '\n') context.out << "\n";
  context.out.flush();
}

}  // namespace collectorctl
