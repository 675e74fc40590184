#include "command_line.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <sstream>

namespace collectorctl {
namespace {

struct OptionSpec {
  const char* name;        // long name without dashes
  char short_name;         // 0 when none
  const char* value_name;  // nullptr for a flag
  const char* help;
};

struct CommandSpec {
  const char* name;
  const char* synopsis;
  const char* summary;
  const char* details;  // paragraphs after the synopsis in `COMMAND --help`
  std::size_t min_args;
  std::size_t max_args;
  std::vector<OptionSpec> options;
};

constexpr std::size_t kMany = SIZE_MAX;

const std::vector<OptionSpec>& globalOptions() {
  static const std::vector<OptionSpec> options = {
      {"url", 0, "URL", "the server (default: $COLLECTORD_URL, client.ini, http://127.0.0.1:8080)"},
      {"api-key", 0, "KEY", "the API key (default: $COLLECTORD_API_KEY, client.ini)"},
      {"ca-file", 0, "FILE", "trust this CA certificate for https (default: $COLLECTORD_CA_FILE)"},
      {"json", 0, nullptr, "print the server's JSON instead of tables (for scripts)"},
      {"no-color", 0, nullptr, "no colours (also when $NO_COLOR is set)"},
      {"help", 'h', nullptr, "show help; `collectorctl COMMAND --help` for one command"},
      {"version", 0, nullptr, "print collectorctl's version"},
  };
  return options;
}

const OptionSpec kWait{"wait", 'w', nullptr,
                       "follow the jobs until every one has ended: progress bars on a terminal, "
                       "one timestamped line per change otherwise"};
const OptionSpec kInterval{"interval", 0, "DURATION",
                           "how often to poll while following (default 500ms; e.g. 2s)"};
const OptionSpec kNoEvents{"no-events", 0, nullptr,
                           "poll the status endpoints even when the server offers an event "
                           "stream"};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> specs = {
      {"run",
       "run NAME... [--priority high|normal|low] [--wait]",
       "start collectors in one batch; --wait follows them to the end",
       "Starts one job per named collector, all in one new batch, and prints the batch and job "
       "IDs. A collector configured with overlap = skip that is already running is not started "
       "again: its active job is shown as skipped (and followed with --wait).\n\n"
       "With --wait, exits 0 only when every job completed, 1 when any failed or was "
       "cancelled. With --json, prints the server's answer; with --json --wait, the final "
       "status of each batch instead (one JSON document a line).",
       1,
       kMany,
       {{"priority", 'p', "PRIORITY",
         "high, normal (default) or low: the order queued jobs start in"},
        kWait,
        kInterval,
        kNoEvents}},
      {"status",
       "status BATCH_ID|JOB_ID [--wait]",
       "show a batch (bc_...) or a job",
       "An ID that starts with bc_ is a batch; anything else is a job. With --wait, follows it "
       "as `run --wait` does and exits the same way.",
       1,
       1,
       {kWait, kInterval, kNoEvents}},
      {"latest",
       "latest [NAME...]",
       "the latest run of each collector (or of the named ones)",
       "For each collector, its active run if it has one, else its most recent one. Collectors "
       "that never ran are left out.",
       0,
       kMany,
       {}},
      {"history",
       "history [--limit N]",
       "recent runs of all collectors, newest first",
       "Running and queued runs included.",
       0,
       0,
       {{"limit", 'n', "N", "how many runs (1 to 1000; default 10)"}}},
      {"cancel",
       "cancel BATCH_ID|JOB_ID",
       "cancel a batch (bc_...) or a job",
       "Queued jobs end at once; running ones are stopped (SIGTERM, then SIGKILL after the "
       "collector's kill_grace) and end cancelled a moment later. Cancelling a run that has "
       "already ended is an error (the server answers 409).",
       1,
       1,
       {}},
      {"logs",
       "logs JOB_ID [-f] [--tail N]",
       "a job's output (stdout, stderr, collectord's notes)",
       "Prints the job's whole log, or its last N lines with --tail. With -f, keeps printing what "
       "the job writes until it has ended.",
       1,
       1,
       {{"follow", 'f', nullptr, "follow the log until the job has ended"},
        {"tail", 0, "N", "only the last N lines (0 to 10000)"},
        kInterval}},
      {"collectors",
       "collectors",
       "the configured collectors, their schedules and runs",
       "",
       0,
       0,
       {}},
      {"help", "help [COMMAND]", "show help for collectorctl or one command", "", 0, 1, {}},
  };
  return specs;
}

const CommandSpec* findCommand(const std::string& name) {
  for (const CommandSpec& spec : commands()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

const OptionSpec* findOption(const std::vector<OptionSpec>& options, const std::string& name,
                             char short_name) {
  for (const OptionSpec& option : options) {
    if (short_name ? option.short_name == short_name : name == option.name) return &option;
  }
  return nullptr;
}

bool isWholeNumber(const std::string& text) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// The shape of an option's value, or the problem with it.
std::optional<std::string> checkValue(const std::string& name, const std::string& value) {
  if (name == "priority" && value != "high" && value != "normal" && value != "low") {
    return "--priority must be high, normal or low, not '" + value + "'";
  }
  if ((name == "limit" || name == "tail") && !isWholeNumber(value)) {
    return "--" + name + " must be a whole number, not '" + value + "'";
  }
  if (name == "interval") {
    const auto ms = parseMilliseconds(value);
    if (!ms || *ms < 100) {
      return "--interval must be a duration of at least 100ms (such as 500ms or 2s), not '" +
             value + "'";
    }
  }
  if ((name == "url" || name == "api-key") && value.empty()) {
    return "--" + name + " needs a value";
  }
  return std::nullopt;
}

std::string optionLabel(const OptionSpec& option) {
  std::string label = option.short_name ? std::string("-") + option.short_name + ", " : "    ";
  label += "--" + std::string(option.name);
  if (option.value_name) label += " " + std::string(option.value_name);
  return label;
}

constexpr std::size_t kHelpWidth = 79;

// `text` as lines of at most kHelpWidth columns, each prefixed with `indent` (the first with
// `first_indent`); paragraphs ("\n\n") kept apart.
std::string wrap(const std::string& text, const std::string& first_indent,
                 const std::string& indent) {
  std::string out;
  std::string line = first_indent;
  bool line_empty = true;
  std::string word;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto paragraph_end = text.find("\n\n", at);
    const std::string paragraph = text.substr(
        at, paragraph_end == std::string::npos ? std::string::npos : paragraph_end - at);
    std::istringstream in(paragraph);
    while (in >> word) {
      if (!line_empty && line.size() + 1 + word.size() > kHelpWidth) {
        out += line + "\n";
        line = indent;
        line_empty = true;
      }
      line += (line_empty ? "" : " ") + word;
      line_empty = false;
    }
    out += line + "\n";
    line = indent;
    line_empty = true;
    if (paragraph_end == std::string::npos) break;
    out += "\n";
    at = paragraph_end + 2;
  }
  return out;
}

void listOptions(std::ostringstream& out, const std::vector<OptionSpec>& options) {
  const std::string indent(2 + 24 + 1, ' ');
  for (const OptionSpec& option : options) {
    std::string label = "  " + optionLabel(option);
    label.append(label.size() < indent.size() ? indent.size() - label.size() : 1, ' ');
    out << wrap(option.help, label, indent);
  }
}

}  // namespace

std::optional<std::string> CommandLine::value(const std::string& name) const {
  const auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::optional<long> parseMilliseconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  double scale = 1000.0;
  std::string number = text;
  if (number.size() > 2 && number.ends_with("ms")) {
    scale = 1.0;
    number.resize(number.size() - 2);
  } else if (number.size() > 1 && number.ends_with("s")) {
    number.resize(number.size() - 1);
  }
  for (char c : number) {
    if ((c < '0' || c > '9') && c != '.') return std::nullopt;
  }
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end == number.c_str() || *end != '\0' || !(value > 0) || value * scale > 86'400'000.0) {
    return std::nullopt;
  }
  return static_cast<long>(value * scale);
}

