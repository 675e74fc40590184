#pragma once

// The supervisor's private state and the declarations its three source files share:
// supervisor.cpp (batches, the queue, persistence, recovery, the public API), job_run.cpp (one
// run: spawn, pipes, protocol, timers, exit) and schedules.cpp (schedules, log retention).
// Everything here lives on the supervision thread unless a comment says otherwise.

#include <Poco/Logger.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "ids.h"
#include "job_log.h"
#include "job_state.h"
#include "supervisor.h"
#include "time_format.h"

namespace collectord {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

inline constexpr std::size_t kReadChunk = 64 * 1024;
// Protocol warnings written to one job's log; a collector spewing garbage must not fill a disk.
inline constexpr int kMaxWarningsPerJob = 1000;
// What one drain after exit reads at most, should a grandchild keep writing.
inline constexpr std::size_t kMaxDrainBytes = 16 * 1024 * 1024;
inline constexpr auto kStoreRetryDelay = std::chrono::seconds(1);
inline constexpr auto kLogSweepInterval = std::chrono::hours(1);

inline Micros toMicros(std::chrono::milliseconds d) { return d.count() * 1000; }

struct Supervisor::Impl {
  // One of a child's pipes, read asynchronously until EOF.
  struct Pipe {
    bool reading = false;  // a wait for data is outstanding
  };

  // A job of an active batch. Lives on the supervision thread until its batch is terminal and
  // written to the store.
  struct Job {
    Job(JobRecord record, std::shared_ptr<const CollectorConfig> config, int pos)
        : event_written(isTerminal(record.status)),
          sm(std::move(record)),
          collector(std::move(config)),
          position(pos) {}
    // Its terminal state and webhook event are in the store (a job recovered terminal had
    // them written by the instance that ended it).
    bool event_written;
    JobStateMachine sm;
    std::shared_ptr<const CollectorConfig> collector;  // null if no longer configured
    int position;                                      // in its batch
    std::unique_ptr<ChildProcess> child;
    std::unique_ptr<JobLog> log;
    Pipe progress, output;
    std::string partial;      // an incomplete protocol line
    bool discarding = false;  // inside an over-long line, dropping until its newline
    std::optional<int> wait_status;
    std::uint64_t line_no = 0;
    int warnings = 0;
    Clock::time_point last_progress;
    std::unique_ptr<asio::steady_timer> timeout_timer, stall_timer, kill_timer, retry_timer;
    std::vector<AttemptRecord> unsaved_attempts;
    bool dirty = false;  // in dirty_jobs: set per flush, not per progress line
  };
  struct Batch {
    BatchRecord record;
    std::vector<std::string> job_ids;  // trigger order
    bool event_written = false;        // as Job::event_written
  };

  Impl(Config cfg, JobStore& job_store, SupervisorOptions opts, Metrics* m)
      : store(job_store), options(opts), metrics(m ? *m : own_metrics), cluster(opts.cluster) {
    applyConfig(std::move(cfg));
  }

  JobStore& store;
  SupervisorOptions options;
  Metrics own_metrics;  // used when the owner passes none
  Metrics& metrics;
  Poco::Logger& log = Poco::Logger::get("collectord.supervisor");
  IdGenerator ids;
  asio::io_context io;
  // Every pipe is read into this one buffer: one thread reads them all, and what a read brings
  // is consumed before the next, so an idle job holds no read buffer (2,000 live jobs would
  // otherwise pin 256 MB of them).
  std::vector<char> read_buffer = std::vector<char>(kReadChunk);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> accepting{false};

  mutable std::mutex fault_mutex;
  std::string store_fault;  // guarded by fault_mutex; see Supervisor::storeFault
  void setStoreFault(std::string fault);
  // Tells SupervisorOptions::on_saved about a write that reached the store.
  void saved(std::vector<JobRecord> job_rows, std::vector<BatchRecord> batch_rows);

  mutable std::mutex config_mutex;
  std::shared_ptr<const Config> current_config;  // guarded by config_mutex; replaced on reload

