#pragma once

// collectorctl's command line: the commands, their options and help texts, and the parser that
// turns argv into a CommandLine or a usage error. Nothing here talks to the server.

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace collectorctl {

// A parsed command line. Options are keyed by their long name without dashes ("priority",
// "wait"); a flag maps to "".
struct CommandLine {
  std::string command;            // "run", "status", ...; "" with --help or --version alone
  std::vector<std::string> args;  // the positional arguments after the command
  std::map<std::string, std::string> options;
  bool help = false;     // --help / -h, or `help [COMMAND]`
  bool version = false;  // --version

  bool has(const std::string& name) const { return options.count(name) != 0; }
  // The option's value, or nullopt when it was not given.
  std::optional<std::string> value(const std::string& name) const;
};

// What is wrong with a command line, and which command's usage to show ("" for the overview).
struct UsageError {
  std::string message;
  std::string command;
};

// Parses `args` (argv without the program name). Global options may come before or after the
// command; `--name=value` and `--name value` both work; `--` ends the options. Checks option
// names, the count of positional arguments and the shape of values (--priority high|normal|low,
// counts are whole numbers, --interval a duration), not whether the server will accept them.
std::variant<CommandLine, UsageError> parseCommandLine(const std::vector<std::string>& args);

// The help text: the overview for "" (commands, global options, settings, exit codes), or one
// command's usage and options.
std::string usageText(const std::string& command);

// "500ms", "2s", "1.5s", or a bare number of seconds, as milliseconds; nullopt when malformed
// or not positive.
std::optional<long> parseMilliseconds(const std::string& text);

}  // namespace collectorctl
