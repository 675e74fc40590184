#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"
#include "stream_connection.h"
#include "unique_fd.h"

namespace collectord::http {

// One Server-Sent Event, rendered once and shared by every stream it goes to.
struct StreamEvent {
  enum class Kind { kJob, kBatch, kOther };
  std::uint64_t id = 0;  // 0: not part of the sequence (heartbeats, notices)
  Kind kind = Kind::kOther;
  std::string batch_id;
  std::string job_id;     // job events only
  bool terminal = false;  // the job or batch is completed, failed or cancelled
  std::string text;       // the wire form: "id: N\nevent: job\ndata: {...}\n\n"
};
using EventPtr = std::shared_ptr<const StreamEvent>;

// What one stream follows: every run, one batch (its jobs and itself), or one job.
struct Topic {
  enum class Kind { kAll, kBatch, kJob };
  Kind kind = Kind::kAll;
  std::string id;  // the batch or job ID

  bool covers(const StreamEvent& event) const;
  // True for the event after which the stream has nothing more to say: the batch's (or the
  // job's) own terminal event. Never for kAll.
  bool endsWith(const StreamEvent& event) const;
};

struct StreamerOptions {
  // ": keep-alive" after this long without a write. A client that reads nothing for four times
  // this while bytes wait for it is dropped.
  std::chrono::milliseconds heartbeat{15'000};
  // Bytes a client may have waiting; one more event past it drops the client.
  std::size_t client_buffer_bytes = 1024 * 1024;
};

// Writes event streams to their clients from one thread that polls every stream socket: writes
// never block, each client has a bounded buffer, and a client that stops reading is dropped
// (told so with `event: dropped` when the socket still takes it) instead of holding anything up.
class EventStreamer {
 public:
  // `metrics` must outlive the streamer.
  EventStreamer(StreamerOptions options, Metrics& metrics);
  ~EventStreamer();

  void start();
  // Writes what is waiting for at most `grace`, closes every stream and joins. Idempotent.
  void stop(std::chrono::milliseconds grace);

  // Takes a stream over: writes `head`, then `first`, then every published event `topic`
  // covers. `ends`: close once `first` is written. `slot` is released when the stream closes.
  // Events published before this call never reach it; those published after always do.
  void add(std::unique_ptr<StreamConnection> connection, std::string head, Topic topic,
           std::vector<EventPtr> first, bool ends, std::shared_ptr<void> slot);
  // Queues `events` (in order) to every stream whose topic covers them.
  void publish(std::vector<EventPtr> events);

 private:
  struct Client;
  // One entry of the inbox: a new stream, or events to send. Kept in one list so that a stream
  // gets exactly the events published after it was added.
  struct Arrival {
    std::unique_ptr<Client> client;
    std::vector<EventPtr> events;
  };

  void run();
  void wake();
  void accept(Arrival& arrival);
  void deliver(Client& client, const EventPtr& event);
  void flush(Client& client);
  // Tells the client why (if its socket takes it) and closes its stream.
  void drop(Client& client, const std::string& why);
  // How long a client may read nothing while bytes wait for it.
  std::chrono::milliseconds stallLimit() const { return 4 * options_.heartbeat; }
  void close(Client& client);

  StreamerOptions options_;
  Metrics& metrics_;
  UniqueFd wake_fd_;  // eventfd: the inbox has something

  std::mutex mutex_;
  std::vector<Arrival> inbox_;          // guarded by mutex_
  bool stopping_ = false;               // guarded by mutex_
  std::chrono::milliseconds grace_{0};  // guarded by mutex_

  std::vector<std::unique_ptr<Client>> clients_;  // the streaming thread's own
  std::thread thread_;
};

}  // namespace collectord::http
