#pragma once

// A client of the daemon's Server-Sent Event streams over a raw socket: it sends the GET, reads
// the response head, then parses events as they arrive, with bounded waits. Nothing here sleeps.

#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

// One event as the stream delivered it: its fields, and when the client had it whole.
struct SseEvent {
  std::string id;
  std::string event;  // "message" when the stream named none
  std::string data;   // the data lines joined with '\n'
  std::chrono::steady_clock::time_point received;

  // `id` as a number (0 when it is not one).
  std::uint64_t number() const;
  // `data` parsed as a JSON object (throws when it is not one).
  Poco::JSON::Object::Ptr json() const;
};

struct SseOptions {
  Keys headers;                       // sent with the GET (credentials, Origin, Last-Event-ID)
  std::optional<int> receive_buffer;  // SO_RCVBUF before connecting: a client slow to read
};

class SseStream {
 public:
  // Connects to 127.0.0.1:port and sends GET `path`. Throws when it cannot connect.
  SseStream(int port, const std::string& path, const SseOptions& options = {});

  // Waits (bounded) for the response's status line and headers; for a response that is not a
  // stream (it has a Content-Length), also for its body. Returns nullopt on timeout or close.
  const std::optional<HttpResponse>& head(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The next event, or nullopt when `timeout` passes or the server closes first.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Events until one satisfies `done` (included), the server closes, or `timeout` passes.
  std::vector<SseEvent> readUntil(const std::function<bool(const SseEvent&)>& done,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Every event until the server closes the stream; nullopt when it is still open at `timeout`.
  std::optional<std::vector<SseEvent>> readToClose(
      std::chrono::milliseconds timeout = std::chrono::seconds(15));

  // Reads what the socket holds now, without waiting, and returns the events it completes:
  // for following many streams at once with poll() on their sockets.
  std::vector<SseEvent> pump();

  bool closed() const { return closed_; }
  // Comment lines (": keep-alive") read so far, and when each arrived.
  const std::vector<std::chrono::steady_clock::time_point>& comments() const { return comments_; }
  Poco::Net::StreamSocket& socket() { return socket_; }

 private:
  // Reads once what is available (waiting at most until `deadline`); false on timeout or close.
  bool receive(std::chrono::steady_clock::time_point deadline);
  std::optional<SseEvent> parseOne();

  Poco::Net::StreamSocket socket_;
  std::string buffer_;
  std::optional<HttpResponse> head_;
  bool closed_ = false;
  std::vector<std::chrono::steady_clock::time_point> comments_;
};

// The events of `events` named `name` ("job", "batch").
std::vector<SseEvent> eventsNamed(const std::vector<SseEvent>& events, const std::string& name);

}  // namespace collectord::test
