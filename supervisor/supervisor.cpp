#include "supervisor.h"


#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>

#include "supervisor_impl.h"
#include "time_format.h"

namespace collectord {

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(30);

int priorityRank(Priority p) { return static_cast<int>(p); }  // high < normal < low

// Runs `work` on the supervision thread and waits for its result (or exception). A caller
// that gives up turns the task into a no-op, so a trigger that answered 503 creates nothing.
template <typename Result, typename Work>
Result onThread(asio::io_context& io, Work work) {
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  auto task = std::make_shared<std::packaged_task<Result()>>(std::move(work));
  auto result = task->get_future();
  asio::post(io, [task, abandoned] {
    if (!*abandoned) (*task)();
  });
  if (result.wait_for(kCommandTimeout) != std::future_status::ready) {
    *abandoned = true;
    if (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      throw BusyError("the supervisor did not answer within 30 s");
    }
  }
  return result.get();
}

}  // namespace

std::shared_ptr<const Config> Supervisor::Impl::config() const {
  std::lock_guard lock(config_mutex);
  return current_config;
}

void Supervisor::Impl::applyConfig(Config cfg) {
  if (const auto current = config()) {
    // The node's identity and the cluster's timings are what it joined with (the store, the
    // heartbeats and the other nodes know them): a reload keeps them.
    const ClusterSettings& now = current->cluster;
    const ClusterSettings& next = cfg.cluster;
    if (next.enabled != now.enabled || next.node_id != now.node_id || next.tags != now.tags ||
        next.lease_timeout != now.lease_timeout ||
        next.heartbeat_interval != now.heartbeat_interval ||
        next.poll_interval != now.poll_interval) {
      log.warning("[node] and [cluster] changes take effect at the next start; keeping those "
                  "in effect");
      cfg.cluster = now;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(cfg.logs_directory, ec);
  auto shared = std::make_shared<const Config>(std::move(cfg));
  collectors.clear();
  for (const CollectorConfig& c : shared->collectors) {
    collectors[c.name] = std::shared_ptr<const CollectorConfig>(shared, &c);
  }
  std::lock_guard lock(config_mutex);
  current_config = std::move(shared);
}

std::shared_ptr<const CollectorConfig> Supervisor::Impl::collectorConfig(
    const std::string& name) const {
  const auto it = collectors.find(name);
  return it == collectors.end() ? nullptr : it->second;
}

Supervisor::Impl::Job* Supervisor::Impl::findJob(const std::string& id) {
  const auto it = jobs.find(id);
  return it == jobs.end() ? nullptr : it->second.get();
}

std::string Supervisor::Impl::logPath(const std::string& job_id) const {
  return config()->logs_directory + "/" + job_id + ".log";
}

Supervisor::Impl::Job* Supervisor::Impl::activeJobOf(const std::string& collector) {
  Job* newest = nullptr;
  for (auto& [id, job] : jobs) {
    const JobRecord& r = job->sm.record();
    if (r.collector != collector || isTerminal(r.status)) continue;
    if (!newest || r.started_at > newest->sm.record().started_at) newest = job.get();
  }
  return newest;
}

TriggerResult Supervisor::Impl::createBatch(const std::vector<std::string>& names,
                                            Priority priority) {
  if (stopping) throw ShuttingDownError("collectord is shutting down");
  const Micros now = nowMicros();
  std::vector<std::optional<JobRecord>> skipped(names.size());
  std::vector<std::string> fresh;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto c = collectorConfig(names[i]);
    const bool skips = c && c->overlap == CollectorConfig::Overlap::kSkip;
    if (skips && cluster) {
      // Active anywhere in the cluster, not only here.
      auto latest = store.latestRun(names[i]);
      if (latest && !isTerminal(latest->status)) skipped[i] = std::move(latest);
    } else if (Job* active = skips ? activeJobOf(names[i]) : nullptr) {
      skipped[i] = active->sm.record();
    }
    if (!skipped[i]) {
      fresh.push_back(names[i]);
    }
  }
  TriggerResult result;
  if (fresh.empty()) {
    const auto here = batches.find(skipped.front()->batch_id);
    if (here != batches.end()) {
      result.batch = here->second.record;
    } else if (auto stored = store.findBatch(skipped.front()->batch_id)) {
      result.batch = *stored;
    }
  } else {
    result.batch = insertNewBatch(fresh, priority, now);
    result.created = true;
  }
  std::size_t next_new = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (skipped[i]) {
      result.jobs.push_back(*skipped[i]);
      result.skipped.push_back(true);
      log.information("trigger of %s skipped: job %s is active (overlap = skip)", names[i],
                      skipped[i]->job_id);
    } else {
      const Batch& b = batches.at(result.batch.batch_id);
      result.jobs.push_back(findJob(b.job_ids[next_new++])->sm.record());
      result.skipped.push_back(false);
    }
  }
  if (result.created && cluster) {
    // Queued in the store, where the first node with room claims each job (this one too).
    for (const std::string& id : batches.at(result.batch.batch_id).job_ids) jobs.erase(id);
    batches.erase(result.batch.batch_id);
  }
  if (result.created) asio::post(io, [this] { dispatch(); });
  return result;
}

