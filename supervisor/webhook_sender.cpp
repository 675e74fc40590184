#include "webhook_sender.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <sys/socket.h>

#include <algorithm>
#include <istream>
#include <optional>

#include "time_format.h"

namespace collectord {
namespace {

using Clock = std::chrono::steady_clock;

// Deliveries one query takes; the worker asks again at once when there were any.
constexpr int kBatchSize = 16;
// How long an idle worker sleeps before it looks again without being woken (a safety net:
// wake() and the next due time normally decide).
constexpr auto kIdleWait = std::chrono::seconds(5);
// After a store error, before the worker tries the store again.
constexpr auto kStoreRetryWait = std::chrono::seconds(1);
constexpr auto kHousekeepingInterval = std::chrono::hours(1);
// Of a refusing receiver's answer, this much goes into last_error: enough to say why.
constexpr std::size_t kErrorBodyBytes = 200;

Poco::Logger& logger() { return Poco::Logger::get("collectord.webhooks"); }

// A receiver's answer for last_error: printable ASCII, one line, at most kErrorBodyBytes.
std::string excerpt(std::istream& in) {
  std::string text(kErrorBodyBytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = ' ';
  }
  const auto end = text.find_last_not_of(' ');
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

// SCHEME://HOST:PORT of `url`: what the log may show. Some receivers take a token in the path
// or the query (chat webhooks do), which would make the log a place to steal it from.
std::string redactedUrl(const std::string& url) {
  try {
    const Poco::URI uri(url);
    return uri.getScheme() + "://" + uri.getAuthority() + "/...";
  } catch (const Poco::SyntaxException& e) {
    return "(an invalid URL: " + e.message() + ")";
  }
}

}  // namespace

struct WebhookSender::Worker {
  std::string name;
  std::mutex mutex;
  std::condition_variable wake;
  WebhookEndpoint endpoint;  // guarded by mutex
  bool stop = false;         // guarded by mutex
  bool woken = false;        // guarded by mutex
  int active_socket = -1;    // guarded by mutex: the attempt in flight, cut off by stop
  std::thread thread;
  // The worker thread's own: the TLS context for https endpoints, kept across attempts (loading
  // the system's CA certificates costs more than a delivery).
  Poco::Net::Context::Ptr tls;
  std::string tls_ca_file;

  // Makes the socket of the attempt under way known to requestStop() while it lives; when the
  // stop came first, cuts the socket off at once.
  class InFlight {
   public:
    InFlight(Worker& worker, int socket) : worker_(worker) {
      std::lock_guard lock(worker_.mutex);
      worker_.active_socket = socket;
      if (worker_.stop) ::shutdown(socket, SHUT_RDWR);
    }
    ~InFlight() {
      std::lock_guard lock(worker_.mutex);
      worker_.active_socket = -1;
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Worker& worker_;
  };

  bool stopping() {
    std::lock_guard lock(mutex);
    return stop;
  }
  void requestStop() {
    std::lock_guard lock(mutex);
    stop = true;
    // shutdown(2), not close: it wakes a thread blocked on the socket without racing with
    // its owner for the descriptor.
    if (active_socket >= 0) ::shutdown(active_socket, SHUT_RDWR);
    wake.notify_all();
  }
};

WebhookSender::WebhookSender(WebhookStore& store, Metrics& metrics)
    : store_(store), metrics_(metrics) {
  Poco::Net::initializeSSL();
}

WebhookSender::~WebhookSender() {
  stop();
  Poco::Net::uninitializeSSL();
}

void WebhookSender::configure(const WebhookSettings& settings) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    settings_ = std::make_shared<const WebhookSettings>(settings);
    for (const WebhookEndpoint& endpoint : settings.endpoints) {
      const auto it = std::find_if(workers_.begin(), workers_.end(),
                                   [&](const auto& w) { return w->name == endpoint.name; });
      if (it != workers_.end()) {
        std::lock_guard worker_lock((*it)->mutex);
        (*it)->endpoint = endpoint;
        (*it)->woken = true;
        (*it)->wake.notify_all();
        continue;
      }
      auto worker = std::make_unique<Worker>();
      worker->name = endpoint.name;
      worker->endpoint = endpoint;
      Worker& w = *worker;
      workers_.push_back(std::move(worker));
      w.thread = std::thread([this, &w] { run(w); });
      logger().information("webhook endpoint %s: delivering to %s", endpoint.name,
                           redactedUrl(endpoint.url));
    }
    for (auto it = workers_.begin(); it != workers_.end();) {
      const bool configured =
          std::any_of(settings.endpoints.begin(), settings.endpoints.end(),
                      [&](const WebhookEndpoint& e) { return e.name == (*it)->name; });
      if (configured) {
        ++it;
        continue;
      }
      (*it)->requestStop();
      logger().information("webhook endpoint %s: no longer configured", (*it)->name);
      retired_.push_back(std::move(*it));
      it = workers_.erase(it);
    }
    if (!housekeeping_.joinable()) housekeeping_ = std::thread([this] { housekeeping(); });
  }
  abandonUnconfigured(settings);
}

void WebhookSender::wake() {
  std::lock_guard lock(mutex_);
  for (const auto& worker : workers_) {
    std::lock_guard worker_lock(worker->mutex);
    worker->woken = true;
    worker->wake.notify_all();
  }
}

void WebhookSender::noteSaved(const StateChange& change) {
  const bool ended = std::any_of(change.jobs.begin(), change.jobs.end(),
                                 [](const JobRecord& j) { return isTerminal(j.status); }) ||
                     std::any_of(change.batches.begin(), change.batches.end(),
                                 [](const BatchRecord& b) { return isTerminal(b.status); });
  if (ended) wake();
}

void WebhookSender::stop() {
  std::vector<std::unique_ptr<Worker>> all;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& w : workers_) all.push_back(std::move(w));
    for (auto& w : retired_) all.push_back(std::move(w));
    workers_.clear();
    retired_.clear();
    housekeeping_wake_.notify_all();
  }
  for (auto& w : all) w->requestStop();
  for (auto& w : all) {
    if (w->thread.joinable()) w->thread.join();
  }
  if (housekeeping_.joinable()) housekeeping_.join();
}

