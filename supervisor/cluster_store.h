#pragma once

// What several collectord nodes sharing one database coordinate through it (docs/cluster.md):
// which node runs a queued job, leases on running jobs, cancel requests between nodes, and the
// batch summaries that jobs on several nodes feed. The PostgreSQL store implements it; its
// transactions and row locks are the whole coordination.

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "job.h"
#include "webhook.h"

namespace collectord {

// A node as GET /api/nodes shows it.
struct NodeRecord {
  std::string node_id;
  std::vector<std::string> tags;
  std::string state;  // "alive", "lost" (no heartbeat within the lease timeout) or "stopped"
  Micros started_at = 0;
  Micros heartbeat_at = 0;
  std::vector<std::string> running_jobs;  // job IDs, oldest first
};

// What a node may claim now: free slots, and the collectors it may run with each one's
// cluster-wide concurrency.
struct ClaimRequest {
  int slots = 0;
  std::vector<std::pair<std::string, int>> collectors;
};

// The webhook deliveries that writes made by the cluster store itself cause: of a job it ended
// (with its batch as it is after that), and of a batch it found terminal (with its jobs).
struct ClusterHooks {
  std::function<std::vector<WebhookOutboxRow>(const JobRecord&, const BatchRecord&)> job_events;
  std::function<std::vector<WebhookOutboxRow>(const BatchRecord&, const std::vector<JobRecord>&)>
      batch_events;
  // How a running job whose node is lost ends: failed, or queued again for a retry; returns the
  // job's new state and the attempt that ended, if it is retried.
  std::function<JobRecord(const JobRecord& job, const std::string& node_id,
                          std::vector<AttemptRecord>& attempts)>
      resolve_lost;
};

// What cancelElsewhere did.
enum class RemoteCancel { kNotFound, kAlreadyTerminal, kCancelled, kFlagged };

// Every method throws StoreError when the database fails. Called from the supervision thread.
class ClusterStore {
 public:
  virtual ~ClusterStore() = default;

  // Joins the cluster as `node_id`: registers or revives the node's row and turns on the
  // cluster's way of writing: a job is written only by the node that runs it, batches are
  // summarised in the database from all their jobs, and changes are announced to every node.
  // Throws StoreError when a live collectord already runs as `node_id`.
  virtual void joinCluster(const std::string& node_id, const std::vector<std::string>& tags,
                           std::chrono::milliseconds lease, ClusterHooks hooks) = 0;
  // Renews the node's heartbeat and the leases of `running`, its running jobs; returns those
  // of them whose lease it still held (a job missing from the result was taken over, after
  // this node was silent for longer than the lease). Thread-safe, on a connection of its own.
  virtual std::vector<std::string> heartbeat(const std::vector<std::string>& running) = 0;
  // This node's running jobs that another node was asked to cancel.
  virtual std::vector<std::string> cancelRequests() = 0;
  // Marks the node stopped (a clean shutdown; its jobs have ended).
  virtual void leaveCluster() = 0;
  // Claims queued jobs that are due (`now`, this node's clock, against next_attempt_at), by
  // priority then age, up to the request's slots and collector limits counted over the whole
  // cluster. Each is `running` on this node in the database, with a lease, when it comes back;
  // the records returned are as they were before (queued), for the caller to start. Exactly
  // one node gets each job.
  virtual std::vector<JobRecord> claim(const ClaimRequest& request, Micros now) = 0;
  // Ends the running jobs whose lease ran out as ClusterHooks::resolve_lost says; returns how
  // many.
  virtual int expireLeases(Micros now) = 0;
  // Cancels a job that does not run on this node: a queued one ends `cancelled` now, a running
  // one is flagged for its node to stop.
  virtual RemoteCancel cancelElsewhere(const std::string& job_id, const std::string& reason,
                                       Micros now) = 0;
  virtual std::vector<NodeRecord> nodes() = 0;
  // Takes a collector's scheduled slot at `at` for this node: true when no node has recorded a
  // slot after `not_since`, and then records `at`; false otherwise. Every node runs the
  // schedule, each on its own clock and from its own start: their slots for one period differ
  // a little, and the first node to take the period runs it.
  virtual bool claimScheduledRun(const std::string& collector, Micros at, Micros not_since) = 0;
  // Calls `changed` with the IDs of jobs that any node wrote (`work` true when queued work may
  // have appeared or a cancel was requested) until `stop` is set, which it checks at least
  // every 200 ms. Reconnects when the database goes away, and then reports `work` (what
  // happened meanwhile is not known). Runs on a thread of its own; never throws.
  virtual void listen(
      const std::function<void(const std::vector<std::string>& job_ids, bool work)>& changed,
      const std::atomic<bool>& stop) = 0;
};

}  // namespace collectord
