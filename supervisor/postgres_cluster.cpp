// The PostgreSQL store's cluster mode (ClusterStore): several collectord nodes on one database.
// Every write of a node in cluster mode goes through libpq on one connection of its own, in
// transactions whose row locks are the coordination: a queued job is claimed FOR UPDATE SKIP
// LOCKED under a cluster-wide advisory lock (so that limits counted over the cluster hold), a
// batch row is locked while it is summarised from all its jobs, and NOTIFY tells the other
// nodes what changed when the transaction commits.

#include <Poco/Logger.h>
#include <Poco/StringTokenizer.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "job_state.h"
#include "postgres_cluster.h"
#include "postgres_statements.h"
#include "postgres_support.h"
#include "store_sql.h"

namespace collectord {

using postgres::guarded;
using postgres::PgConnection;
using postgres::PgResult;
using Param = std::optional<std::string>;

namespace {

// The database's clock in microseconds since the epoch: leases and heartbeats are judged by one
// clock, whatever the nodes' clocks say.
#define DB_NOW "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT"

// Serialises claims over the cluster, so that the running counts a claim reads stay true until
// it commits ("claim" in ASCII).
const std::string kClaimLock = "SELECT pg_advisory_xact_lock(435711651181)";
// One collectord per node id: a session lock on a key derived from the id.
const std::string kTakeNodeId =
    "SELECT pg_try_advisory_lock(hashtext('collectord node ' || $1)::BIGINT + 4294967296)";
const std::string kRegisterNode =
    "INSERT INTO nodes (node_id, tags, state, started_at, heartbeat_at) "
    "VALUES ($1, $2, 'alive', " DB_NOW ", " DB_NOW ") ON CONFLICT (node_id) DO UPDATE SET "
    "tags = excluded.tags, state = 'alive', started_at = excluded.started_at, "
    "heartbeat_at = excluded.heartbeat_at";
const std::string kBeat =
    "UPDATE nodes SET heartbeat_at = " DB_NOW ", state = 'alive' WHERE node_id = $1";
const std::string kRenewLeases =
    "UPDATE job_runs SET lease_expires_at = " DB_NOW " + $2::BIGINT WHERE owner = $1 "
    "AND status = 'running' AND job_id = ANY($3::TEXT[]) RETURNING job_id";
const std::string kCancelRequests =
    "SELECT job_id FROM job_runs WHERE owner = $1 AND status = 'running' AND cancel_requested";
const std::string kLeave = "UPDATE nodes SET state = 'stopped' WHERE node_id = $1";
const std::string kRunningByCollector =
    "SELECT collector, COUNT(*) FROM job_runs WHERE status = 'running' "
    "AND collector = ANY($1::TEXT[]) GROUP BY collector";
const std::string kCandidates =
    std::string("SELECT ") + store_sql::kJobColumns +
    " FROM job_runs j WHERE status = 'queued' AND collector = ANY($1::TEXT[]) "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= $2::BIGINT) ORDER BY "
    "(SELECT CASE b.priority WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END "
    "FROM job_batches b WHERE b.batch_id = j.batch_id), started_at, batch_id, position "
    "LIMIT $3::BIGINT FOR UPDATE SKIP LOCKED";
const std::string kTakeJobs =
    "UPDATE job_runs SET status = 'running', owner = $1, pid = NULL, next_attempt_at = NULL, "
    "updated_at = $2, lease_expires_at = " DB_NOW " + $3::BIGINT, cancel_requested = FALSE "
    "WHERE job_id = ANY($4::TEXT[])";
const std::string kExpired =
    std::string("SELECT ") + store_sql::kJobColumns +
    " FROM job_runs WHERE status = 'running' AND lease_expires_at < " DB_NOW
    " ORDER BY started_at LIMIT 500 FOR UPDATE SKIP LOCKED";
const std::string kLockJob =
    std::string("SELECT ") + store_sql::kJobColumns + " FROM job_runs WHERE job_id = $1 FOR UPDATE";
const std::string kFlagCancel = "UPDATE job_runs SET cancel_requested = TRUE WHERE job_id = $1";
// kUpdateJob, applied only while this node runs the job ($14): a node that was taken for lost
// while it still ran must not write over what the cluster decided meanwhile.
const std::string kUpdateOwnJob =
    postgres::kUpdateJob + " AND owner = $14 AND status IN ('queued', 'running')";
const std::string kLockBatch = std::string("SELECT ") + store_sql::kBatchColumns +
                               " FROM job_batches WHERE batch_id = $1 FOR UPDATE";
// A batch's BatchTally, counted by the database: one row back, whatever the batch's size.
const std::string kTally =
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'queued'), "
    "COUNT(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), "
    "COUNT(*) FILTER (WHERE status = 'completed'), COUNT(*) FILTER (WHERE status = 'failed'), "
    "COUNT(*) FILTER (WHERE status = 'cancelled'), "
    "COALESCE(SUM(CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN 100 "
    "ELSE LEAST(GREATEST(COALESCE(progress_percent, 0), 0), 100) END), 0), "
    "COALESCE(MAX(updated_at), 0), "
    "COALESCE(MAX(COALESCE(ended_at, updated_at)) FILTER (WHERE status IN "
    "('completed', 'failed', 'cancelled')), 0), "
    "COALESCE(string_agg(job_name || ': ' || COALESCE(error, 'failed'), '; ' ORDER BY position) "
    "FILTER (WHERE status = 'failed'), '') "
    "FROM job_runs WHERE batch_id = $1";
