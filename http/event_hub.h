#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "event_streamer.h"
#include "job_store.h"
#include "metrics.h"
#include "supervisor.h"

namespace collectord::http {

struct EventOptions {
  std::chrono::milliseconds heartbeat{15'000};
  int max_streams = 1000;                         // streams open at once; more are refused (503)
  std::size_t client_buffer_bytes = 1024 * 1024;  // see StreamerOptions
  std::size_t replay_bytes = 8 * 1024 * 1024;     // recent events kept for Last-Event-ID
};

// The live event streams (Server-Sent Events) of job and batch state.
//
// The supervisor hands every write of job state to publish(); the hub's own thread turns each
// changed job into `event: job` (the JSON of GET /api/collectors/runs/job/{id}) and each changed
// batch into `event: batch` (GET .../batch/{id}), jobs before their batch, numbers them from one
// sequence, keeps the recent ones for resuming, and passes them to an EventStreamer, whose
// thread writes them to every stream that follows them.
//
// Event IDs: the first is the wall-clock time in microseconds when the daemon started, then +1
// per event, so they grow across restarts too (as long as the clock does and fewer than a
// million events a second are published on average). A stream opened with a Last-Event-ID the
// hub still holds every later event for gets exactly those; otherwise (too old, from an earlier
// run, or absent) it gets the current state of what it follows first, each event a whole state,
// with new IDs, and then the live events.
class EventHub {
 public:
  // `store` and `metrics` must outlive the hub.
  EventHub(JobStore& store, EventOptions options, Metrics& metrics);
  ~EventHub();

  void start();
  // Publishes what is queued, gives streams a moment to take it, closes them. Idempotent.
  void stop();

  // A SupervisorOptions::on_saved observer: queues the change and returns (a lock, no I/O).
  // While the hub is more than a few thousand writes behind, a change is merged into the last
  // queued one, so a run's intermediate states may be skipped; its newest state never is.
  void publish(const StateChange& change);

  // A place for one more stream; null when options.max_streams are open. The stream holds it
  // until it closes; dropping it unused frees it.
  std::shared_ptr<void> reserveStream();
  int maxStreams() const { return options_.max_streams; }

  // Streams `topic` on `connection`, after `head` (the response's status line and headers):
  // replayed or current state first (see the class comment), then each event as it happens,
  // until the topic ends (a batch or job stream closes after its terminal event) or the client
  // goes. The topic's batch or job must exist.
  void stream(std::unique_ptr<StreamConnection> connection, std::string head, Topic topic,
              std::optional<std::uint64_t> last_event_id, std::shared_ptr<void> slot);

  // True when `topic` (a batch or a job) has ended with an event whose ID is at most
  // `last_event_id`: a client that read that far has the final state already.
  bool endedBy(const Topic& topic, std::uint64_t last_event_id) const;

 private:
  struct Subscription {
    std::unique_ptr<StreamConnection> connection;
    std::string head;
    Topic topic;
    std::optional<std::uint64_t> last_event_id;
    std::shared_ptr<void> slot;
  };
  // A batch as the streams last showed it.
  struct Batch {
    BatchRecord record;
    std::vector<JobRecord> jobs;                      // in trigger order
    std::uint64_t last_event = 0;                     // the newest event about it or its jobs
    std::uint64_t ended_event = 0;                    // its terminal batch event, once published
    std::map<std::string, std::uint64_t> jobs_ended;  // job ID -> its terminal event
    bool in_ended = false;                            // listed in ended_
  };
  struct Attempts {
    int before = 0;  // the job's attempt number they were read for
    std::vector<AttemptRecord> records;
  };

  void run();
  void apply(const StateChange& change);
  void serve(Subscription& subscription);
  Batch* findBatch(const std::string& batch_id);
  Batch* findBatchOfJob(const std::string& job_id);
  EventPtr jobEvent(const Batch& batch, const JobRecord& job);
  EventPtr batchEvent(const Batch& batch);
  // The current state of `batch` as new events: its jobs, then itself.
  void snapshot(const Batch& batch, std::vector<EventPtr>& out);
  void remember(const EventPtr& event);
  void forgetEndedBatches();

  JobStore& store_;
  EventOptions options_;
  Metrics& metrics_;
  EventStreamer streamer_;
  std::atomic<int> streams_{0};  // reserved places

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<StateChange> changes_;         // guarded by mutex_
  std::vector<Subscription> subscriptions_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_

  // The hub thread's own state; cache_mutex_ only for endedBy() readers on other threads.
  mutable std::mutex cache_mutex_;
  std::unordered_map<std::string, Batch> batches_;          // guarded by cache_mutex_
  std::unordered_map<std::string, std::string> job_batch_;  // job -> batch; cache_mutex_
  std::deque<std::string> ended_;                           // ended batches, oldest first
  std::unordered_map<std::string, Attempts> attempts_;
  std::uint64_t last_id_;
  std::deque<EventPtr> ring_;
  std::size_t ring_bytes_ = 0;
  std::uint64_t replayable_after_;  // the ring holds every event with a greater ID

  std::thread thread_;
};

}  // namespace collectord::http
