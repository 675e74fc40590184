#include "metrics.h"

#include <sstream>

namespace collectord {
namespace {

// Label values escaped as the exposition format requires.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

void Metrics::jobEnded(const std::string& collector, const std::string& status, double seconds) {
  std::lock_guard lock(mutex_);
  ++jobs_[{collector, status}];
  Histogram& h = durations_[collector];
  for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
    if (seconds <= kDurationBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::httpRequest(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::webhookAttempt(const std::string& endpoint, bool succeeded,
                             const std::string& final_state) {
  std::lock_guard lock(mutex_);
  ++webhook_attempts_[{endpoint, succeeded}];
  if (!final_state.empty()) ++webhook_deliveries_[{endpoint, final_state}];
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  header(out, "collectord_jobs_total", "counter", "Jobs that reached a terminal status.");
  for (const auto& [key, n] : jobs_) {
    out << "collectord_jobs_total{collector=\"" << label(key.first) << "\",status=\""
        << label(key.second) << "\"} " << n << "\n";
  }
  header(out, "collectord_job_duration_seconds", "histogram", "Run time of finished jobs.");
  for (const auto& [collector, h] : durations_) {
    const std::string c = label(collector);
    for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
      out << "collectord_job_duration_seconds_bucket{collector=\"" << c << "\",le=\""
          << kDurationBuckets[i] << "\"} " << h.buckets[i] << "\n";
    }
    out << "collectord_job_duration_seconds_bucket{collector=\"" << c << "\",le=\"+Inf\"} "
        << h.count << "\n";
    out << "collectord_job_duration_seconds_sum{collector=\"" << c << "\"} " << h.sum << "\n";
    out << "collectord_job_duration_seconds_count{collector=\"" << c << "\"} " << h.count << "\n";
  }
  header(out, "collectord_jobs_running", "gauge", "Jobs running now on this node.");
  out << "collectord_jobs_running " << jobs_running.load() << "\n";
  header(out, "collectord_queue_length", "gauge", "Jobs waiting to start on this node.");
  out << "collectord_queue_length " << jobs_queued.load() << "\n";
  header(out, "collectord_http_requests_total", "counter", "HTTP requests by route and status.");
  for (const auto& [key, n] : requests_) {
    out << "collectord_http_requests_total{route=\"" << label(key.first) << "\",code=\""
        << key.second << "\"} " << n << "\n";
  }
  header(out, "collectord_http_rate_limited_total", "counter", "Requests refused with 429.");
  out << "collectord_http_rate_limited_total " << rate_limited.load() << "\n";
  header(out, "collectord_http_auth_failures_total", "counter", "Requests refused with 401.");
  out << "collectord_http_auth_failures_total " << auth_failed.load() << "\n";
  header(out, "collectord_store_writes_total", "counter",
         "Transactions of job state written to the store (progress is coalesced into them).");
  out << "collectord_store_writes_total " << store_writes.load() << "\n";
  header(out, "collectord_store_write_failures_total", "counter",
         "Writes of job state that failed and were kept in memory to be retried.");
  out << "collectord_store_write_failures_total " << store_write_failures.load() << "\n";
  header(out, "collectord_progress_lines_total", "counter", "Protocol lines read from collectors.");
  out << "collectord_progress_lines_total " << progress_lines_received.load() << "\n";
  header(out, "collectord_progress_lines_dropped_total", "counter",
         "Protocol lines ignored as invalid.");
  out << "collectord_progress_lines_dropped_total " << progress_lines_dropped.load() << "\n";
  header(out, "collectord_webhook_events_total", "counter",
         "Webhook deliveries written to the outbox (one per event and endpoint).");
  out << "collectord_webhook_events_total " << webhook_events_queued.load() << "\n";
  header(out, "collectord_webhook_attempts_total", "counter",
         "Attempts to deliver a webhook, by endpoint and result (2xx or not).");
  for (const auto& [key, n] : webhook_attempts_) {
    out << "collectord_webhook_attempts_total{endpoint=\"" << label(key.first) << "\",result=\""
        << (key.second ? "success" : "failure") << "\"} " << n << "\n";
  }
  header(out, "collectord_webhook_deliveries_total", "counter",
         "Webhook deliveries that ended, by endpoint and state (delivered or failed).");
  for (const auto& [key, n] : webhook_deliveries_) {
    out << "collectord_webhook_deliveries_total{endpoint=\"" << label(key.first)
        << "\",state=\"" << label(key.second) << "\"} " << n << "\n";
  }
  header(out, "collectord_event_streams", "gauge", "Server-Sent Event streams open now.");
  out << "collectord_event_streams " << event_streams.load() << "\n";
  header(out, "collectord_event_streams_dropped_total", "counter",
         "Event streams closed because the client read too slowly.");
  out << "collectord_event_streams_dropped_total " << event_streams_dropped.load() << "\n";
  header(out, "collectord_events_total", "counter",
         "Job and batch events published to the event streams.");
  out << "collectord_events_total " << events_published.load() << "\n";
  return out.str();
}

}  // namespace collectord