std::variant<CommandLine, UsageError> parseCommandLine(const std::vector<std::string>& args) {
  CommandLine line;
  const CommandSpec* spec = nullptr;
  bool options_ended = false;

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool is_option = !options_ended && arg.size() > 1 && arg[0] == '-';
    if (!is_option) {
      if (!spec) {
        spec = findCommand(arg);
        if (!spec) return UsageError{"unknown command '" + arg + "'", ""};
        line.command = arg;
      } else {
        line.args.push_back(arg);
      }
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    std::string name;
    std::optional<std::string> inline_value;
    char short_name = 0;
    if (arg.starts_with("--")) {
      name = arg.substr(2);
      if (const auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
    } else if (arg.size() == 2) {
      short_name = arg[1];
    } else {
      return UsageError{"unknown option '" + arg + "'", line.command};
    }
    const OptionSpec* option = findOption(globalOptions(), name, short_name);
    if (!option && spec) option = findOption(spec->options, name, short_name);
    if (!option) {
      const std::string where = spec ? " for '" + line.command + "'" : "";
      return UsageError{"unknown option '" + arg + "'" + where, line.command};
    }
    std::string value;
    if (option->value_name) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return UsageError{
            "--" + std::string(option->name) + " needs a value (" + option->value_name + ")",
            line.command};
      }
      if (auto problem = checkValue(option->name, value)) {
        return UsageError{*problem, line.command};
      }
    } else if (inline_value) {
      return UsageError{"--" + std::string(option->name) + " takes no value", line.command};
    }
    line.options[option->name] = value;
  }

  line.help = line.has("help") || line.command == "help";
  line.version = line.has("version");
  if (line.command == "help") {
    if (line.args.size() > 1) return UsageError{"help takes at most one command", ""};
    if (!line.args.empty() && !findCommand(line.args[0])) {
      return UsageError{"unknown command '" + line.args[0] + "'", ""};
    }
    line.command = line.args.empty() ? "" : line.args[0];
    line.args.clear();
    return line;
  }
  if (line.help || line.version) return line;
  if (!spec) return UsageError{"no command given", ""};
  if (line.args.size() < spec->min_args) {
    return UsageError{
        "'" + line.command + "' needs " +
            (spec->min_args == 1 && spec->max_args == 1 ? "one argument" : "at least one argument"),
        line.command};
  }
  if (line.args.size() > spec->max_args) {
    return UsageError{spec->max_args == 0
                          ? "'" + line.command + "' takes no arguments"
                          : "'" + line.command + "' takes " + std::to_string(spec->max_args) +
                                " argument" + (spec->max_args == 1 ? "" : "s"),
                      line.command};
  }
  return line;
}

