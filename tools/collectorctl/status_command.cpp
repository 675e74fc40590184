// `status` and `cancel`: one batch or one job, told apart by the bc_ prefix of batch IDs.

#include <Poco/JSON/Array.h>

#include "commands.h"
#include "exit_codes.h"
#include "run_state.h"
#include "table.h"
#include "text_format.h"

namespace collectorctl {
namespace {

struct Resolved {
  ApiResponse response;
  bool batch = false;  // the ID named a batch
};

// GET (or DELETE) the batch or job `id` names. Batch IDs start with bc_, but so do the job IDs of
// a collector whose name starts with "bc" (the API derives job IDs from the first two letters):
// a bc_ ID that is no batch is tried as a job.
Resolved resolve(CommandContext& context, const std::string& id, bool cancel) {
  const auto call = [&](const std::string& path) {
    return cancel ? context.client.del(path) : context.client.get(path);
  };
  const std::string job_path = "/api/collectors/runs/job/" + encodeComponent(id);
  if (id.rfind("bc_", 0) != 0) return {call(job_path), false};
  Resolved batch{call("/api/collectors/runs/batch/" + encodeComponent(id)), true};
  if (batch.response.status != 404) return batch;
  Resolved job{call(job_path), false};
  return job.response.status == 404 ? batch : job;
}

std::string percent(const Poco::JSON::Object& object, const std::string& key) {
  const auto value = intField(object, key);
  return value ? std::to_string(*value) + "%" : "-";
}

std::string orDash(const std::string& text) { return text.empty() ? "-" : printable(text); }

std::string when(const std::string& timestamp) {
  if (timestamp.empty()) return "-";
  const std::string relative = formatRelative(timestamp);
  return formatTableTime(timestamp) + " UTC" + (relative.empty() ? "" : " (" + relative + ")");
}

std::string duration(const Poco::JSON::Object& object) {
  const auto seconds = numberField(object, "duration_seconds");
  return seconds ? formatSeconds(*seconds) : "-";
}

void printFields(CommandContext& context, const std::vector<std::pair<std::string, Cell>>& rows) {
  Table table({});
  for (const auto& [label, cell] : rows) table.add({{label}, cell});
  table.print(context.out, context.style, static_cast<std::size_t>(context.out_width));
}

void printBatch(CommandContext& context, const Poco::JSON::Object& batch) {
  const std::string status = stringField(batch, "status");
  std::string state = status + "  " + percent(batch, "progress_percent");
  const std::string eta = stringField(batch, "estimated_completion");
  if (const auto at = parseTimestamp(eta); at && !isTerminalStatus(status)) {
    const double left = static_cast<double>(*at - nowMicros()) / 1e6;
    if (left >= 1) state += "  (about " + formatSeconds(left) + " left)";
  }
  std::vector<std::pair<std::string, Cell>> rows = {
      {"Batch", {stringField(batch, "batch_id")}},
      {"Status", {state, statusColour(status)}},
      {"Message", {orDash(stringField(batch, "message"))}},
      {"Priority", {orDash(stringField(batch, "priority"))}},
      {"Started", {when(stringField(batch, "started_at"))}},
      {"Ended", {when(stringField(batch, "ended_at"))}},
      {"Duration", {duration(batch)}},
  };
  if (const std::string error = stringField(batch, "error"); !error.empty()) {
    rows.push_back({"Error", {printable(error), Colour::kRed}});
  }
  printFields(context, rows);

  Table jobs({"JOB ID", "NAME", "STATUS", "PROGRESS", "DURATION", "MESSAGE"});
  if (const auto items = batch.getArray("collectors")) {
    for (std::size_t i = 0; i < items->size(); ++i) {
      const auto job = items->getObject(static_cast<unsigned>(i));
      if (!job) continue;
      const std::string job_status = stringField(*job, "status");
      const std::string error = stringField(*job, "error");
      jobs.add({{stringField(*job, "job_id")},
                {printable(stringField(*job, "job_name"))},
                {job_status, statusColour(job_status)},
                {percent(*job, "progress_percent")},
                {duration(*job)},
                error.empty() ? Cell{orDash(stringField(*job, "message"))}
                              : Cell{printable(error),
                                     job_status == "failed" ? Colour::kRed : Colour::kNone}});
    }
  }
  context.out << "\n";
  jobs.print(context.out, context.style, static_cast<std::size_t>(context.out_width));
}

void printJob(CommandContext& context, const Poco::JSON::Object& job) {
  const std::string status = stringField(job, "status");
  std::string attempt = std::to_string(intField(job, "attempt").value_or(1)) + " of " +
                        std::to_string(intField(job, "max_attempts").value_or(1));
  if (const std::string next = stringField(job, "next_attempt_at"); !next.empty()) {
    attempt += " (next attempt " + when(next) + ")";
  }
  std::vector<std::pair<std::string, Cell>> rows = {
      {"Job", {stringField(job, "job_id")}},
      {"Name",
       {printable(stringField(job, "job_name")) + " (collector " +
        printable(stringField(job, "collector")) + ")"}},
      {"Status", {status + "  " + percent(job, "progress_percent"), statusColour(status)}},
      {"Message", {orDash(stringField(job, "message"))}},
  };
  if (const std::string error = stringField(job, "error"); !error.empty()) {
    rows.push_back(
        {"Error", {printable(error), status == "failed" ? Colour::kRed : Colour::kNone}});
  }
  const std::string batch_status = stringField(job, "batch_status");
  rows.insert(rows.end(), {
                              {"Started", {when(stringField(job, "started_at"))}},
                              {"Ended", {when(stringField(job, "ended_at"))}},
                              {"Duration", {duration(job)}},
                              {"Attempt", {attempt}},
                              {"Batch",
                               {stringField(job, "batch_id") + "  " + batch_status + "  " +
                                percent(job, "batch_progress_percent") + "  " +
                                printable(stringField(job, "batch_message"))}},
                          });
  printFields(context, rows);
  const auto previous = job.getArray("previous_attempts");
  if (!previous || previous->size() == 0) return;
  context.out << "\nPrevious attempts:\n";
  Table attempts({"ATTEMPT", "ENDED (UTC)", "ERROR"}, "  ");
  for (std::size_t i = 0; i < previous->size(); ++i) {
    const auto item = previous->getObject(static_cast<unsigned>(i));
    if (!item) continue;
    attempts.add({{std::to_string(intField(*item, "attempt").value_or(0))},
                  {formatTableTime(stringField(*item, "ended_at"))},
                  {printable(stringField(*item, "error")), Colour::kRed}});
  }
  attempts.print(context.out, context.style, static_cast<std::size_t>(context.out_width));
}

// The state to follow for `status ID --wait`: every job of a batch, or one job and its batch.
RunState stateFor(const std::string& id, bool batch, const Poco::JSON::Object& document) {
  RunState state;
  if (!batch) {
    JobProgress job;
    job.job_id = stringField(document, "job_id");
    job.batch_id = stringField(document, "batch_id");
    job.job_name = stringField(document, "job_name");
    state.addJob(job);
    state.applyJob(document);
    return state;
  }
  if (const auto items = document.getArray("collectors")) {
    for (std::size_t i = 0; i < items->size(); ++i) {
      const auto item = items->getObject(static_cast<unsigned>(i));
      if (!item) continue;
      JobProgress job;
      job.job_id = stringField(*item, "job_id");
      job.batch_id = id;
      job.job_name = stringField(*item, "job_name");
      state.addJob(job);
    }
  }
  state.addBatch(id);
  return state;
}

}  // namespace

int runStatus(CommandContext& context) {
  const std::string& id = context.line.args.front();
  const Resolved resolved = resolve(context, id, false);
  const ApiResponse& response = resolved.response;
  const auto document = response.object();
  if (!response.ok() || !document) return reportFailure(context, response);
  if (context.line.has("wait")) {
    RunState state = stateFor(id, resolved.batch, *document);
    if (!state.jobs().empty()) {
      // --json: the final document of what was asked for, a job's own when it was a job.
      return waitForRuns(context, state,
                         resolved.batch ? "" : "/api/collectors/runs/job/" + encodeComponent(id));
    }
  }
  if (context.json) {
    printJson(context, response.body);
  } else if (resolved.batch) {
    printBatch(context, *document);
  } else {
    printJob(context, *document);
  }
  return kExitOk;
}

int runCancel(CommandContext& context) {
  const std::string& id = context.line.args.front();
  const Resolved resolved = resolve(context, id, true);
  const ApiResponse& response = resolved.response;
  const auto document = response.object();
  if (!response.ok() || !document) return reportFailure(context, response);
  if (context.json) {
    printJson(context, response.body);
    return kExitOk;
  }
  const std::string what = resolved.batch ? "batch " : "job ";
  if (response.status == 202) {
    context.out << "Cancelling " << what << id
                << ": running jobs are being stopped; `collectorctl status " << id
                << "` shows when they are cancelled\n";
  } else {
    context.out << "Cancelled " << what << id << "\n";
  }
  return kExitOk;
}

}  // namespace collectorctl
