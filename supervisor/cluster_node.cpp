// The supervisor as one node of a cluster (docs/cluster.md): it claims queued jobs from the
// shared store instead of running what it was handed, renews its heartbeat and the leases of
// its runs, resolves the runs of nodes that went silent, and stops runs that another node was
// asked to cancel. What every node writes reaches the event streams through the store's
// notifications (clusterChanged), never from memory: a batch's summary exists only in the
// database once its jobs run on several nodes.

#include <algorithm>
#include <set>

#include "supervisor_impl.h"

namespace collectord {

namespace {

std::vector<WebhookOutboxRow> outboxOf(std::optional<WebhookEvent> event,
                                       const WebhookSettings& settings,
                                       const WebhookPayloadRenderer& render) {
  if (!event || !render) return {};
  return webhookOutboxRows({std::move(*event)}, settings, render, nowMicros());
}

}  // namespace

void Supervisor::Impl::joinCluster() {
  const ClusterSettings& settings = config()->cluster;
  ClusterHooks hooks;
  hooks.job_events = [this](const JobRecord& job, const BatchRecord& batch) {
    return outboxOf(jobEvent(job, batch), config()->webhooks, options.webhook_payload);
  };
  hooks.batch_events = [this](const BatchRecord& batch, const std::vector<JobRecord>& of_batch) {
    return outboxOf(batchEvent(batch, of_batch), config()->webhooks, options.webhook_payload);
  };
  hooks.resolve_lost = [this](const JobRecord& job, const std::string& node,
                              std::vector<AttemptRecord>& attempts) {
    Job lost(job, collectorConfig(job.collector), 0);
    if (lost.collector) lost.sm.setMaxAttempts(lost.collector->retries + 1);
    lost.sm.setRetryDelay(retryDelay(lost));
    lost.sm.fail("node " + node + " lost", nowMicros());
    attempts = lost.sm.takeNewAttempts();
    log.warning("job %s: node %s lost; job %s", job.job_id, node,
                std::string(toString(lost.sm.record().status)));
    return lost.sm.record();
  };
  cluster->joinCluster(settings.node_id, settings.tags, settings.lease_timeout, std::move(hooks));
  log.information("joined the cluster as node %s (lease %s)", settings.node_id,
                  formatDurationSpec(settings.lease_timeout));
}

void Supervisor::Impl::recoverNode() {
  const std::string& me = config()->cluster.node_id;
  const Micros now = nowMicros();
  for (const JobRecord& left : store.activeJobs()) {
    if (left.status != JobStatus::kRunning || left.node_id != me) continue;
    Batch& b = batches[left.batch_id];
    b.record.batch_id = left.batch_id;
    b.job_ids.push_back(left.job_id);
    auto& slot = jobs[left.job_id];
    slot = std::make_unique<Job>(left, collectorConfig(left.collector), 0);
    failLeftover(*slot, now);
  }
  flush();
}

void Supervisor::Impl::claimWork() {
  if (stopping) return;
  const auto cfg = config();
  int running = 0;
  for (const auto& [id, job] : jobs) {
    if (job->child || job->sm.record().status == JobStatus::kRunning) ++running;
  }
  ClaimRequest request;
  request.slots = cfg->max_concurrent - running;
  for (const auto& [name, c] : collectors) {
    if (c->runsOn(cfg->cluster.node_id, cfg->cluster.tags)) {
      request.collectors.emplace_back(name, c->effectiveConcurrency());
    }
  }
  std::vector<JobRecord> claimed;
  try {
    claimed = cluster->claim(request, nowMicros());
  } catch (const StoreError& e) {
    if (!claim_failing) log.warning("cannot claim queued jobs, retrying: %s", std::string(e.what()));
    claim_failing = true;
    return;
  }
  if (claim_failing) log.information("claiming queued jobs again");
  claim_failing = false;
  for (JobRecord& record : claimed) {
    const std::string id = record.job_id;
    auto batch = batches.find(record.batch_id);
    if (batch == batches.end()) {
      batch = batches.emplace(record.batch_id, Batch{}).first;
      batch->second.record.batch_id = record.batch_id;
      try {
        if (auto stored = store.findBatch(record.batch_id)) batch->second.record = *stored;
      } catch (const StoreError& e) {
        log.debug("batch %s: %s", record.batch_id, std::string(e.what()));
      }
    }
    batch->second.job_ids.push_back(id);
    auto collector = collectorConfig(record.collector);  // claimed: it is configured here
    auto& slot = jobs[id];
    slot = std::make_unique<Job>(std::move(record), std::move(collector), 0);
    Job& job = *slot;
    job.sm.setMaxAttempts(job.collector->retries + 1);
    log.information("claimed job %s (%s)", id, job.sm.record().collector);
    spawn(job);
  }
  publishRunning();
  updateGauges();
}

void Supervisor::Impl::lookForWork() {
  wake_pending = false;
  if (stopping) return;
  claimWork();
  try {
    for (const std::string& id : cluster->cancelRequests()) {
      Job* job = findJob(id);
      if (job && job->child && !job->sm.stopRequested()) {
        log.information("job %s: cancel requested through another node", id);
        cancel(*job);
      }
    }
  } catch (const StoreError& e) {
    log.debug("cannot read cancel requests: %s", std::string(e.what()));
  }
}

void Supervisor::Impl::pollTick() {
  lookForWork();
  poll_timer.expires_after(config()->cluster.poll_interval);
  poll_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping) pollTick();
  });
}

