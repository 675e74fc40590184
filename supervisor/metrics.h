#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace collectord {

// Counters and histograms the daemon exposes at /metrics, in Prometheus text format. Updated
// from any thread; cheap enough for the per-request and per-protocol-line paths.
class Metrics {
 public:
  // Upper bounds (seconds) of the run-duration histogram buckets; +Inf is implied.
  static constexpr std::array<double, 10> kDurationBuckets = {1,   5,   15,   30,   60,
                                                              300, 900, 1800, 3600, 14400};

  void jobEnded(const std::string& collector, const std::string& status, double seconds);
  void httpRequest(const std::string& route, int status);
  // One attempt to deliver a webhook to `endpoint`; `final_state` is "delivered" or "failed"
  // when the attempt ended the delivery, empty when it will be retried.
  void webhookAttempt(const std::string& endpoint, bool succeeded, const std::string& final_state);

  std::atomic<std::uint64_t> progress_lines_received{0};
  std::atomic<std::uint64_t> progress_lines_dropped{0};
  std::atomic<std::uint64_t> rate_limited{0};
  std::atomic<std::uint64_t> auth_failed{0};
  std::atomic<std::uint64_t> store_writes{0};          // transactions of job state written
  std::atomic<std::uint64_t> store_write_failures{0};  // such transactions that failed
  std::atomic<std::uint64_t> webhook_events_queued{0};  // deliveries written to the outbox
  std::atomic<std::int64_t> jobs_running{0};
  std::atomic<std::int64_t> jobs_queued{0};
  std::atomic<std::int64_t> event_streams{0};            // Server-Sent Event streams open
  std::atomic<std::uint64_t> event_streams_dropped{0};   // closed for reading too slowly
  std::atomic<std::uint64_t> events_published{0};        // job and batch events rendered

  // The whole exposition, ending with a newline.
  std::string render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kDurationBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> jobs_;  // (collector, status)
  std::map<std::string, Histogram> durations_;                         // by collector
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;      // (route, status)
  std::map<std::pair<std::string, bool>, std::uint64_t> webhook_attempts_;  // (endpoint, ok)
  // (endpoint, "delivered" or "failed")
  std::map<std::pair<std::string, std::string>, std::uint64_t> webhook_deliveries_;
};

}  // namespace collectord
