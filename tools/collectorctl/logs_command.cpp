// `logs`: a job's output, whole or its tail, and with -f what it writes until it has ended.

#include <cstdlib>

#include "commands.h"
#include "exit_codes.h"
#include "interrupt.h"
#include "poll_pacing.h"
#include "run_state.h"

namespace collectorctl {
namespace {

constexpr const char* kPageLimit = "1048576";  // the most the server returns at once

std::optional<long long> headerNumber(const ApiResponse& response, const char* name) {
  const auto text = response.header(name);
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text->c_str(), &end, 10);
  if (*end != '\0' || value < 0) return std::nullopt;
  return value;
}

class LogReader {
 public:
  LogReader(CommandContext& context, const std::string& job_id)
      : context_(context), path_("/api/collectors/runs/job/" + encodeComponent(job_id) + "/log") {}

  // Prints the log from the start (or its last `tail` lines) up to its current end. Returns
  // nullopt on success, else the exit status.
  std::optional<int> printExisting(const std::optional<std::string>& tail) {
    if (tail) return fetch(path_ + "?tail=" + *tail);
    for (;;) {
      if (auto failed =
              fetch(path_ + "?offset=" + std::to_string(next_) + "&limit=" + kPageLimit)) {
        return failed;
      }
      if (last_text_empty_ || next_ >= size_) return std::nullopt;
    }
  }

  // Prints what was written since the last read. Returns nullopt on success, else the exit
  // status.
  std::optional<int> printNew() {
    return fetch(path_ + "?offset=" + std::to_string(next_) + "&limit=" + kPageLimit);
  }

  bool lastTextEmpty() const { return last_text_empty_; }
  const ApiResponse& lastResponse() const { return last_; }

 private:
  // Over the rate limit, waits as told and asks again: a long log is worth the wait.
  std::optional<int> fetch(const std::string& target) {
    last_ = context_.client.get(target);
    while (last_.status == 429) {
      const auto wait = pollDelay(last_, std::chrono::milliseconds(1000), 1);
      context_.err << "collectorctl: rate limited by the server; reading on in "
                   << (wait.count() + 999) / 1000 << " s\n";
      if (!sleepUnlessInterrupted(wait)) return kExitInterrupted;
      last_ = context_.client.get(target);
    }
    if (!last_.ok()) return reportFailure(context_, last_);
    const long long dropped = headerNumber(last_, "X-Log-Dropped").value_or(0);
    const long long offset = headerNumber(last_, "X-Log-Offset").value_or(next_);
    if (offset > next_ && next_ > 0 && dropped > 0) {
      context_.err << "collectorctl: " << (offset - next_)
                   << " bytes of the log were dropped (the server caps job logs)\n";
    } else if (next_ == 0 && offset > 0 && dropped > 0 && !warned_) {
      context_.err << "collectorctl: the first " << dropped
                   << " bytes of the log were dropped (the server caps job logs)\n";
    }
    warned_ = warned_ || dropped > 0;
    next_ = headerNumber(last_, "X-Log-Next-Offset").value_or(next_);
    size_ = headerNumber(last_, "X-Log-Size").value_or(next_);
    last_text_empty_ = last_.body.empty();
    context_.out << last_.body << std::flush;
    exitIfOutputClosed(context_.out);
    return std::nullopt;
  }

  CommandContext& context_;
  const std::string path_;
  ApiResponse last_;
  long long next_ = 0;
  long long size_ = 0;
  bool last_text_empty_ = true;
  bool warned_ = false;
};

}  // namespace

int runLogs(CommandContext& context) {
  const std::string& job_id = context.line.args.front();
  catchInterrupts();
  LogReader reader(context, job_id);
  if (auto failed = reader.printExisting(context.line.value("tail"))) return *failed;
  if (!context.line.has("follow")) return kExitOk;

  auto interval = std::chrono::milliseconds(500);
  if (auto text = context.line.value("interval")) {
    interval = std::chrono::milliseconds(parseMilliseconds(*text).value_or(500));
  }
  // The documented way to follow: read from the last offset until the job has ended and a
  // read brings no more text. The status is read before the log, so the text a job writes
  // just before it ends is never missed.
  const std::string status_path = "/api/collectors/runs/job/" + encodeComponent(job_id);
  for (;;) {
    const ApiResponse status = context.client.get(status_path);
    const auto job = status.object();
    if (status.status == 429) {
      if (!sleepUnlessInterrupted(pollDelay(status, interval, 2))) return kExitInterrupted;
      continue;
    }
    if (!status.ok() || !job) return reportFailure(context, status);
    const bool ended = isTerminalStatus(stringField(*job, "status"));
    if (auto failed = reader.printNew()) return *failed;
    if (ended && reader.lastTextEmpty()) return kExitOk;
    if (ended) continue;  // more text came in: read again at once until it stops
    if (!sleepUnlessInterrupted(pollDelay(reader.lastResponse(), interval, 2))) {
      return kExitInterrupted;
    }
  }
}

}  // namespace collectorctl
