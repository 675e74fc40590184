// `latest`, `history` and `collectors`: listings, as tables or as the server's JSON.

#include <Poco/JSON/Array.h>

#include "commands.h"
#include "exit_codes.h"
#include "run_state.h"
#include "table.h"
#include "text_format.h"

namespace collectorctl {
namespace {

std::string percent(const Poco::JSON::Object& object) {
  const auto value = intField(object, "progress_percent");
  return value ? std::to_string(*value) + "%" : "-";
}

std::string duration(const Poco::JSON::Object& object) {
  const auto seconds = numberField(object, "duration_seconds");
  return seconds ? formatSeconds(*seconds) : "-";
}

// The message of a run, or its error when it did not complete.
Cell outcome(const Poco::JSON::Object& run) {
  const std::string status = stringField(run, "status");
  const std::string error = stringField(run, "error");
  if (!error.empty() && status != "completed") {
    return {printable(error), status == "failed" ? Colour::kRed : Colour::kNone};
  }
  const std::string message = stringField(run, "message");
  return {message.empty() ? "-" : printable(message)};
}

std::string collectorOf(const Poco::JSON::Object& run) {
  const std::string name = stringField(run, "collector");
  return printable(name.empty() ? stringField(run, "job_name") : name);
}

// The objects of array `key` of `body`.
std::vector<Poco::JSON::Object::Ptr> items(const Poco::JSON::Object& body, const std::string& key) {
  std::vector<Poco::JSON::Object::Ptr> result;
  if (const auto array = body.getArray(key)) {
    for (std::size_t i = 0; i < array->size(); ++i) {
      if (auto item = array->getObject(static_cast<unsigned>(i))) result.push_back(item);
    }
  }
  return result;
}

// GETs `path`; prints the JSON with --json. Returns the body object for a table, or nullptr
// with `status` set to the exit status when there is nothing more to do.
Poco::JSON::Object::Ptr fetch(CommandContext& context, const std::string& path, int& status) {
  const ApiResponse response = context.client.get(path);
  const auto body = response.object();
  if (!response.ok() || !body) {
    status = reportFailure(context, response);
    return nullptr;
  }
  status = kExitOk;
  if (context.json) {
    printJson(context, response.body);
    return nullptr;
  }
  return body;
}

void printTable(CommandContext& context, const Table& table, const std::string& when_empty) {
  if (table.empty()) {
    context.out << when_empty << "\n";
    return;
  }
  table.print(context.out, context.style, static_cast<std::size_t>(context.out_width));
}

}  // namespace

int runLatest(CommandContext& context) {
  std::string path = "/api/collectors/runs/latest";
  if (!context.line.args.empty()) {
    std::string names;
    for (const std::string& name : context.line.args) {
      names += (names.empty() ? "" : ",") + encodeComponent(name);
    }
    path += "?collectors=" + names;
  }
  int status = kExitOk;
  const auto body = fetch(context, path, status);
  if (!body) return status;
  Table table(
      {"COLLECTOR", "JOB ID", "STATUS", "PROGRESS", "STARTED (UTC)", "DURATION", "MESSAGE"});
  for (const auto& run : items(*body, "latest_runs")) {
    const std::string run_status = stringField(*run, "status");
    table.add({{collectorOf(*run)},
               {stringField(*run, "job_id")},
               {run_status, statusColour(run_status)},
               {percent(*run)},
               {formatTableTime(stringField(*run, "started_at"))},
               {duration(*run)},
               outcome(*run)});
  }
  printTable(context, table, "No runs yet.");
  return kExitOk;
}

int runHistory(CommandContext& context) {
  std::string path = "/api/collectors/history";
  if (auto limit = context.line.value("limit")) path += "?limit=" + encodeComponent(*limit);
  int status = kExitOk;
  const auto body = fetch(context, path, status);
  if (!body) return status;
  Table table({"STARTED (UTC)", "JOB ID", "COLLECTOR", "STATUS", "DURATION", "MESSAGE"});
  for (const auto& run : items(*body, "collection_history")) {
    const std::string run_status = stringField(*run, "status");
    table.add({{formatTableTime(stringField(*run, "started_at"))},
               {stringField(*run, "job_id")},
               {collectorOf(*run)},
               {run_status, statusColour(run_status)},
               {duration(*run)},
               outcome(*run)});
  }
  printTable(context, table, "No runs yet.");
  return kExitOk;
}

int runCollectors(CommandContext& context) {
  int status = kExitOk;
  const auto body = fetch(context, "/api/collectors", status);
  if (!body) return status;
  Table table({"NAME", "TYPE", "SCHEDULE", "NEXT RUN", "ACTIVE", "LAST RUN"});
  for (const auto& collector : items(*body, "collectors")) {
    const std::string schedule = stringField(*collector, "schedule");
    const std::string next = stringField(*collector, "next_scheduled_at");
    const auto running = intField(*collector, "running").value_or(0);
    const auto queued = intField(*collector, "queued").value_or(0);
    std::string active = "-";
    if (running || queued) {
      active = std::to_string(running) + " running, " + std::to_string(queued) + " queued";
    }
    Cell last{"never"};
    if (collector->has("last_run") && collector->getObject("last_run")) {
      const auto run = collector->getObject("last_run");
      const std::string run_status = stringField(*run, "status");
      const std::string ended = formatRelative(stringField(*run, "ended_at"));
      last = {run_status + (ended.empty() ? "" : " " + ended) + " (" + stringField(*run, "job_id") +
                  ")",
              statusColour(run_status)};
    }
    table.add({{printable(stringField(*collector, "name"))},
               {stringField(*collector, "type")},
               {schedule.empty() ? "on request" : printable(schedule)},
               {next.empty() ? "-" : formatRelative(next)},
               {active, running ? Colour::kCyan : Colour::kNone},
               last});
  }
  printTable(context, table, "No collectors are configured.");
  return kExitOk;
}

}  // namespace collectorctl