BatchRecord Supervisor::Impl::insertNewBatch(const std::vector<std::string>& names,
                                             Priority priority, Micros now) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    BatchRecord batch;
    batch.batch_id = ids.batchId();
    batch.priority = priority;
    batch.started_at = batch.updated_at = now;
    std::vector<JobRecord> records;
    std::set<std::string> seen;
    for (const std::string& name : names) {
      const auto c = collectorConfig(name);
      JobRecord job;
      job.job_id = ids.jobId(name);
      job.batch_id = batch.batch_id;
      job.collector = name;
      job.job_name = c ? c->job_name : name + "-collector";
      job.max_attempts = c ? c->retries + 1 : 1;
      job.started_at = job.updated_at = now;
      seen.insert(job.job_id);
      records.push_back(std::move(job));
    }
    if (seen.size() != records.size()) continue;  // two new jobs drew the same ID
    std::vector<const JobRecord*> views;
    for (const JobRecord& j : records) views.push_back(&j);
    rollUpBatch(batch, views);
    if (!insertOrFind(batch, records)) continue;
    saved(records, {batch});

    Batch& active = batches[batch.batch_id];
    active.record = batch;
    for (std::size_t i = 0; i < records.size(); ++i) {
      active.job_ids.push_back(records[i].job_id);
      const std::string id = records[i].job_id;
      jobs[id] = std::make_unique<Job>(std::move(records[i]), collectorConfig(names[i]),
                                       static_cast<int>(i));
    }
    log.information("batch %s triggered (%s priority): %s", batch.batch_id,
                    std::string(toString(priority)), describe(active.job_ids));
    return batch;
  }
  throw StoreError("could not allocate unique batch and job IDs");
}

bool Supervisor::Impl::insertOrFind(const BatchRecord& batch, const std::vector<JobRecord>& batchJobs) {
  try {
    return store.insertBatch(batch, batchJobs);
  } catch (const StoreError& e) {
    // A database server's answer to COMMIT can be lost after the commit took effect. Such a
    // batch is ours: run it rather than leave it queued for the next start to find.
    try {
      if (store.findBatch(batch.batch_id)) {
        log.warning("batch %s was written although the store reported: %s", batch.batch_id,
                    std::string(e.what()));
        return true;
      }
    } catch (const StoreError& again) {
      log.debug("cannot tell whether batch %s was written: %s", batch.batch_id,
                std::string(again.what()));
    }
    throw;
  }
}