std::string usageText(const std::string& command) {
  std::ostringstream out;
  if (const CommandSpec* spec = findCommand(command); spec && command != "help") {
    std::string summary = spec->summary;
    summary[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(summary[0])));
    out << "Usage: collectorctl " << spec->synopsis << "\n\n" << summary << ".\n";
    if (*spec->details) out << "\n" << wrap(spec->details, "", "");
    if (!spec->options.empty()) {
      out << "\nOptions:\n";
      listOptions(out, spec->options);
    }
    out << "\nGlobal options:\n";
    listOptions(out, globalOptions());
    return out.str();
  }
  out << "Usage: collectorctl [OPTIONS] COMMAND [ARGS]\n\n"
         "The command-line client of collectord's REST API.\n\nCommands:\n";
  for (const CommandSpec& spec : commands()) {
    std::string synopsis = spec.synopsis;
    if (const auto cut = synopsis.find(" ["); cut != std::string::npos && spec.min_args > 0) {
      synopsis.resize(cut);
    }
    if (synopsis.size() < 24) synopsis.append(24 - synopsis.size(), ' ');
    out << "  " << synopsis << " " << spec.summary << "\n";
  }
  out << "\nOptions (before or after the command):\n";
  listOptions(out, globalOptions());
  out << "\nSettings, first found wins: --url and --api-key; $COLLECTORD_URL and\n"
         "$COLLECTORD_API_KEY; the keys url and api_key of\n"
         "${XDG_CONFIG_HOME:-~/.config}/collectord/client.ini; http://127.0.0.1:8080.\n"
         "\nExit status: 0 done (run/status --wait: every job completed); 1 --wait: a job\n"
         "failed or was cancelled; 2 bad command line or settings; 3 the server refused the\n"
         "request or could not be reached; 130 interrupted.\n";
  return out.str();
}

}  // namespace collectorctl
