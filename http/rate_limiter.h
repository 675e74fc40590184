#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace collectord::http {

// Requests per client per minute, in fixed one-minute windows that start at a client's first
// request. Sharded so that request threads rarely wait on each other; memory is bounded by
// expiring idle clients and by a cap on how many are tracked at once.
class RateLimiter {
 public:
  struct Decision {
    bool allowed;
    int limit;
    int remaining;
    int reset_seconds;  // until the client's window ends
  };

  explicit RateLimiter(int per_minute, std::size_t max_clients = 100'000);

  // Counts one request of `client` at `now_ms` (a monotonic clock in milliseconds).
  Decision check(const std::string& client, std::int64_t now_ms);
  int limit() const { return limit_; }
  // Clients currently tracked (for tests and metrics).
  std::size_t trackedClients();

 private:
  struct Window {
    std::int64_t start_ms;
    int count;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Window> windows;  // guarded by mutex
  };
  static constexpr std::size_t kShards = 16;
  static constexpr std::int64_t kWindowMs = 60'000;

  void evict(Shard& shard, std::int64_t now_ms);

  int limit_;
  std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace collectord::http