  // Owned by the supervision thread.
  std::map<std::string, std::shared_ptr<const CollectorConfig>> collectors;
  std::map<std::string, std::unique_ptr<Job>> jobs;
  std::map<std::string, Batch> batches;
  std::set<std::string> dirty_jobs;
  std::set<std::string> dirty_batches;
  asio::steady_timer flush_timer{io};
  bool flush_armed = false;
  asio::steady_timer sweep_timer{io};
  struct ScheduledCollector {
    std::unique_ptr<asio::steady_timer> timer;
    Micros next = 0;
  };
  std::map<std::string, ScheduledCollector> schedules;
  bool stopping = false;
  std::function<void()> on_drained;

  std::shared_ptr<const Config> config() const;

  void applyConfig(Config cfg);

  std::shared_ptr<const CollectorConfig> collectorConfig(const std::string& name) const;

  Job* findJob(const std::string& id);

  std::string logPath(const std::string& job_id) const;

  Job* activeJobOf(const std::string& collector);

  TriggerResult createBatch(const std::vector<std::string>& names, Priority priority);

  BatchRecord insertNewBatch(const std::vector<std::string>& names, Priority priority, Micros now);

  // store.insertBatch, except that a batch the store reports as failed but holds all the same
  // counts as inserted. Throws StoreError when it is not known to be there.
  bool insertOrFind(const BatchRecord& batch, const std::vector<JobRecord>& batchJobs);

  std::string describe(const std::vector<std::string>& job_ids);

  // Starts queued jobs, by priority then age, while the node and collector limits allow.
  void dispatch();

  // The child's whole environment. `env.NAME = @file:/path` is read now, at spawn time, so a
  // rotated secret takes effect on the next run and never sits in the configuration; false
  // with `error` when such a file cannot be read.
  bool environmentFor(const Job& job, std::vector<std::string>& env, std::string& error) const;

  std::vector<std::string> baseEnvironment(const Job& job) const;

  // Fills the request's account and limits; false with `error` when the account is unusable.
  bool identityFor(const CollectorConfig& c, SpawnRequest& request, std::string& error) const;

  bool spawn(Job& job);

  // A timer's handler runs later, possibly after its job is gone or has moved to another
  // attempt: it captures the ID and attempt, never the job itself.
  template <typename Fn>
  void arm(std::unique_ptr<asio::steady_timer>& timer, Clock::duration after, const Job& job,
           Fn fn) {
    if (!timer) timer = std::make_unique<asio::steady_timer>(io);
    timer->expires_after(after);
    timer->async_wait([this, id = job.sm.record().job_id, attempt = job.sm.record().attempt,
                       fn](const boost::system::error_code& ec) {
      if (ec) return;
      Job* j = findJob(id);
      if (j && j->sm.record().attempt == attempt) fn(*j);
    });
  }

  void armRunTimers(Job& job);

  // Fires when no progress line came for stall_timeout; progress only moves the deadline, so a
  // flood of lines costs no timer operations.
  void armStall(Job& job, Clock::duration after);

  // Ends a running job's process group: SIGTERM, then SIGKILL after the grace period.
  void stopRun(Job& job, const std::string& reason, bool cancel);

  std::optional<Micros> retryDelay(const Job& job) const;

  void armRetry(Job& job);

  void cancelTimers(Job& job);

  void fail(Job& job, const std::string& error);

  void readPipe(Job& job, Pipe& pipe, asio::posix::stream_descriptor& fd, bool progress);

  void deliver(Job& job, bool progress, const char* data, std::size_t n);

  void drainAndClose(Job& job, asio::posix::stream_descriptor& fd, bool progress);

  void closePipe(Job& job, asio::posix::stream_descriptor& fd, bool progress);

  // When a chunk of protocol lines was read. Every line of the chunk counts as arriving then:
  // two clock reads per chunk instead of per line, on the path of every protocol line.
  struct Arrival {
    Clock::time_point steady = Clock::now();
    Micros wall = nowMicros();
  };

  void consume(Job& job, const char* data, std::size_t n, const Arrival& at);