const std::string kUpdateBatch =
    "UPDATE job_batches SET status = $1, progress_percent = $2, message = $3, error = $4, "
    "updated_at = $5, ended_at = $6, estimated_completion = $7, duration_seconds = $8 "
    "WHERE batch_id = $9";
const std::string kNotifyJobs =
    "SELECT pg_notify('collectord_jobs', id) FROM unnest($1::TEXT[]) AS id";
const std::string kNotifyWork = "SELECT pg_notify('collectord_work', '')";
const std::string kNodes = "SELECT node_id, tags, state, started_at, heartbeat_at, " DB_NOW
                           " FROM nodes ORDER BY node_id";
const std::string kRunningJobs =
    "SELECT owner, job_id FROM job_runs WHERE status = 'running' AND owner IS NOT NULL "
    "ORDER BY started_at, job_id";

const std::string kClaimSlot =
    "INSERT INTO schedules (collector, last_fired_at) VALUES ($1, $2::BIGINT) "
    "ON CONFLICT (collector) DO UPDATE SET last_fired_at = excluded.last_fired_at "
    "WHERE schedules.last_fired_at <= $3::BIGINT RETURNING collector";

Param text(std::int64_t n) { return std::to_string(n); }
Param text(std::optional<std::int64_t> n) { return n ? text(*n) : Param(); }
Param text(std::optional<int> n) { return n ? text(std::int64_t{*n}) : Param(); }
Param text(std::optional<double> d) {
  if (!d) return std::nullopt;
  char out[32];
  std::snprintf(out, sizeof out, "%.3f", *d);
  return std::string(out);
}
Param text(const std::optional<std::string>& s) {
  return s ? Param(postgres::storable(*s)) : Param();
}

// A PostgreSQL array literal of these words ({"a","b"}); collector names and job IDs hold no
// quote or backslash, but they are escaped all the same.
std::string arrayOf(const std::vector<std::string>& words) {
  std::string out = "{";
  for (const std::string& w : words) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char ch : w) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ",") + w;
  return out;
}

std::vector<Param> updateParams(const JobRecord& j, const Param& owner) {
  return {std::string(toString(j.status)), text(j.progress_percent), text(j.message),
          text(j.error), text(j.updated_at), text(j.ended_at),
          text(durationSeconds(j.started_at, j.ended_at)), text(std::int64_t{j.attempt}),
          text(std::int64_t{j.max_attempts}), text(j.pid), text(j.next_attempt_at), owner,
          j.job_id};
}

void insertAttempt(PgConnection& c, const std::string& job_id, const AttemptRecord& a) {
  c.run(postgres::kInsertAttempt, {job_id, text(std::int64_t{a.attempt}), text(a.started_at),
                                   text(a.ended_at), postgres::storable(a.error)});
}

void insertOutbox(PgConnection& c, const std::vector<WebhookOutboxRow>& rows) {
  for (const WebhookOutboxRow& row : rows) {
    c.run(postgres::kInsertOutboxRow, {row.event_id, row.endpoint, row.event_type, row.body,
                                       text(row.created_at), text(row.created_at)});
  }
}

void notifyJobs(PgConnection& c, const std::vector<std::string>& job_ids, bool work) {
  if (!job_ids.empty()) c.run(kNotifyJobs, {arrayOf(job_ids)});
  if (work) c.run(kNotifyWork);
}

std::vector<std::string> batchIdsOf(const std::vector<JobRecord>& jobs) {
  std::set<std::string> ids;
  for (const JobRecord& j : jobs) ids.insert(j.batch_id);
  return {ids.begin(), ids.end()};  // sorted: batch rows are locked in one order everywhere
}

}  // namespace