std::string Supervisor::Impl::describe(const std::vector<std::string>& job_ids) {
  std::string out;
  for (const std::string& id : job_ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

void Supervisor::Impl::dispatch() {
  if (stopping) return;
  if (cluster) return claimWork();
  const auto cfg = config();
  const Micros now = nowMicros();
  int running = 0;
  std::map<std::string, int> running_by_collector;
  for (const auto& [id, job] : jobs) {
    if (job->child) {
      ++running;
      ++running_by_collector[job->sm.record().collector];
    }
  }
  // Full: nothing to start, and no need to order the queue (this runs at every job end).
  if (running >= cfg->max_concurrent) return updateGauges();
  // Priority, then the batch's age, then trigger order; the keys are read once, not at each
  // comparison.
  struct Ready {
    int rank;
    Micros started_at;
    const std::string* batch_id;
    int position;
    Job* job;
  };
  std::vector<Ready> queue;
  for (const auto& [id, job] : jobs) {
    const JobRecord& r = job->sm.record();
    if (r.status == JobStatus::kQueued && (!r.next_attempt_at || *r.next_attempt_at <= now)) {
      queue.push_back({priorityRank(batches.at(r.batch_id).record.priority), r.started_at,
                       &r.batch_id, job->position, job.get()});
    }
  }
  std::sort(queue.begin(), queue.end(), [](const Ready& a, const Ready& b) {
    return std::tie(a.rank, a.started_at, *a.batch_id, a.position) <
           std::tie(b.rank, b.started_at, *b.batch_id, b.position);
  });
  std::vector<Job*> starting;
  for (const Ready& next : queue) {
    Job* job = next.job;
    if (running >= cfg->max_concurrent) break;
    // A job that has not started yet runs with the settings in effect now (after a reload).
    job->collector = collectorConfig(job->sm.record().collector);
    if (job->collector) job->sm.setMaxAttempts(job->collector->retries + 1);
    if (!job->collector) {
      fail(*job, "collector '" + job->sm.record().collector + "' is no longer configured");
      continue;
    }
    int& of_collector = running_by_collector[job->sm.record().collector];
    if (of_collector >= job->collector->effectiveConcurrency()) continue;
    starting.push_back(job);
    ++running;
    ++of_collector;
  }
  if (starting.empty()) return updateGauges();
  // Each run is written `running` (pid not known yet) before its process exists. A crash from
  // here on leaves the store saying so, and the next start fails the job with the restart error
  // and finds its processes by their environment; were the row still `queued`, it would start
  // the job a second time and leave the first run's children running. Best effort: when the
  // store refuses the write, the runs start anyway, as dashboards expect of a store in trouble.
  std::map<std::string, JobRecord> starting_rows;  // by job ID
  for (const Job* job : starting) {
    JobRecord row = job->sm.record();
    row.status = JobStatus::kRunning;
    row.pid.reset();
    row.next_attempt_at.reset();
    row.updated_at = now;
    starting_rows.emplace(row.job_id, std::move(row));
  }
  // Their batches are summarised with them, so a batch never reads `queued` while its jobs
  // read `running`.
  std::set<std::string> batch_ids;
  for (const Job* job : starting) batch_ids.insert(job->sm.record().batch_id);
  std::vector<BatchRecord> batch_rows;
  for (const std::string& batch_id : batch_ids) {
    const Batch& batch = batches.at(batch_id);
    BatchRecord summary = batch.record;
    std::vector<const JobRecord*> views;
    for (const std::string& id : batch.job_ids) {
      const auto it = starting_rows.find(id);
      views.push_back(it != starting_rows.end() ? &it->second : &jobs.at(id)->sm.record());
    }
    rollUpBatch(summary, views);
    batch_rows.push_back(std::move(summary));
  }
  std::vector<JobRecord> rows;
  for (auto& [id, row] : starting_rows) rows.push_back(std::move(row));
  try {
    store.save(rows, batch_rows, {});
  } catch (const StoreError& e) {
    log.warning("cannot record %z runs as starting; starting them anyway: %s", rows.size(),
                std::string(e.what()));
  }
  for (Job* job : starting) spawn(*job);
  updateGauges();
}

CancelOutcome Supervisor::Impl::cancel(Job& job) {
  const JobRecord& r = job.sm.record();
  if (isTerminal(r.status)) return CancelOutcome::kAlreadyTerminal;
  if (job.child) {
    stopRun(job, "cancelled by request", true);
    return CancelOutcome::kCancelling;
  }
  job.sm.requestCancel("cancelled by request", nowMicros());
  if (job.retry_timer) job.retry_timer->cancel();
  log.information("job %s cancelled while queued", r.job_id);
  afterRun(job);
  return CancelOutcome::kCancelled;
}

CancelOutcome Supervisor::Impl::cancelJob(const std::string& job_id) {
  if (Job* job = findJob(job_id)) return cancel(*job);
  if (cluster) return cancelElsewhere(job_id);
  return store.findJob(job_id) ? CancelOutcome::kAlreadyTerminal : CancelOutcome::kNotFound;
}

ReportOutcome Supervisor::Impl::report(const std::string& job_id, const ProgressUpdate& update,
                                       std::optional<JobRecord>& result) {
  Job* job = findJob(job_id);
  if (!job && cluster) {
    auto stored = store.findJob(job_id);
    if (!stored) return ReportOutcome::kNotFound;
    if (isTerminal(stored->status)) return ReportOutcome::kTerminal;
    if (stored->status == JobStatus::kQueued) return ReportOutcome::kNotRunning;
    result = std::move(stored);
    return ReportOutcome::kElsewhere;
  }
  if (!job) return store.findJob(job_id) ? ReportOutcome::kTerminal : ReportOutcome::kNotFound;
  const JobStatus status = job->sm.record().status;
  if (isTerminal(status)) return ReportOutcome::kTerminal;
  if (status == JobStatus::kQueued) return ReportOutcome::kNotRunning;
  ++metrics.progress_lines_received;
  job->last_progress = Clock::now();
  if (job->sm.report(update, nowMicros())) {
    markDirty(*job);
    scheduleFlush();  // coalesced like pipe progress; the caller gets the record from memory
  }
  result = job->sm.record();
  return ReportOutcome::kApplied;
}

CancelOutcome Supervisor::Impl::cancelBatch(const std::string& batch_id) {
  if (cluster) {
    // Its jobs may run on any node: each is cancelled here or through the store.
    const std::vector<JobRecord> rows = store.jobsOfBatch(batch_id);
    if (rows.empty()) return CancelOutcome::kNotFound;
    CancelOutcome outcome = CancelOutcome::kAlreadyTerminal;
    for (const JobRecord& row : rows) {
      if (isTerminal(row.status)) continue;
      const CancelOutcome one = cancelJob(row.job_id);
      if (one == CancelOutcome::kCancelling) outcome = one;
      if (one == CancelOutcome::kCancelled && outcome == CancelOutcome::kAlreadyTerminal)
        outcome = one;
    }
    return outcome;
  }
  const auto it = batches.find(batch_id);
  if (it == batches.end()) {
    return store.findBatch(batch_id) ? CancelOutcome::kAlreadyTerminal : CancelOutcome::kNotFound;
  }
  CancelOutcome outcome = CancelOutcome::kAlreadyTerminal;
  for (const std::string& id : std::vector<std::string>(it->second.job_ids)) {
    Job* job = findJob(id);
    if (!job) continue;
    const CancelOutcome one = cancel(*job);
    if (one == CancelOutcome::kCancelling) outcome = one;
    if (one == CancelOutcome::kCancelled && outcome == CancelOutcome::kAlreadyTerminal)
      outcome = one;
  }
  return outcome;
}

void Supervisor::Impl::recordEnd(const Job& job) {
  const JobRecord& r = job.sm.record();
  if (!isTerminal(r.status)) return;
  metrics.jobEnded(r.collector, std::string(toString(r.status)),
                   durationSeconds(r.started_at, r.ended_at).value_or(0));
}

void Supervisor::Impl::updateGauges() {
  std::int64_t running = 0, queued = 0;
  for (const auto& [id, job] : jobs) {
    if (job->sm.record().status == JobStatus::kRunning) ++running;
    if (job->sm.record().status == JobStatus::kQueued) ++queued;
  }
  metrics.jobs_running = running;
  metrics.jobs_queued = queued;
}

void Supervisor::Impl::markDirty(Job& job) {
  if (job.dirty) return;  // the hot path: every progress line ends here
  job.dirty = true;
  dirty_jobs.insert(job.sm.record().job_id);
  dirty_batches.insert(job.sm.record().batch_id);
}

void Supervisor::Impl::scheduleFlush(Clock::duration delay) {
  if (flush_armed) return;
  flush_armed = true;
  flush_timer.expires_after(delay);
  flush_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // nothing cancels this timer; if anything did, the flag stays its own
    flush_armed = false;
    flush();
  });
}

