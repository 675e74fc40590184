// collectorctl: parse the command line, resolve the settings, run one command, exit with its
// status. Everything else lives in the parts.

#include <Poco/Net/SSLManager.h>
#include <signal.h>

#include <clocale>
#include <iostream>

#include "api_client.h"
#include "command_line.h"
#include "commands.h"
#include "exit_codes.h"
#include "settings.h"
#include "terminal.h"
#include "version.h"

namespace {

int usageError(const collectorctl::UsageError& error) {
  std::cerr << "collectorctl: " << error.message << "\n\n"
            << collectorctl::usageText(error.command);
  return collectorctl::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace collectorctl;
  // The user's locale decides whether text is UTF-8 (bars, widths of wide characters).
  std::setlocale(LC_CTYPE, "");
  // A server that closes a connection while a request is being sent must be an error to report,
  // not a signal that ends collectorctl silently; a closed stdout is noticed where it is written.
  ::signal(SIGPIPE, SIG_IGN);
  std::ios::sync_with_stdio(false);

  const std::vector<std::string> args(argv + 1, argv + argc);
  const auto parsed = parseCommandLine(args);
  if (const auto* error = std::get_if<UsageError>(&parsed)) return usageError(*error);
  const CommandLine& line = std::get<CommandLine>(parsed);
  if (line.help) {
    std::cout << usageText(line.command);
    return kExitOk;
  }
  if (line.version) {
    std::cout << "collectorctl " << kVersion << "\n";
    return kExitOk;
  }

  std::string problem;
  const auto settings = resolveSettings(line, problem);
  if (!settings) {
    std::cerr << "collectorctl: " << problem << "\n";
    return kExitUsage;
  }
  for (const std::string& warning : settings->warnings) {
    std::cerr << "collectorctl: warning: " << warning << "\n";
  }

  Poco::Net::initializeSSL();
  int status = kExitServer;
  {
    ApiClient client(*settings);
    CommandContext context{line, client, std::cout, std::cerr};
    context.out_is_terminal = isTerminal(1);
    context.out_width = context.out_is_terminal ? terminalWidth(1) : 0;
    context.style = styleFor(1, line.has("no-color"));
    context.json = line.has("json");
    status = runCommand(context);
  }
  Poco::Net::uninitializeSSL();
  return status;
}