void PostgresJobStore::clusterTransaction(const char* what,
                                          const std::function<void(PgConnection&)>& fn,
                                          bool for_heartbeat) {
  guarded(*settings_, what, [&] {
    std::lock_guard lock(for_heartbeat ? cluster_->heartbeat_mutex : cluster_->mutex);
    std::unique_ptr<PgConnection>& c =
        for_heartbeat ? cluster_->heartbeat_connection : cluster_->connection;
    if (!c || !c->usable()) c = std::make_unique<PgConnection>(*settings_);
    c->exec("BEGIN");
    try {
      fn(*c);
      c->exec("COMMIT");
    } catch (...) {
      try {
        if (c->broken()) {
          c.reset();
        } else {
          c->exec("ROLLBACK");
        }
      } catch (const std::exception& e) {
        Poco::Logger::get("collectord.store").debug("rollback: %s", std::string(e.what()));
        c.reset();
      }
      throw;
    }
  });
}

void PostgresJobStore::joinCluster(const std::string& node_id, const std::vector<std::string>& tags,
                                   std::chrono::milliseconds lease, ClusterHooks hooks) {
  auto cluster = std::make_unique<Cluster>();
  cluster->node_id = node_id;
  cluster->tags = tags;
  cluster->lease = lease;
  cluster->hooks = std::move(hooks);
  bool taken = false;
  guarded(*settings_, "cannot join the cluster", [&] {
    cluster->identity = std::make_unique<PgConnection>(*settings_);
    taken = cluster->identity->run(kTakeNodeId, {node_id}).text(0, 0) == "t";
  });
  if (!taken) {
    throw StoreError("node id '" + node_id + "' is in use by another running collectord on " +
                     settings_->where() + "; give each node its own [node] id");
  }
  cluster_ = std::move(cluster);
  owner_ = node_id;
  clusterTransaction("cannot register the node", [&](PgConnection& c) {
    c.run(kRegisterNode, {node_id, joined(tags)});
  });
}

std::vector<std::string> PostgresJobStore::heartbeat(const std::vector<std::string>& running) {
  std::vector<std::string> held;
  clusterTransaction("cannot renew the node's heartbeat", [&](PgConnection& c) {
    const std::string& me = cluster_->node_id;
    c.run(kBeat, {me});
    held.clear();
    if (running.empty()) return;
    const PgResult q = c.run(kRenewLeases, {me, text(std::int64_t{cluster_->lease.count() * 1000}),
                                            arrayOf(running)});
    for (int r = 0; r < q.rows(); ++r) held.push_back(q.text(r, 0));
  }, true);
  return held;
}

std::vector<std::string> PostgresJobStore::cancelRequests() {
  std::vector<std::string> ids;
  clusterTransaction("cannot read cancel requests", [&](PgConnection& c) {
    const PgResult q = c.run(kCancelRequests, {cluster_->node_id});
    ids.clear();
    for (int r = 0; r < q.rows(); ++r) ids.push_back(q.text(r, 0));
  });
  return ids;
}

void PostgresJobStore::leaveCluster() {
  clusterTransaction("cannot mark the node stopped",
                     [&](PgConnection& c) { c.run(kLeave, {cluster_->node_id}); });
}

std::vector<JobRecord> PostgresJobStore::claim(const ClaimRequest& request, Micros now) {
  std::vector<JobRecord> claimed;
  if (request.slots <= 0 || request.collectors.empty()) return claimed;
  clusterTransaction("cannot claim queued jobs", [&](PgConnection& c) {
    claimed.clear();
    std::vector<std::string> names;
    std::map<std::string, int> room;  // per collector, over the cluster
    for (const auto& [name, limit] : request.collectors) {
      names.push_back(name);
      room[name] = limit;
    }
    c.run(kClaimLock);
    const PgResult running = c.run(kRunningByCollector, {arrayOf(names)});
    for (int r = 0; r < running.rows(); ++r) {
      room[running.text(r, 0)] -= static_cast<int>(running.int64(r, 1));
    }
    std::vector<std::string> with_room;
    for (const auto& [name, left] : room) {
      if (left > 0) with_room.push_back(name);
    }
    if (with_room.empty()) return;
    // Only the collectors with room, and a few rows per slot: a claim reads and locks what it
    // may take, not the whole queue (a long queue would make every claim cost its length).
    const std::int64_t window = std::int64_t{request.slots} * 8 + 16;
    const PgResult candidates = c.run(kCandidates, {arrayOf(with_room), text(now), text(window)});
    std::vector<std::string> ids;
    for (int r = 0; r < candidates.rows() && static_cast<int>(claimed.size()) < request.slots; ++r) {
      JobRecord job = postgres::jobFromRow(candidates, r);
      int& left = room[job.collector];
      if (left <= 0) continue;
      --left;
      ids.push_back(job.job_id);
      claimed.push_back(std::move(job));
    }
    if (claimed.empty()) return;
    c.run(kTakeJobs, {cluster_->node_id, text(now),
                      text(std::int64_t{cluster_->lease.count() * 1000}), arrayOf(ids)});
    std::vector<JobRecord> taken = claimed;
    for (JobRecord& j : taken) j.status = JobStatus::kRunning;
    rollUpBatches(c, batchIdsOf(taken), {});
    notifyJobs(c, ids, false);
  });
  return claimed;
}