void Supervisor::Impl::scheduleFlush() { scheduleFlush(options.flush_interval); }

bool Supervisor::Impl::flush() {
  if (dirty_jobs.empty() && dirty_batches.empty()) return true;
  std::vector<JobRecord> job_rows;
  std::vector<BatchRecord> batch_rows;
  std::vector<std::pair<std::string, AttemptRecord>> attempt_rows;
  for (const std::string& id : dirty_jobs) {
    if (Job* job = findJob(id)) {
      job_rows.push_back(job->sm.record());
      for (const AttemptRecord& a : job->unsaved_attempts) attempt_rows.emplace_back(id, a);
    }
  }
  for (const std::string& id : dirty_batches) {
    const auto it = batches.find(id);
    // A node knows only its own jobs of a batch: the store summarises batches in the cluster.
    if (it == batches.end() || cluster) continue;
    rollUp(it->second);
    batch_rows.push_back(it->second.record);
  }
  const std::vector<WebhookEvent> events = newEvents(job_rows, batch_rows);
  const auto outbox =
      webhookOutboxRows(events, config()->webhooks, options.webhook_payload, nowMicros());
  try {
    store.save(job_rows, batch_rows, attempt_rows, outbox);
  } catch (const StoreError& e) {
    log.error("cannot write job state, retrying: %s", std::string(e.what()));
    ++metrics.store_write_failures;
    setStoreFault(e.what());
    scheduleFlush(kStoreRetryDelay);  // a flush already armed retries sooner; either will do
    return false;
  }
  ++metrics.store_writes;
  metrics.webhook_events_queued += outbox.size();
  setStoreFault("");
  // Only now, with the write in the store: a failed write produces the same events again when
  // it is retried, and the outbox ignores a delivery it already holds.
  for (const WebhookEvent& event : events) {
    if (event.type >= WebhookEventType::kJobCompleted) {
      if (Job* job = findJob(event.jobs.front().job_id)) job->event_written = true;
    } else if (const auto it = batches.find(event.batch.batch_id); it != batches.end()) {
      it->second.event_written = true;
    }
  }
  saved(std::move(job_rows), std::move(batch_rows));
  for (const std::string& id : dirty_jobs) {
    if (Job* job = findJob(id)) {
      job->unsaved_attempts.clear();
      job->dirty = false;
    }
  }
  dirty_jobs.clear();
  if (cluster) {
    retireSaved();
  } else {
    for (const std::string& id : dirty_batches) retireIfDone(id);
  }
  dirty_batches.clear();
  updateGauges();
  return true;
}