void WebhookSender::abandonUnconfigured(const WebhookSettings& settings) {
  try {
    for (const std::string& name : store_.pendingWebhookEndpoints()) {
      const bool configured = std::any_of(settings.endpoints.begin(), settings.endpoints.end(),
                                          [&](const WebhookEndpoint& e) { return e.name == name; });
      if (configured) continue;
      const int n = store_.abandonWebhookDeliveries(
          name, "endpoint '" + name + "' is no longer configured", nowMicros());
      logger().warning(
          "%d pending webhook deliveries to %s ended failed: the endpoint is no "
          "longer configured",
          n, name);
    }
  } catch (const StoreError& e) {
    logger().error("cannot end the deliveries of removed webhook endpoints: %s",
                   std::string(e.what()));
  }
}

void WebhookSender::housekeeping() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const int days = settings_ ? settings_->retention_days : 0;
    if (days > 0) {
      lock.unlock();
      try {
        const Micros before = nowMicros() - static_cast<Micros>(days) * 86'400'000'000LL;
        const int n = store_.pruneWebhookDeliveries(before);
        if (n > 0)
          logger().information("deleted %d webhook deliveries older than %d days", n, days);
      } catch (const StoreError& e) {
        logger().error("cannot delete old webhook deliveries: %s", std::string(e.what()));
      }
      lock.lock();
    }
    housekeeping_wake_.wait_for(lock, kHousekeepingInterval, [this] { return stopping_; });
  }
}

void WebhookSender::run(Worker& worker) {
  for (;;) {
    WebhookEndpoint endpoint;
    {
      std::lock_guard lock(worker.mutex);
      if (worker.stop) return;
      worker.woken = false;  // a wake from here on is not missed: the wait below sees it
      endpoint = worker.endpoint;
    }
    std::shared_ptr<const WebhookSettings> settings;
    {
      std::lock_guard lock(mutex_);
      settings = settings_;
    }
    Clock::duration wait = kIdleWait;
    try {
      const auto due = store_.dueWebhookDeliveries(endpoint.name, nowMicros(), kBatchSize);
      for (const WebhookDeliveryRecord& delivery : due) {
        if (worker.stopping()) return;
        deliver(worker, endpoint, *settings, delivery);
      }
      if (!due.empty()) continue;  // more may be due already
      if (const auto next = store_.nextWebhookDue(endpoint.name)) {
        wait = std::clamp<Clock::duration>(std::chrono::microseconds(*next - nowMicros()),
                                           Clock::duration::zero(), kIdleWait);
      }
    } catch (const StoreError& e) {
      logger().error("webhook endpoint %s: %s", endpoint.name, std::string(e.what()));
      wait = kStoreRetryWait;
    }
    std::unique_lock lock(worker.mutex);
    worker.wake.wait_for(lock, wait, [&worker] { return worker.stop || worker.woken; });
  }
}

