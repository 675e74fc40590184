#pragma once

// Server-sent events (text/event-stream) from collectord, read on a thread of their own so that
// the caller can redraw while waiting: GET .../batch/{id}/events sends `event: job` and
// `event: batch` with the same JSON as the status endpoints.

#include <Poco/Net/HTTPClientSession.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api_client.h"

namespace collectorctl {

// One dispatched event.
struct ServerEvent {
  std::string type = "message";  // the `event:` field
  std::string data;              // the `data:` lines joined by "\n"
  std::string id;                // the last `id:` seen, carried over as the spec says
};

// The event-stream format's line rules (WHATWG HTML, "Interpreting an event stream"): fields
// `event`, `data`, `id`; comment lines (heartbeats) start with ':'; a blank line dispatches.
class EventStreamParser {
 public:
  // Takes one line without its line ending; returns the event a blank line dispatches.
  std::optional<ServerEvent> feed(const std::string& line);
  const std::string& lastId() const { return last_id_; }

 private:
  std::string type_;
  std::string data_;
  bool has_data_ = false;
  std::string last_id_;
};

class EventStream {
 public:
  enum class State {
    kConnecting,
    kOpen,
    kUnavailable,  // the server has no such stream (404, 405, 501, or not text/event-stream)
    kEnded,        // the server ended the stream
    kFailed,       // the connection failed or the server refused; see error()
  };

  // Opens GET `path` (with Last-Event-ID when `last_event_id` is not empty) on a connection of
  // its own and reads it on a thread until it ends or stop() is called.
  EventStream(const ApiClient& client, std::string path, std::string last_event_id);
  // Stops and joins the reader.
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Waits up to `timeout` for events or a change of state; returns the events received since
  // the last call (maybe none).
  std::vector<ServerEvent> take(std::chrono::milliseconds timeout);
  State state() const;
  // Why the stream failed, for a person.
  std::string error() const;
  // The id of the last event received: where a new stream should resume.
  std::string lastEventId() const;
  // Ends the stream: the connection is shut down and the reader returns.
  void stop();

 private:
  void read(std::string last_event_id);
  void setState(State state, std::string error = "");

  const ApiClient& client_;
  const std::string path_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<ServerEvent> events_;                   // guarded by mutex_
  State state_ = State::kConnecting;                 // guarded by mutex_
  std::string error_;                                // guarded by mutex_
  std::string last_event_id_;                        // guarded by mutex_
  bool stopping_ = false;                            // guarded by mutex_
  Poco::Net::HTTPClientSession* session_ = nullptr;  // guarded by mutex_; the reader's own
  std::thread reader_;
};

}  // namespace collectorctl
