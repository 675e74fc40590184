// Schedules that start runs by themselves, and the retention sweep of job logs.

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "supervisor_impl.h"
#include "time_format.h"

namespace collectord {

void Supervisor::Impl::sweepLogs() {
  const auto cfg = config();
  if (cfg->log_retention_days > 0) {
    namespace fs = std::filesystem;
    const auto cutoff =
        fs::file_time_type::clock::now() - std::chrono::hours(24) * cfg->log_retention_days;
    std::error_code ec;
    int removed = 0;
    for (const auto& entry : fs::directory_iterator(cfg->logs_directory, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() != 15 || name.compare(11, 4, ".log") != 0) continue;  // "ni_12345678.log"
      if (findJob(name.substr(0, 11))) continue;
      std::error_code time_ec;
      if (entry.last_write_time(time_ec) < cutoff && !time_ec &&
          fs::remove(entry.path(), time_ec)) {
        ++removed;
      }
    }
    if (removed > 0)
      log.information("removed %d job logs older than %d days", removed, cfg->log_retention_days);
  }
  sweep_timer.expires_after(kLogSweepInterval);
  sweep_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) sweepLogs();
  });
}

void Supervisor::Impl::armSchedules() {
  for (auto& [name, s] : schedules) s.timer->cancel();
  schedules.clear();
  const Micros now = nowMicros();
  for (const auto& [name, c] : collectors) {
    if (!c->schedule) continue;
    std::optional<Micros> last;
    try {
      last = store.lastScheduledRun(name);
    } catch (const StoreError& e) {
      log.error("schedule of %s: %s", name, std::string(e.what()));
    }
    const std::optional<Micros> next = c->schedule->next(last.value_or(now));
    if (!next) continue;  // refused by the configuration check; never fires
    armSchedule(name, std::max(*next, now));
    if (last && *next <= now) {
      log.information("schedule of %s missed a run while collectord was down: running now", name);
    }
  }
}

void Supervisor::Impl::armSchedule(const std::string& name, Micros at) {
  ScheduledCollector& s = schedules[name];
  if (!s.timer) s.timer = std::make_unique<asio::steady_timer>(io);
  s.next = at;
  s.timer->expires_after(std::chrono::microseconds(std::max<Micros>(0, at - nowMicros())));
  s.timer->async_wait([this, name](const boost::system::error_code& ec) {
    if (!ec) fireSchedule(name);
  });
}

void Supervisor::Impl::fireSchedule(const std::string& name) {
  const auto c = collectorConfig(name);
  if (stopping || !c || !c->schedule) return;
  const Micros now = nowMicros();
  const Micros slot = schedules[name].next;
  try {
    // Every node of a cluster runs the schedule; the first to take a slot runs it. The nodes'
    // slots agree (each arms the next one from the slot taken last), but for their clocks and
    // timers: another node's slot for this period lies within half a gap of this one.
    const Micros half_gap = toMicros(c->schedule->shortestGap()) / 2;
    if (!cluster || cluster->claimScheduledRun(name, slot, slot - half_gap)) {
      const TriggerResult result = createBatch({name}, Priority::kNormal);
      // Only once the run exists: a failed slot is retried (alone; in a cluster it is taken).
      if (!cluster) store.recordScheduledRun(name, now);
      log.information("schedule %s of %s: %s", c->schedule->describe(), name,
                      result.created ? "batch " + result.batch.batch_id
                                     : std::string("skipped, a run is active"));
    } else {
      log.debug("schedule of %s: another node runs the slot", name);
    }
  } catch (const StoreError& e) {
    log.error("schedule of %s could not start a run: %s", name, std::string(e.what()));
  }
  Micros from = now;
  if (cluster) {
    try {
      from = store.lastScheduledRun(name).value_or(now);
    } catch (const StoreError& e) {
      log.debug("schedule of %s: %s", name, std::string(e.what()));
    }
  }
  if (const auto next = c->schedule->next(from)) armSchedule(name, std::max(*next, now));
}

}  // namespace collectord
