#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace collectord::http {

// A client connection that the HTTP server has handed over after sending a response's headers:
// from then on its owner writes the body at its own pace, from any one thread, without blocking.
// Destroying it closes the connection.
class StreamConnection {
 public:
  virtual ~StreamConnection() = default;

  // The socket's descriptor, to poll for readability and writability; owned by this object.
  virtual int fd() const = 0;
  // Writes up to `size` bytes of `data` without blocking. Returns how many were written, 0 when
  // the socket takes nothing now (poll for POLLOUT), or -1 when the connection has failed. After
  // 0, the next call must pass the same bytes again (TLS requires it).
  virtual long send(const char* data, std::size_t size) = 0;
  // Reads and discards whatever the client sent, without blocking. False once the client has
  // closed the connection or it failed.
  virtual bool drain() = 0;
  // The client's address, for logs.
  virtual std::string peer() const = 0;
};

// What a streaming handler leaves in Response::take_over: called with the connection (the
// response's status line and headers not yet written: `head` holds them, to be written first)
// once the worker thread is done with it. Never called when the response could not be sent.
using StreamTakeOver =
    std::function<void(std::unique_ptr<StreamConnection> connection, std::string head)>;

}  // namespace collectord::http
