// The live view: every redraw moves the cursor up over the lines drawn last time and rewrites
// each of them whole ("\r", erase line, text), so the bars stay in place however the text
// changes. No line is ever as wide as the terminal: a line that wraps would break the count of
// lines to move up over.

#include <algorithm>
#include <chrono>

#include "interrupt.h"
#include "progress_view.h"
#include "text_format.h"

namespace collectorctl {
namespace {

constexpr std::size_t kMaxNameWidth = 28;
constexpr std::size_t kMinBar = 10;
constexpr std::size_t kMaxBar = 30;

class TerminalView : public ProgressView {
 public:
  TerminalView(std::ostream& out, int fd, TextStyle style) : out_(out), fd_(fd), style_(style) {}

  void update(const RunState& state, const std::string& notice) override { draw(state, notice); }

  void finish(const RunState& state) override {
    draw(state, "");
    out_.flush();
  }

 private:
  struct Row {
    std::string label;
    std::optional<int> progress;
    std::string status;
    std::optional<double> elapsed;
    std::string text;
    bool text_is_error = false;
    bool bold = false;
    bool job = false;    // a job's row (else a batch's)
    bool ended = false;  // its status is terminal
    bool plain = false;  // a remark: only `text`, no bar
  };

  std::string bar(const Row& row, std::size_t inner) const {
    const int percent = std::clamp(row.progress.value_or(0), 0, 100);
    const std::size_t filled = inner * static_cast<std::size_t>(percent) / 100;
    std::string done, rest;
    for (std::size_t i = 0; i < filled; ++i) done += style_.unicode ? "\u2588" : "#";
    for (std::size_t i = filled; i < inner; ++i) rest += style_.unicode ? "\u2591" : "-";
    return "[" + style_.paint(done, statusColour(row.status)) + style_.paint(rest, Colour::kDim) +
           "]";
  }

  // Columns, one space apart: label, bar, percentage, status, clock, two spaces, text. The bar
  // takes a third of what the other columns leave, within [kMinBar, kMaxBar]: the text (what
  // the collector says) gets the rest.
  std::string renderRow(const Row& row, std::size_t name_width, std::size_t clock_width,
                        std::size_t width) const {
    const std::size_t others = name_width + 1 + 2 + 1 + 4 + 1 + 9 + 1 + clock_width + 2;
    const std::size_t inner =
        std::clamp<std::size_t>(width > others ? (width - others) / 3 : 0, kMinBar, kMaxBar);
    const std::size_t fixed = others + inner;
    const std::string percent = row.progress ? std::to_string(*row.progress) + "%" : "-";
    if (row.plain) return style_.paint(truncateToWidth(row.text, width - 1, style_), Colour::kDim);
    if (fixed + 1 >= width) {
      // Too narrow for a bar: name, percentage and status only.
      return truncateToWidth(printable(row.label) + " " + percent + " " + row.status,
                             width > 1 ? width - 1 : 0, style_);
    }
    std::string line =
        padRight(truncateToWidth(printable(row.label), name_width, style_), name_width);
    if (row.bold) line = style_.paint(line, Colour::kBold);
    line += " " + bar(row, inner) + " " + padLeft(percent, 4) + " " +
            style_.paint(padRight(row.status, 9), statusColour(row.status)) + " " +
            padLeft(row.elapsed ? formatClock(*row.elapsed) : "", clock_width) + "  ";
    const std::string text = truncateToWidth(printable(row.text), width - fixed - 1, style_);
    line += row.text_is_error ? style_.paint(text, Colour::kRed) : text;
    return line;
  }

  std::vector<Row> rows(const RunState& state) const {
    const double now = static_cast<double>(nowMicros()) / 1e6;
    const auto elapsed = [&](std::optional<std::int64_t> started, std::optional<double> duration,
                             const std::string& status) -> std::optional<double> {
      if (duration) return *duration;
      if (!started || isTerminalStatus(status)) return std::nullopt;
      return std::max(0.0, now - static_cast<double>(*started) / 1e6);
    };
    std::vector<Row> result;
    for (const JobProgress& job : state.jobs()) {
      Row row{job.job_name, job.progress, job.status.empty() ? "queued" : job.status,
              elapsed(job.started_at_us, job.duration_seconds, job.status), job.message};
      if (!job.error.empty() && job.status != "completed") {
        row.text = job.error;
        row.text_is_error = job.status == "failed";
      }
      if (job.skipped) row.text = "(skipped: already active) " + row.text;
      row.job = true;
      row.ended = isTerminalStatus(job.status);
      result.push_back(row);
    }
    for (const BatchProgress& batch : state.batches()) {
      Row row{batch.batch_id, batch.progress, batch.status.empty() ? "queued" : batch.status,
              elapsed(batch.started_at_us, batch.duration_seconds, batch.status), batch.message};
      row.bold = true;
      if (const auto eta = parseTimestamp(batch.estimated_completion);
          eta && !isTerminalStatus(batch.status)) {
        const double left = static_cast<double>(*eta) / 1e6 - now;
        // First, so that a narrow terminal cuts the (longer, slower-changing) message instead.
        if (left >= 1) {
          row.text = "~" + formatSeconds(left) + " left" + (style_.unicode ? " \u00b7 " : " - ") +
                     row.text;
        }
      }
      result.push_back(row);
    }
    return result;
  }