std::vector<WebhookEvent> Supervisor::Impl::newEvents(const std::vector<JobRecord>& job_rows,
                                                      const std::vector<BatchRecord>& batch_rows) {
  std::vector<WebhookEvent> events;
  for (const JobRecord& row : job_rows) {
    const Job* job = findJob(row.job_id);
    const auto batch = batches.find(row.batch_id);
    if (!job || job->event_written || batch == batches.end()) continue;
    if (auto event = jobEvent(row, batch->second.record)) events.push_back(std::move(*event));
  }
  for (const BatchRecord& row : batch_rows) {
    const auto batch = batches.find(row.batch_id);
    if (batch == batches.end() || batch->second.event_written) continue;
    std::vector<JobRecord> of_batch;
    for (const std::string& id : batch->second.job_ids) {
      if (const Job* job = findJob(id)) of_batch.push_back(job->sm.record());
    }
    if (auto event = batchEvent(row, std::move(of_batch))) events.push_back(std::move(*event));
  }
  return events;
}

void Supervisor::Impl::saved(std::vector<JobRecord> job_rows,
                             std::vector<BatchRecord> batch_rows) {
  // In a cluster every change, this node's too, is published from the store (clusterChanged).
  if (options.on_saved.empty() || cluster) return;
  const StateChange change{std::move(job_rows), std::move(batch_rows)};
  for (const auto& observer : options.on_saved) observer(change);
}

void Supervisor::Impl::rollUp(Batch& batch) {
  std::vector<const JobRecord*> views;
  for (const std::string& id : batch.job_ids) views.push_back(&jobs.at(id)->sm.record());
  rollUpBatch(batch.record, views);
}

void Supervisor::Impl::retireIfDone(const std::string& batch_id) {
  const auto it = batches.find(batch_id);
  if (it == batches.end() || !isTerminal(it->second.record.status)) return;
  for (const std::string& id : it->second.job_ids) {
    const auto job = jobs.find(id);
    if (job != jobs.end() && job->second->child) return;  // still reaping
  }
  log.information("batch %s %s", batch_id, std::string(toString(it->second.record.status)));
  for (const std::string& id : it->second.job_ids) jobs.erase(id);
  batches.erase(it);
}

