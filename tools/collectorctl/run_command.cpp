// `run`: trigger collectors, print the batch and job IDs, and with --wait follow them.

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>

#include <sstream>

#include "commands.h"
#include "exit_codes.h"
#include "interrupt.h"
#include "progress_view.h"
#include "run_follower.h"
#include "run_state.h"
#include "table.h"

namespace collectorctl {
namespace {

// For --json --wait: nothing while waiting, the final JSON at the end.
class SilentView : public ProgressView {
 public:
  void update(const RunState&, const std::string&) override {}
  void finish(const RunState&) override {}
};

std::string requestBody(const CommandContext& context) {
  Poco::JSON::Object body;
  Poco::JSON::Array::Ptr names = new Poco::JSON::Array;
  for (const std::string& name : context.line.args) names->add(name);
  body.set("collectors", names);
  if (auto priority = context.line.value("priority")) body.set("priority", *priority);
  std::ostringstream text;
  Poco::JSON::Stringifier::condense(body, text);
  return text.str();
}

}  // namespace

int waitForRuns(CommandContext& context, RunState& state, const std::string& json_path) {
  FollowOptions options;
  if (auto interval = context.line.value("interval")) {
    options.interval = std::chrono::milliseconds(parseMilliseconds(*interval).value_or(500));
  }
  options.use_events = !context.line.has("no-events");

  std::unique_ptr<ProgressView> view;
  if (context.json) {
    view = std::make_unique<SilentView>();
  } else if (context.out_is_terminal) {
    view = makeTerminalView(context.out, 1, context.style);
  } else {
    view = makeLineView(context.out);
  }
  catchInterrupts();
  const FollowResult result = followRuns(context.client, state, *view, options);

  if (result.end == FollowEnd::kFailed) {
    context.out.flush();
    context.err << "collectorctl: " << result.error << "\n";
    return kExitServer;
  }
  if (context.json && !json_path.empty()) {
    const ApiResponse final_state = context.client.get(json_path);
    if (!final_state.ok()) return reportFailure(context, final_state);
    printJson(context, final_state.body);
  } else if (context.json) {
    for (const BatchProgress& batch : state.batches()) printJson(context, batch.json);
  } else if (context.out_is_terminal) {
    printSummary(context.out, state, context.style);
  }
  if (result.end == FollowEnd::kInterrupted) {
    context.out.flush();
    context.err << "collectorctl: stopped waiting; the runs go on (collectorctl status "
                << state.batches().front().batch_id << ")\n";
    return kExitInterrupted;
  }
  return state.allCompleted() ? kExitOk : kExitRunFailed;
}

int runRun(CommandContext& context) {
  const ApiResponse response = context.client.post("/api/collectors/run", requestBody(context));
  const auto body = response.object();
  if (!response.ok() || !body) return reportFailure(context, response);
  const bool wait = context.line.has("wait");
  if (context.json && !wait) {
    printJson(context, response.body);
    return kExitOk;
  }

  const std::string batch_id = stringField(*body, "batch_id");
  RunState state;
  Table jobs({}, "  ");
  bool started_any = false;
  if (const auto items = body->getArray("collectors")) {
    for (std::size_t i = 0; i < items->size(); ++i) {
      const auto item = items->getObject(static_cast<unsigned>(i));
      if (!item) continue;
      JobProgress job;
      job.job_id = stringField(*item, "job_id");
      job.job_name = stringField(*item, "job_name");
      job.status = stringField(*item, "status");
      job.started_at_us = parseTimestamp(stringField(*item, "started_at"));
      job.skipped = item->has("skipped") && item->getValue<bool>("skipped");
      job.batch_id = job.skipped ? stringField(*item, "batch_id") : batch_id;
      started_any = started_any || !job.skipped;
      std::vector<Cell> row = {
          {job.job_id}, {printable(job.job_name)}, {job.status, statusColour(job.status)}};
      if (job.skipped) {
        row.push_back({"skipped: already active in batch " + job.batch_id, Colour::kYellow});
      }
      jobs.add(row);
      state.addJob(std::move(job));
    }
  }
  if (!context.json) {
    const std::string priority = context.line.value("priority").value_or("normal");
    if (started_any) {
      context.out << "Batch " << context.style.paint(batch_id, Colour::kBold) << " started ("
                  << priority << " priority):\n";
    } else {
      context.out << "Nothing started: every collector already has an active run:\n";
    }
    jobs.print(context.out, context.style, static_cast<std::size_t>(context.out_width));
    context.out.flush();
  }
  if (!wait || state.jobs().empty()) return kExitOk;
  if (!context.json && context.out_is_terminal) context.out << "\n";
  return waitForRuns(context, state);
}

}  // namespace collectorctl