  // The rows that fit the terminal's height: a frame taller than the screen cannot be redrawn
  // in place (the cursor cannot move up into the scrollback). Batches always stay; jobs still
  // going come before ended ones; a last row counts the jobs left out.
  std::vector<Row> fitted(std::vector<Row> all, std::size_t extra_lines) const {
    const auto height = static_cast<std::size_t>(std::max(terminalHeight(fd_), 5));
    const std::size_t room = height - 1 - extra_lines;
    if (all.size() <= room) return all;
    std::vector<std::size_t> batches, going, ended;
    for (std::size_t i = 0; i < all.size(); ++i) {
      (!all[i].job ? batches : all[i].ended ? ended : going).push_back(i);
    }
    const std::size_t budget = room > batches.size() + 1 ? room - batches.size() - 1 : 1;
    std::vector<std::size_t> kept = batches;
    std::size_t jobs_kept = 0;
    for (const auto* group : {&going, &ended}) {
      for (std::size_t i : *group) {
        if (jobs_kept == budget) break;
        kept.push_back(i);
        ++jobs_kept;
      }
    }
    std::sort(kept.begin(), kept.end());
    std::vector<Row> shown;
    for (std::size_t i : kept) shown.push_back(all[i]);
    const std::size_t hidden = going.size() + ended.size() - jobs_kept;
    Row more;
    more.text = "+" + std::to_string(hidden) + " more job" + (hidden == 1 ? "" : "s") +
                " not shown (the terminal is " + std::to_string(height) + " lines high)";
    more.job = true;
    more.plain = true;
    const auto first_batch =
        std::find_if(shown.begin(), shown.end(), [](const Row& row) { return !row.job; });
    shown.insert(first_batch, more);
    return shown;
  }

  void draw(const RunState& state, const std::string& notice) {
    const auto width = static_cast<std::size_t>(std::max(terminalWidth(fd_), 20));
    std::size_t name_width = 0;
    std::size_t clock_width = 4;
    const std::vector<Row> all = fitted(rows(state), notice.empty() ? 0 : 1);
    for (const Row& row : all) {
      name_width = std::max(name_width, displayWidth(row.label));
      if (row.elapsed) clock_width = std::max(clock_width, formatClock(*row.elapsed).size());
    }
    name_width = std::min(name_width, kMaxNameWidth);

    std::vector<std::string> lines;
    for (const Row& row : all) lines.push_back(renderRow(row, name_width, clock_width, width));
    if (!notice.empty()) {
      lines.push_back(
          style_.paint(truncateToWidth(printable(notice), width - 1, style_), Colour::kYellow));
    }
    std::string frame;
    if (drawn_ > 0) frame += "\r\x1b[" + std::to_string(drawn_) + "A";
    const std::size_t count = std::max(lines.size(), drawn_);
    for (std::size_t i = 0; i < count; ++i) {
      frame += "\r\x1b[2K";
      if (i < lines.size()) frame += lines[i];
      frame += "\n";
    }
    drawn_ = count;
    out_ << frame << std::flush;
    exitIfOutputClosed(out_);
  }

  std::ostream& out_;
  int fd_;
  TextStyle style_;
  std::size_t drawn_ = 0;  // lines drawn by the last frame, which the next one overwrites
};

}  // namespace

std::unique_ptr<ProgressView> makeTerminalView(std::ostream& out, int fd, TextStyle style) {
  return std::make_unique<TerminalView>(out, fd, style);
}

void printSummary(std::ostream& out, const RunState& state, const TextStyle& style) {
  for (const BatchProgress& batch : state.batches()) {
    std::string line =
        "Batch " + batch.batch_id + " " + style.paint(batch.status, statusColour(batch.status));
    if (batch.duration_seconds) line += " in " + formatSeconds(*batch.duration_seconds);
    if (!batch.message.empty()) line += ": " + printable(batch.message);
    out << line << "\n";
  }
  for (const JobProgress& job : state.jobs()) {
    if (job.status == "completed") continue;
    std::string line = "  " + printable(job.job_name) + " (" + job.job_id + ") " +
                       style.paint(job.status, statusColour(job.status));
    if (!job.error.empty()) line += ": " + printable(job.error);
    out << line << "\n";
  }
  out.flush();
}

}  // namespace collectorctl