std::optional<int> WebhookSender::post(Worker& worker, const WebhookEndpoint& endpoint,
                                       const WebhookDeliveryRecord& delivery, int attempt,
                                       Micros now, std::string& error) {
  const auto secret = resolveWebhookSecret(endpoint.secret, error);
  if (!secret) return std::nullopt;
  const std::string timestamp = std::to_string(now / 1'000'000);
  try {
    const Poco::URI uri(endpoint.url);
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (Poco::toLower(uri.getScheme()) == "https") {
      if (!worker.tls || worker.tls_ca_file != endpoint.ca_file) {
        // STRICT, not RELAXED: Poco skips the host name check for a loopback address unless
        // the mode is STRICT, and a receiver on this host deserves it as well.
        worker.tls =
            new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", endpoint.ca_file,
                                   Poco::Net::Context::VERIFY_STRICT, 9, endpoint.ca_file.empty());
        worker.tls->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
        worker.tls_ca_file = endpoint.ca_file;
      }
      session =
          std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), worker.tls);
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    }
    session->setTimeout(Poco::Timespan(endpoint.timeout.count() * 1000));
    const std::string path = uri.getPathEtc().empty() ? "/" : uri.getPathEtc();
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(delivery.body.size()));
    request.setKeepAlive(false);
    request.set("User-Agent", "collectord-webhooks");
    request.set("X-Signature", webhookSignature(*secret, delivery.body));
    request.set("X-Collectord-Event", delivery.event_type);
    request.set("X-Collectord-Event-Id", delivery.event_id);
    request.set("X-Collectord-Delivery", std::to_string(delivery.delivery_id));
    request.set("X-Collectord-Attempt", std::to_string(attempt));
    request.set("X-Collectord-Timestamp", timestamp);
    request.set("X-Collectord-Signature",
                webhookSignature(*secret, timestamp + "." + delivery.body));
    std::ostream& out = session->sendRequest(request);
    const Worker::InFlight in_flight(worker, session->socket().impl()->sockfd());
    out.write(delivery.body.data(), static_cast<std::streamsize>(delivery.body.size()));
    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    const int status = static_cast<int>(response.getStatus());
    if (status < 200 || status > 299) {
      error = "HTTP " + std::to_string(status) + " " + response.getReason();
      if (const std::string said = excerpt(in); !said.empty()) error += ": " + said;
    }
    return status;
  } catch (const Poco::TimeoutException&) {
    error = "no answer within " + formatDurationSpec(endpoint.timeout);
  } catch (const Poco::Exception& e) {
    error = e.displayText();
  } catch (const std::exception& e) {
    error = e.what();
  }
  return std::nullopt;
}

void WebhookSender::deliver(Worker& worker, const WebhookEndpoint& endpoint,
                            const WebhookSettings& settings,
                            const WebhookDeliveryRecord& delivery) {
  WebhookAttemptRecord attempt;
  attempt.attempt = delivery.attempts + 1;
  attempt.started_at = nowMicros();
  const auto started = Clock::now();
  std::string error;
  const std::optional<int> status =
      post(worker, endpoint, delivery, attempt.attempt, attempt.started_at, error);
  // Cut off by stop() before an answer: the receiver did not fail this one, and the next start
  // sends it again. An answer that did arrive is recorded, a 2xx above all: not recording it
  // would deliver the event a second time.
  if (!status && worker.stopping()) return;
  attempt.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  attempt.http_status = status;
  const bool ok = error.empty();
  if (!ok) attempt.error = error;
  DeliveryState state = DeliveryState::kDelivered;
  Micros next = attempt.started_at;
  if (!ok) {
    if (attempt.attempt >= settings.max_attempts) {
      state = DeliveryState::kFailed;
    } else {
      state = DeliveryState::kPending;
      next = nowMicros() + webhookRetryDelay(settings, attempt.attempt).count() * 1000;
    }
  }
  store_.recordWebhookAttempt(delivery.delivery_id, attempt, state, next);
  metrics_.webhookAttempt(endpoint.name, ok,
                          state == DeliveryState::kPending ? "" : std::string(toString(state)));
  if (state == DeliveryState::kFailed) {
    logger().error("webhook %s (%s) to %s failed after %d attempts, giving up: %s",
                   delivery.event_id, std::to_string(delivery.delivery_id), endpoint.name,
                   attempt.attempt, error);
  } else if (state == DeliveryState::kPending) {
    logger().warning("webhook %s to %s: attempt %d of %d failed, retrying in %s: %s",
                     delivery.event_id, endpoint.name, attempt.attempt, settings.max_attempts,
                     formatDurationSpec(webhookRetryDelay(settings, attempt.attempt)), error);
  } else if (attempt.attempt > 1) {
    logger().information("webhook %s to %s delivered at attempt %d", delivery.event_id,
                         endpoint.name, attempt.attempt);
  }
}

}  // namespace collectord
