// The view for pipes and files: a log a script or CI job can keep, one line per change, never a
// control character.

#include <map>
#include <tuple>

#include "interrupt.h"
#include "progress_view.h"
#include "text_format.h"

namespace collectorctl {
namespace {

class LineView : public ProgressView {
 public:
  explicit LineView(std::ostream& out) : out_(out) {}

  void update(const RunState& state, const std::string& notice) override {
    const std::string now = formatUtc(nowMicros());
    for (const JobProgress& job : state.jobs()) {
      if (job.status.empty()) continue;  // nothing heard yet
      Shown shown{job.status, job.progress, job.message, job.error};
      auto [it, inserted] = last_.try_emplace(job.job_id, shown);
      if (!inserted && it->second == shown) continue;
      it->second = shown;
      out_ << now << " " << printable(job.job_name) << " " << job.job_id << " "
           << describe(job.status, job.progress, job.message, job.error, job.duration_seconds)
           << "\n";
    }
    for (const BatchProgress& batch : state.batches()) {
      if (batch.status.empty()) continue;
      Shown shown{batch.status, batch.progress, batch.message, batch.error};
      auto [it, inserted] = last_.try_emplace(batch.batch_id, shown);
      if (!inserted && it->second == shown) continue;
      it->second = shown;
      out_ << now << " batch " << batch.batch_id << " "
           << describe(batch.status, batch.progress, batch.message, "", batch.duration_seconds)
           << "\n";
    }
    if (!notice.empty() && notice != last_notice_) {
      out_ << now << " note: " << printable(notice) << "\n";
    }
    last_notice_ = notice;
    out_.flush();
    exitIfOutputClosed(out_);
  }

  void finish(const RunState& state) override { update(state, ""); }

 private:
  using Shown = std::tuple<std::string, std::optional<int>, std::string, std::string>;

  static std::string describe(const std::string& status, std::optional<int> progress,
                              const std::string& message, const std::string& error,
                              std::optional<double> duration) {
    std::string text = status + " " + (progress ? std::to_string(*progress) + "%" : "-");
    if (!error.empty() && status != "completed") {
      text += " error: " + printable(error);
    } else if (!message.empty()) {
      text += " " + printable(message);
    }
    if (duration && isTerminalStatus(status)) text += " (" + formatSeconds(*duration) + ")";
    return text;
  }

  std::ostream& out_;
  std::map<std::string, Shown> last_;  // by job or batch ID: what its last line said
  std::string last_notice_;
};

}  // namespace

std::unique_ptr<ProgressView> makeLineView(std::ostream& out) {
  return std::make_unique<LineView>(out);
}

}  // namespace collectorctl
