#pragma once

// The example webhook receiver of the docs (examples/webhooks/receiver.py), run with python3 on
// a port of its own: it checks every request's signatures apart from collectord's code and logs
// one JSON line per request.

#include <Poco/JSON/Object.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

class WebhookReceiver {
 public:
  // Starts the receiver with its files DIR/NAME.* and the secret read from `secret_file`, with
  // receiver.py's further `args`, on `port` (0: the OS picks one; a port of a stopped receiver
  // takes its place); returns once it listens. Throws std::runtime_error with its output when
  // it does not start.
  WebhookReceiver(const TempDir& dir, const std::string& name, const std::string& secret_file,
                  const std::vector<std::string>& args = {}, int port = 0);
  ~WebhookReceiver() { stop(); }
  // Stops it (SIGTERM) and reaps it; idempotent.
  void stop();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  int port() const { return port_; }
  // http://127.0.0.1:PORT + path
  std::string url(const std::string& path = "/hooks/collectord") const;
  // Every request received so far, oldest first, as the receiver logged it (fields event,
  // event_id, answered, outcome, signature_ok...). A whole line that is not JSON throws.
  std::vector<Poco::JSON::Object::Ptr> requests() const;
  // The requests whose X-Collectord-Event-Id is `event_id`.
  std::vector<Poco::JSON::Object::Ptr> requestsFor(const std::string& event_id) const;

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace collectord::test