void PostgresJobStore::rollUpBatches(PgConnection& c, const std::vector<std::string>& batch_ids,
                                     const std::vector<JobRecord>& ended) {
  for (const std::string& batch_id : batch_ids) {
    const PgResult locked = c.run(kLockBatch, {batch_id});
    if (locked.rows() == 0) continue;
    BatchRecord batch = postgres::batchFromRow(locked, 0);
    const JobStatus before = batch.status;
    const PgResult q = c.run(kTally, {batch_id});
    BatchTally tally;
    tally.total = static_cast<int>(q.int64(0, 0));
    tally.queued = static_cast<int>(q.int64(0, 1));
    tally.terminal = static_cast<int>(q.int64(0, 2));
    tally.completed = static_cast<int>(q.int64(0, 3));
    tally.failed = static_cast<int>(q.int64(0, 4));
    tally.cancelled = static_cast<int>(q.int64(0, 5));
    tally.progress_sum = static_cast<int>(q.int64(0, 6));
    tally.updated_at = q.int64(0, 7);
    tally.ended_at = q.int64(0, 8);
    tally.errors = q.text(0, 9);
    rollUpBatch(batch, tally);
    c.run(kUpdateBatch,
          {std::string(toString(batch.status)), text(std::int64_t{batch.progress_percent}),
           text(batch.message), text(batch.error), text(batch.updated_at), text(batch.ended_at),
           text(batch.estimated_completion), text(durationSeconds(batch.started_at, batch.ended_at)),
           batch_id});
    const ClusterHooks& hooks = cluster_->hooks;
    for (const JobRecord& j : ended) {
      if (j.batch_id == batch_id && hooks.job_events) insertOutbox(c, hooks.job_events(j, batch));
    }
    if (!isTerminal(before) && isTerminal(batch.status) && hooks.batch_events) {
      std::vector<JobRecord> jobs;  // read only for the event, once per batch
      const PgResult rows = c.run(store_sql::numberedReadStatements().jobs_of_batch, {batch_id});
      for (int r = 0; r < rows.rows(); ++r) jobs.push_back(postgres::jobFromRow(rows, r));
      insertOutbox(c, hooks.batch_events(batch, jobs));
    }
  }
}

void PostgresJobStore::saveAsNode(const std::vector<JobRecord>& jobs,
                                  const std::vector<std::pair<std::string, AttemptRecord>>& attempts,
                                  const std::vector<WebhookOutboxRow>& outbox) {
  clusterTransaction("cannot save job state", [&](PgConnection& c) {
    const std::string& me = cluster_->node_id;
    std::vector<std::string> ids;
    bool work = false;
    for (const JobRecord& j : jobs) {
      // A job queued again for a retry is any node's to claim.
      const bool released = j.status == JobStatus::kQueued;
      auto params = updateParams(j, released ? Param() : Param(me));
      params.push_back(me);
      c.run(kUpdateOwnJob, params);
      ids.push_back(j.job_id);
      work = work || released || isTerminal(j.status);  // a slot or a retry for someone
    }
    for (const auto& [job_id, attempt] : attempts) insertAttempt(c, job_id, attempt);
    insertOutbox(c, outbox);
    rollUpBatches(c, batchIdsOf(jobs), {});
    notifyJobs(c, ids, work);
  });
}

int PostgresJobStore::expireLeases(Micros now) {
  int expired = 0;
  clusterTransaction("cannot resolve expired leases", [&](PgConnection& c) {
    const PgResult q = c.run(kExpired);
    std::vector<JobRecord> resolved, ended;
    std::vector<std::string> ids;
    for (int r = 0; r < q.rows(); ++r) {
      const JobRecord job = postgres::jobFromRow(q, r);
      const std::string node = job.node_id.value_or("unknown");
      std::vector<AttemptRecord> attempts;
      JobRecord next = cluster_->hooks.resolve_lost(job, node, attempts);
      next.updated_at = std::max(next.updated_at, now);
      const bool released = next.status == JobStatus::kQueued;
      c.run(postgres::kUpdateJob, updateParams(next, released ? Param() : job.node_id));
      for (const AttemptRecord& a : attempts) insertAttempt(c, job.job_id, a);
      if (isTerminal(next.status)) ended.push_back(next);
      ids.push_back(next.job_id);
      resolved.push_back(std::move(next));
    }
    expired = static_cast<int>(resolved.size());
    if (resolved.empty()) return;
    rollUpBatches(c, batchIdsOf(resolved), ended);
    notifyJobs(c, ids, true);
  });
  return expired;
}