  void startDiscarding(Job& job);

  void handleLine(Job& job, std::string_view line, const Arrival& at);

  void warn(Job& job, const std::string& reason);

  void onChildExit(Job& job, int wait_status);

  void maybeFinish(Job& job);

  // Whatever ended a run (exit, spawn failure, cancel of a queued job): persist, retry or
  // record the outcome, and let the queue move.
  void afterRun(Job& job);

  CancelOutcome cancel(Job& job);

  CancelOutcome cancelJob(const std::string& job_id);
  ReportOutcome report(const std::string& job_id, const ProgressUpdate& update,
                       std::optional<JobRecord>& job);

  CancelOutcome cancelBatch(const std::string& batch_id);

  void recordEnd(const Job& job);

  void updateGauges();

  void markDirty(Job& job);

  void scheduleFlush(Clock::duration delay);
  void scheduleFlush();

  // Writes every dirty job and its batch in one transaction, with the webhook deliveries of
  // those that became terminal; on failure keeps them dirty and tries again later, so a passing
  // store fault loses nothing. False when the write failed.
  bool flush();

  // The webhook events of the jobs and batches about to be written that became terminal and
  // have not had theirs written yet.
  std::vector<WebhookEvent> newEvents(const std::vector<JobRecord>& job_rows,
                                      const std::vector<BatchRecord>& batch_rows);

  void rollUp(Batch& batch);

  void retireIfDone(const std::string& batch_id);

  // Deletes job logs older than logs.retention_days, then again every hour.
  void sweepLogs();

  // (Re)arms a timer per scheduled collector. A slot missed while collectord was down fires
  // once now, not once per missed slot.
  void armSchedules();

  void armSchedule(const std::string& name, Micros at);

  void fireSchedule(const std::string& name);

  std::vector<CollectorState> collectorStates();

  void recover();
  // Ends a job that a previous instance left running: kills what is left of its processes,
  // fails it (or queues its retry) with "supervisor restarted while the job was running".
  void failLeftover(Job& job, Micros now);

  // Cluster mode (cluster_node.cpp); `cluster` is null otherwise.
  ClusterStore* cluster = nullptr;
  asio::steady_timer poll_timer{io};
  std::optional<Clock::time_point> reachable_since;  // heartbeats succeed since then
  // Heartbeats run on a thread of their own, so that a busy supervision thread cannot delay
  // them past the lease; it renews the leases of `running_snapshot`, which the supervision
  // thread keeps current (publishRunning).
  std::thread heartbeats;
  std::mutex heartbeat_mutex;
  std::condition_variable heartbeat_wake;
  bool heartbeat_stop = false;                  // guarded by heartbeat_mutex
  std::vector<std::string> running_snapshot;    // guarded by heartbeat_mutex
  void publishRunning();
  void heartbeatLoop();
  void stopHeartbeats();  // idempotent
  // On the supervision thread, after a heartbeat: stops runs whose lease was lost, and resolves
  // other nodes' expired leases.
  void afterHeartbeat(bool reached, std::vector<std::string> renewed,
                      std::vector<std::string> running);
  std::atomic<bool> wake_pending{false};
  bool claim_failing = false;  // logs the first failure of a run of them
  std::atomic<bool> listener_stop{false};
  std::thread listener;
  void joinCluster();
  // Fails this node's jobs that a previous instance left running.
  void recoverNode();
  // dispatch() in cluster mode: claims what this node may run now and starts it.
  void claimWork();
  // Claims work and stops the runs another node was asked to cancel.
  void lookForWork();
  void pollTick();
  // From the listener thread: publishes what other nodes (and this one) wrote.
  void clusterChanged(const std::vector<std::string>& job_ids, bool new_work);
  // A job this node does not have: cancelled or flagged in the database.
  CancelOutcome cancelElsewhere(const std::string& job_id);
  // Drops the jobs of this node that are saved and no longer running here.
  void retireSaved();

  void beginStop(std::function<void()> done);

  void checkDrained();
};

}  // namespace collectord