void Supervisor::Impl::publishRunning() {
  std::vector<std::string> running;
  for (const auto& [id, job] : jobs) {
    if (job->child) running.push_back(id);
  }
  std::lock_guard lock(heartbeat_mutex);
  running_snapshot = std::move(running);
}

void Supervisor::Impl::heartbeatLoop() {
  const auto interval = config()->cluster.heartbeat_interval;
  std::unique_lock lock(heartbeat_mutex);
  while (!heartbeat_stop) {
    std::vector<std::string> running = running_snapshot;
    lock.unlock();
    bool reached = true;
    std::vector<std::string> renewed;
    try {
      renewed = cluster->heartbeat(running);
    } catch (const StoreError& e) {
      reached = false;
      log.debug("heartbeat: %s", std::string(e.what()));
    }
    asio::post(io, [this, reached, renewed = std::move(renewed), running = std::move(running)] {
      afterHeartbeat(reached, renewed, running);
    });
    lock.lock();
    heartbeat_wake.wait_for(lock, interval, [this] { return heartbeat_stop; });
  }
}

void Supervisor::Impl::stopHeartbeats() {
  {
    std::lock_guard lock(heartbeat_mutex);
    heartbeat_stop = true;
  }
  heartbeat_wake.notify_all();
  if (heartbeats.joinable()) heartbeats.join();
}

void Supervisor::Impl::afterHeartbeat(bool reached, std::vector<std::string> renewed,
                                      std::vector<std::string> running) {
  const ClusterSettings& settings = config()->cluster;
  if (!reached) {
    if (reachable_since) log.warning("cannot renew the node's heartbeat; retrying");
    reachable_since.reset();
    return;
  }
  if (!reachable_since) reachable_since = Clock::now();
  const std::set<std::string> kept(renewed.begin(), renewed.end());
  for (const std::string& id : running) {
    Job* job = findJob(id);
    if (kept.count(id) || !job || !job->child || job->sm.stopRequested()) continue;
    // The cluster took the job for lost (this node was silent longer than the lease) and has
    // resolved it: the run must not go on beside a retry elsewhere.
    log.error("job %s: this node's lease on it ran out and another node resolved it; "
              "stopping the run", id);
    stopRun(*job, "node " + settings.node_id + " lost its lease on the job", false);
  }
  // Only once this node has reached the database for a whole lease: after an outage every live
  // node needs one heartbeat to renew its leases before any of them counts as lost.
  if (stopping || Clock::now() - *reachable_since < settings.lease_timeout) return;
  try {
    if (const int n = cluster->expireLeases(nowMicros())) {
      log.warning("resolved %d jobs of lost nodes", n);
    }
  } catch (const StoreError& e) {
    log.warning("cannot resolve expired leases: %s", std::string(e.what()));
  }
}

void Supervisor::Impl::clusterChanged(const std::vector<std::string>& job_ids, bool new_work) {
  if (new_work && !wake_pending.exchange(true)) asio::post(io, [this] { lookForWork(); });
  if (job_ids.empty() || options.on_saved.empty()) return;
  StateChange change;
  std::set<std::string> batch_ids;
  try {
    for (const std::string& id : job_ids) {
      if (auto job = store.findJob(id)) {
        batch_ids.insert(job->batch_id);
        change.jobs.push_back(std::move(*job));
      }
    }
    for (const std::string& id : batch_ids) {
      if (auto batch = store.findBatch(id)) change.batches.push_back(std::move(*batch));
    }
  } catch (const StoreError& e) {
    log.warning("cannot read what the cluster changed: %s", std::string(e.what()));
    return;
  }
  for (const auto& observer : options.on_saved) observer(change);
}

CancelOutcome Supervisor::Impl::cancelElsewhere(const std::string& job_id) {
  switch (cluster->cancelElsewhere(job_id, "cancelled by request", nowMicros())) {
    case RemoteCancel::kCancelled: return CancelOutcome::kCancelled;
    case RemoteCancel::kFlagged: return CancelOutcome::kCancelling;
    case RemoteCancel::kAlreadyTerminal: return CancelOutcome::kAlreadyTerminal;
    case RemoteCancel::kNotFound: break;
  }
  return CancelOutcome::kNotFound;
}

void Supervisor::Impl::retireSaved() {
  for (auto it = jobs.begin(); it != jobs.end();) {
    const Job& job = *it->second;
    if (job.child || job.dirty || job.sm.record().status == JobStatus::kRunning) {
      ++it;
      continue;
    }
    auto batch = batches.find(job.sm.record().batch_id);
    if (batch != batches.end()) {
      auto& members = batch->second.job_ids;
      members.erase(std::remove(members.begin(), members.end(), it->first), members.end());
      if (members.empty()) batches.erase(batch);
    }
    it = jobs.erase(it);
  }
  publishRunning();
}

}  // namespace collectord
