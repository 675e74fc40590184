#pragma once

// How `--wait` shows runs while they go: live bars redrawn in place on a terminal, or one
// timestamped line per change when stdout is a pipe or a file.

#include <memory>
#include <ostream>
#include <string>

#include "run_state.h"
#include "terminal.h"

namespace collectorctl {

class ProgressView {
 public:
  virtual ~ProgressView() = default;
  // Shows `state` as it is now. `notice` is a passing remark about the connection ("rate
  // limited: next update in 12 s"), "" when there is none. Called often, with or without
  // changes: a view decides what to draw.
  virtual void update(const RunState& state, const std::string& notice) = 0;
  // Leaves the display in its final form: the runs are over, or the wait ends early.
  virtual void finish(const RunState& state) = 0;
};

// For a terminal on `fd`: one bar per followed job and one per batch (name, bar, percentage,
// status in its colour, elapsed time, message cut to the width), redrawn in place with
// carriage returns and cursor movements. The width is read again at each redraw.
std::unique_ptr<ProgressView> makeTerminalView(std::ostream& out, int fd, TextStyle style);

// For anything else: a line `TIME NAME JOB_ID STATUS PERCENT MESSAGE` each time a job's status,
// progress, message or error changes, and `TIME batch BATCH_ID STATUS PERCENT MESSAGE` for the
// batch; TIME is UTC (2025-10-06T15:16:14Z), PERCENT "40%" or "-" before any report.
std::unique_ptr<ProgressView> makeLineView(std::ostream& out);

// The closing lines of a terminal view: each batch's outcome and duration, and the error of
// each followed job that did not complete.
void printSummary(std::ostream& out, const RunState& state, const TextStyle& style);

}  // namespace collectorctl