std::vector<CollectorState> Supervisor::Impl::collectorStates() {
  // Alone, the active jobs are this supervisor's; in a cluster, the whole cluster's are in the
  // store.
  std::vector<JobRecord> stored;
  std::vector<const JobRecord*> active;
  if (cluster) {
    stored = store.activeJobs();
    for (const JobRecord& r : stored) active.push_back(&r);
  } else {
    for (const auto& [id, job] : jobs) active.push_back(&job->sm.record());
  }
  std::map<std::string, CollectorState> states;
  for (const auto& [name, c] : collectors) states[name].name = name;
  for (const auto& [name, s] : schedules) {
    if (states.count(name)) states[name].next_scheduled_at = s.next;
  }
  std::map<std::string, Micros> newest;
  for (const JobRecord* r : active) {
    auto it = states.find(r->collector);
    if (it == states.end() || isTerminal(r->status)) continue;
    (r->status == JobStatus::kRunning ? it->second.running : it->second.queued)++;
    if (!newest.count(r->collector) || r->started_at >= newest[r->collector]) {
      newest[r->collector] = r->started_at;
      it->second.active_job_id = r->job_id;
    }
  }
  std::vector<CollectorState> out;
  for (auto& [name, state] : states) out.push_back(std::move(state));
  return out;
}

void Supervisor::Impl::recover() {
  if (cluster) return recoverNode();
  const std::vector<JobRecord> active = store.activeJobs();
  const Micros now = nowMicros();
  for (const JobRecord& left : active) {
    if (batches.count(left.batch_id)) continue;
    const auto batch = store.findBatch(left.batch_id);
    if (!batch) {
      log.error("job %s refers to missing batch %s", left.job_id, left.batch_id);
      continue;
    }
    Batch& b = batches[left.batch_id];
    b.record = *batch;
    b.event_written = isTerminal(batch->status);
    int position = 0;
    for (JobRecord& r : store.jobsOfBatch(left.batch_id)) {
      b.job_ids.push_back(r.job_id);
      const std::string id = r.job_id;
      const auto collector = collectorConfig(r.collector);
      jobs[id] = std::make_unique<Job>(std::move(r), collector, position++);
      Job& j = *jobs[id];
      if (j.sm.record().status == JobStatus::kRunning) failLeftover(j, now);
      if (j.sm.record().status == JobStatus::kQueued) {
        log.information("job %s was queued when the previous instance stopped", id);
        armRetry(j);
      }
    }
    dirty_batches.insert(left.batch_id);
  }
  flush();
  asio::post(io, [this] { dispatch(); });
}

void Supervisor::Impl::failLeftover(Job& j, Micros now) {
  const JobRecord& r = j.sm.record();
  const std::string id = r.job_id;
  // By environment, not by process group: the pid is missing when the crash came between the
  // write before the spawn and the one after it, and a child may have left the group.
  const int killed = killProcessesOfJob(id, r.batch_id);
  if (killed > 0) log.warning("killed %d leftover processes of job %s", killed, id);
  j.sm.setRetryDelay(retryDelay(j));
  j.sm.fail("supervisor restarted while the job was running", now);
  JobLog job_log(logPath(id), config()->log_max_bytes_per_job);
  std::string ignored;
  if (job_log.open(ignored)) {
    job_log.write("[collectord] supervisor restarted while the job was running; job " +
                  std::string(toString(r.status)) + "\n");
  }
  for (AttemptRecord& a : j.sm.takeNewAttempts()) j.unsaved_attempts.push_back(std::move(a));
  recordEnd(j);
  log.warning("job %s was running when the previous instance stopped: %s", id,
              std::string(toString(r.status)));
  markDirty(j);
}

void Supervisor::Impl::beginStop(std::function<void()> done) {
  stopping = true;
  for (auto& [name, s] : schedules) s.timer->cancel();
  on_drained = std::move(done);
  int running = 0;
  for (auto& [id, job] : jobs) {
    if (!job->child) continue;
    ++running;
    stopRun(*job, "supervisor shutting down", true);
  }
  if (running > 0) {
    log.information("stopping: sent SIGTERM to %d running jobs; SIGKILL after %s", running,
                    formatDurationSpec(config()->shutdown_grace));
  }
  checkDrained();
}

void Supervisor::Impl::checkDrained() {
  for (const auto& [id, job] : jobs) {
    if (job->child) return;
  }
  // The last write must land: the io loop stops next, and with it every retry timer.
  for (int attempt = 0; !flush() && attempt < 25; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!dirty_jobs.empty()) {
    log.critical("stopping with %z job states unwritten; the next start resolves them",
                 dirty_jobs.size());
  }
  if (cluster) {
    poll_timer.cancel();
    stopHeartbeats();  // a later heartbeat would show the node alive again
    try {
      cluster->leaveCluster();
    } catch (const StoreError& e) {
      log.warning("cannot mark this node stopped: %s", std::string(e.what()));
    }
  }
  if (auto done = std::move(on_drained)) {
    on_drained = nullptr;
    done();
  }
}

