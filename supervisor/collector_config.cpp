#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "config_reader.h"

namespace collectord::config_detail {

CollectorConfig readCollector(IniReader& r, const std::string& name) {
  CollectorConfig c;
  c.name = name;
  c.source_file = r.path();
  if (!r.ok()) return c;
  r.rejectUnknown({{"collector",
                    {"job_name", "type", "command", "args", "plugin", "working_directory",
                     "timeout", "stall_timeout", "kill_grace", "retries", "retry_backoff",
                     "retry_backoff_max", "concurrency", "overlap", "nice", "memory_limit",
                     "cpu_limit", "max_open_files", "user", "group", "schedule", "cron",
                     "timezone", "nodes"}}},
                  {"collector.env"});

  c.job_name = r.getString("collector.job_name", name + "-collector");
  const std::string type = r.getString("collector.type", "exec");
  if (type == "exec") {
    c.type = CollectorConfig::Type::kExec;
  } else if (type == "plugin") {
    c.type = CollectorConfig::Type::kPlugin;
  } else {
    r.problem("collector.type", "'" + type + "' is not a collector type (exec or plugin)");
  }

  const auto command = r.get("collector.command");
  if (c.type == CollectorConfig::Type::kExec) {
    if (!command) {
      r.problem("collector.command", "is required for an exec collector");
    } else if (command->find('/') == std::string::npos) {
      if (auto found = findOnPath(*command)) {
        c.command = *found;
      } else {
        r.problem("collector.command", "'" + *command + "' is not found on PATH");
      }
    } else {
      c.command = r.resolve(*command);
      if (!isExecutableFile(c.command)) {
        r.problem("collector.command", "'" + c.command + "' is not an executable file");
      }
    }
  }
  if (const auto args = r.get("collector.args")) {
    std::string error;
    if (auto words = splitShellWords(*args, error)) {
      c.args = std::move(*words);
    } else {
      r.problem("collector.args", error);
    }
  }
  c.plugin = r.getPath("collector.plugin");
  if (c.type == CollectorConfig::Type::kPlugin) {
    if (c.plugin.empty()) {
      r.problem("collector.plugin", "is required for a plugin collector");
    } else {
      requireFile(r, "collector.plugin", c.plugin);
    }
  }
  c.working_directory = r.getPath("collector.working_directory", ".");
  requireDirectory(r, "collector.working_directory", c.working_directory);
  for (auto& [key, value] : r.prefixed("collector", "env.")) {
    if (!isValidEnvName(key)) {
      r.problem("collector.env." + key, "not a valid environment variable name");
    } else if (key.rfind("COLLECTOR_", 0) == 0) {
      r.problem("collector.env." + key, "COLLECTOR_* variables are set by collectord");
    } else {
      c.env.emplace_back(key, value);
    }
  }
  c.timeout = r.getDuration("collector.timeout");
  c.stall_timeout = r.getDuration("collector.stall_timeout");
  c.kill_grace = r.getDuration("collector.kill_grace").value_or(c.kill_grace);
  c.retries = r.getInt("collector.retries", 0, 0, 100);
  c.retry_backoff = r.getDuration("collector.retry_backoff").value_or(c.retry_backoff);
  c.retry_backoff_max = r.getDuration("collector.retry_backoff_max").value_or(c.retry_backoff_max);
  if (c.retry_backoff_max < c.retry_backoff) {
    r.problem("collector.retry_backoff_max", "must not be shorter than collector.retry_backoff");
  }
  c.concurrency = r.getInt("collector.concurrency", 1, 1, 10000);
  const std::string overlap = r.getString("collector.overlap", "queue");
  if (overlap == "queue") {
    c.overlap = CollectorConfig::Overlap::kQueue;
  } else if (overlap == "skip") {
    c.overlap = CollectorConfig::Overlap::kSkip;
  } else if (overlap == "parallel") {
    c.overlap = CollectorConfig::Overlap::kParallel;
  } else {
    r.problem("collector.overlap", "'" + overlap + "' is not an overlap mode (queue, skip or parallel)");
  }
  if (c.concurrency > 1 && c.overlap != CollectorConfig::Overlap::kParallel) {
    r.problem("collector.concurrency",
              "more than one run at once needs collector.overlap = parallel");
  }
  if (r.get("collector.nice")) c.nice = r.getInt("collector.nice", 0, -20, 19);
  c.memory_limit = r.getSize("collector.memory_limit");
  c.cpu_limit = r.getDuration("collector.cpu_limit");
  if (r.get("collector.max_open_files")) {
    c.max_open_files = static_cast<std::uint64_t>(r.getInt("collector.max_open_files", 1024, 16, 1 << 20));
  }
  c.user = r.getString("collector.user", "");
  c.group = r.getString("collector.group", "");
  if (!c.user.empty() && ::getpwnam(c.user.c_str()) == nullptr) {
    r.problem("collector.user", "no such user '" + c.user + "'");
  }
  if (!c.group.empty() && ::getgrnam(c.group.c_str()) == nullptr) {
    r.problem("collector.group", "no such group '" + c.group + "'");
  }
  const auto every = r.get("collector.schedule");
  const auto cron = r.get("collector.cron");
  const auto timezone = r.get("collector.timezone");
  std::string error;
  if (every && cron) {
    r.problem("collector.cron", "set either collector.schedule or collector.cron, not both");
  } else if (every) {
    c.schedule = Schedule::every(*every, error);
    if (!c.schedule) r.problem("collector.schedule", error);
  } else if (cron) {
    c.schedule = Schedule::cron(*cron, timezone.value_or("UTC"), error);
    if (!c.schedule) r.problem(error.find("time zone") != std::string::npos ? "collector.timezone" : "collector.cron", error);
  }
  if (timezone && !cron) r.problem("collector.timezone", "applies to collector.cron only");
  if (const auto nodes = r.get("collector.nodes")) {
    for (const std::string& selector : splitList(*nodes)) {
      const bool tag = selector.rfind("tag:", 0) == 0;
      if (!isValidNodeName(tag ? selector.substr(4) : selector)) {
        r.problem("collector.nodes", "'" + selector +
                                         "' is neither a node id nor tag:NAME (letters, digits, "
                                         "'.', '_', ':' and '-', at most 64)");
      }
      c.nodes.push_back(selector);
    }
  }
  return c;
}

}  // namespace collectord::config_detail
