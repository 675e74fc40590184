#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"
#include "job.h"
#include "job_store.h"
#include "metrics.h"

namespace collectord {

// The supervisor is stopping and takes no new work.
class ShuttingDownError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A batch as created by a trigger, before anything has run.
struct TriggerResult {
  BatchRecord batch;
  std::vector<JobRecord> jobs;  // in the order the collectors were named
};

struct SupervisorOptions {
  // Progress updates are written to the store at most this often per burst.
  std::chrono::milliseconds flush_interval{100};
  // Between SIGTERM and SIGKILL when the supervisor stops with jobs running.
  std::chrono::milliseconds kill_grace{5000};
};

// Runs collectors and owns every active job's state on one thread of its own. Other threads
// talk to it only through trigger(); what they read comes from the store, which it keeps
// current (terminal states at once, progress coalesced to `flush_interval`).
class Supervisor {
 public:
  // `metrics` (optional) must outlive the supervisor.
  Supervisor(Config config, JobStore& store, SupervisorOptions options = {},
             Metrics* metrics = nullptr);
  ~Supervisor();

  // Resolves what a previous instance left active (running jobs fail, queued ones start),
  // then starts the supervision thread. Throws StoreError if the store is unreadable.
  void start();
  // Stops taking triggers, terminates running jobs (SIGTERM, SIGKILL after kill_grace), ends
  // them cancelled, writes everything to the store and joins the thread. Idempotent.
  void stop();

  // Creates a batch with one queued job per named collector (names must be configured) and
  // starts them. Thread-safe. Throws StoreError, or ShuttingDownError once stop() has begun.
  TriggerResult trigger(const std::vector<std::string>& collectors, Priority priority);

  // False once stop() has begun (readiness).
  bool accepting() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace collectord
