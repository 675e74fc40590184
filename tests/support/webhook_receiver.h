#pragma once

// The example webhook receiver of the docs (examples/webhooks/receiver.py), run with python3 on
// a port of its own: it checks every request's signatures apart from collectord's code and logs
// one JSON line per request. For suites other than webhook_test.cpp, which has its own copy.

#include <Poco/JSON/Object.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

class WebhookReceiver {
 public:
  // Starts the receiver with its files DIR/NAME.* and the secret read from `secret_file`;
  // returns once it listens. Throws std::runtime_error with its output when it does not start.
  WebhookReceiver(const TempDir& dir, const std::string& name, const std::string& secret_file);
  // Stops it (SIGTERM) and reaps it.
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // http://127.0.0.1:PORT/hooks/collectord
  std::string url() const;
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