Supervisor::Supervisor(Config config, JobStore& store, SupervisorOptions options, Metrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, options, metrics)) {}

Supervisor::~Supervisor() { stop(); }

bool Supervisor::accepting() const { return impl_->accepting; }

std::string Supervisor::storeFault() const {
  std::lock_guard lock(impl_->fault_mutex);
  return impl_->store_fault;
}

void Supervisor::Impl::setStoreFault(std::string fault) {
  std::lock_guard lock(fault_mutex);
  if (fault.empty() && !store_fault.empty()) {
    log.information("the job store takes writes again; job state caught up");
  }
  store_fault = std::move(fault);
}

std::shared_ptr<const Config> Supervisor::config() const { return impl_->config(); }

void Supervisor::start() {
  std::error_code ec;
  std::filesystem::create_directories(impl_->config()->logs_directory, ec);
  if (impl_->cluster) impl_->joinCluster();
  impl_->recover();  // before the thread exists: nothing else touches the state yet
  impl_->sweepLogs();
  impl_->armSchedules();
  impl_->work.emplace(impl_->io.get_executor());
  if (impl_->cluster) {
    asio::post(impl_->io, [this] { impl_->pollTick(); });
    impl_->heartbeats = std::thread([this] { impl_->heartbeatLoop(); });
    impl_->listener = std::thread([this] {
      impl_->cluster->listen(
          [this](const std::vector<std::string>& ids, bool work) {
            impl_->clusterChanged(ids, work);
          },
          impl_->listener_stop);
    });
  }
  impl_->thread = std::thread([this] {
    for (;;) {
      try {
        impl_->io.run();
        return;
      } catch (const std::exception& e) {
        // A broken invariant in one handler must not end supervision of every other job.
        impl_->log.critical("supervision thread: %s", std::string(e.what()));
      }
    }
  });
  impl_->accepting = true;
}

void Supervisor::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->accepting = false;
  std::promise<void> drained;
  auto done = drained.get_future();
  asio::post(impl_->io,
             [this, &drained] { impl_->beginStop([&drained] { drained.set_value(); }); });
  // Children get shutdown_grace to exit, then SIGKILL, which cannot be ignored.
  if (done.wait_for(impl_->config()->shutdown_grace + std::chrono::seconds(10)) !=
      std::future_status::ready) {
    impl_->log.error("stopping: jobs did not end after SIGKILL; giving up on them");
  }
  impl_->listener_stop = true;
  if (impl_->listener.joinable()) impl_->listener.join();
  impl_->stopHeartbeats();
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->on_drained = nullptr;
}

TriggerResult Supervisor::trigger(const std::vector<std::string>& collectors, Priority priority) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  return onThread<TriggerResult>(
      impl_->io, [this, collectors, priority] { return impl_->createBatch(collectors, priority); });
}

CancelOutcome Supervisor::cancelJob(const std::string& job_id) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  return onThread<CancelOutcome>(impl_->io, [this, job_id] { return impl_->cancelJob(job_id); });
}

ReportOutcome Supervisor::report(const std::string& job_id, const ProgressUpdate& update,
                                 std::optional<JobRecord>& job) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  auto result = onThread<std::pair<ReportOutcome, std::optional<JobRecord>>>(
      impl_->io, [this, job_id, update] {
        std::optional<JobRecord> record;
        const ReportOutcome outcome = impl_->report(job_id, update, record);
        return std::make_pair(outcome, std::move(record));
      });
  job = std::move(result.second);
  return result.first;
}

CancelOutcome Supervisor::cancelBatch(const std::string& batch_id) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  return onThread<CancelOutcome>(impl_->io,
                                 [this, batch_id] { return impl_->cancelBatch(batch_id); });
}

void Supervisor::reload(Config config) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  auto shared = std::make_shared<Config>(std::move(config));
  onThread<bool>(impl_->io, [this, shared] {
    impl_->applyConfig(std::move(*shared));
    impl_->armSchedules();
    impl_->dispatch();
    return true;
  });
}

std::vector<CollectorState> Supervisor::collectorStates() {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  return onThread<std::vector<CollectorState>>(impl_->io,
                                               [this] { return impl_->collectorStates(); });
}

}  // namespace collectord