RemoteCancel PostgresJobStore::cancelElsewhere(const std::string& job_id, const std::string& reason,
                                               Micros now) {
  RemoteCancel outcome = RemoteCancel::kNotFound;
  clusterTransaction("cannot cancel the job", [&](PgConnection& c) {
    const PgResult q = c.run(kLockJob, {job_id});
    if (q.rows() == 0) {
      outcome = RemoteCancel::kNotFound;
      return;
    }
    const JobRecord job = postgres::jobFromRow(q, 0);
    if (isTerminal(job.status)) {
      outcome = RemoteCancel::kAlreadyTerminal;
    } else if (job.status == JobStatus::kRunning) {
      c.run(kFlagCancel, {job_id});
      notifyJobs(c, {}, true);
      outcome = RemoteCancel::kFlagged;
    } else {
      JobStateMachine sm(job);
      sm.requestCancel(reason, now);
      c.run(postgres::kUpdateJob, updateParams(sm.record(), Param()));
      rollUpBatches(c, {job.batch_id}, {sm.record()});
      notifyJobs(c, {job_id}, false);
      outcome = RemoteCancel::kCancelled;
    }
  });
  return outcome;
}

std::vector<NodeRecord> PostgresJobStore::nodes() {
  std::vector<NodeRecord> out;
  const auto lease = cluster_ ? cluster_->lease : std::chrono::milliseconds(15'000);
  withReader("cannot read the nodes", [&](PgConnection& c) {
    out.clear();
    const PgResult q = c.run(kNodes);
    std::map<std::string, std::size_t> index;
    for (int r = 0; r < q.rows(); ++r) {
      NodeRecord n;
      n.node_id = q.text(r, 0);
      const Poco::StringTokenizer tags(q.text(r, 1), ",", Poco::StringTokenizer::TOK_IGNORE_EMPTY);
      n.tags.assign(tags.begin(), tags.end());
      n.state = q.text(r, 2);
      n.started_at = q.int64(r, 3);
      n.heartbeat_at = q.int64(r, 4);
      if (n.state == "alive" && q.int64(r, 5) - n.heartbeat_at > lease.count() * 1000) {
        n.state = "lost";
      }
      index[n.node_id] = out.size();
      out.push_back(std::move(n));
    }
    const PgResult running = c.run(kRunningJobs);
    for (int r = 0; r < running.rows(); ++r) {
      const auto it = index.find(running.text(r, 0));
      if (it != index.end()) out[it->second].running_jobs.push_back(running.text(r, 1));
    }
  });
  return out;
}

bool PostgresJobStore::claimScheduledRun(const std::string& collector, Micros at,
                                         Micros not_since) {
  bool mine = false;
  clusterTransaction("cannot claim the scheduled run", [&](PgConnection& c) {
    mine = c.run(kClaimSlot, {collector, text(at), text(not_since)}).rows() == 1;
  });
  return mine;
}

void PostgresJobStore::listen(
    const std::function<void(const std::vector<std::string>& job_ids, bool work)>& changed,
    const std::atomic<bool>& stop) {
  Poco::Logger& log = Poco::Logger::get("collectord.cluster");
  bool was_down = false;
  while (!stop) {
    try {
      PgConnection c(*settings_);
      c.exec("LISTEN collectord_jobs");
      c.exec("LISTEN collectord_work");
      if (was_down) {
        log.information("listening to the cluster's changes again");
        changed({}, true);
      }
      was_down = false;
      while (!stop) {
        std::set<std::string> ids;
        bool work = false;
        for (const auto& n : c.notifications(std::chrono::milliseconds(200))) {
          if (n.channel == "collectord_work") {
            work = true;
          } else {
            ids.insert(n.payload);
          }
        }
        if (!ids.empty() || work) changed({ids.begin(), ids.end()}, work);
      }
    } catch (const std::exception& e) {
      if (!was_down) {
        log.warning("cannot listen to the cluster's changes (PostgreSQL %s), retrying: %s",
                    settings_->where(), settings_->scrub(e.what()));
      }
      was_down = true;
      for (int i = 0; i < 5 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

}  // namespace collectord
