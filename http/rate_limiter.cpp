#include "rate_limiter.h"

#include <algorithm>
#include <functional>

namespace collectord::http {

RateLimiter::RateLimiter(int per_minute, std::size_t max_clients)
    : limit_(per_minute), max_per_shard_(std::max<std::size_t>(1, max_clients / kShards)) {}

RateLimiter::Decision RateLimiter::check(const std::string& client, std::int64_t now_ms) {
  Shard& shard = shards_[std::hash<std::string>{}(client) % kShards];
  std::lock_guard lock(shard.mutex);
  auto it = shard.windows.find(client);
  if (it == shard.windows.end()) {
    if (shard.windows.size() >= max_per_shard_) evict(shard, now_ms);
    it = shard.windows.emplace(client, Window{now_ms, 0}).first;
  } else if (now_ms - it->second.start_ms >= kWindowMs) {
    it->second = Window{now_ms, 0};
  }
  Window& w = it->second;
  const bool allowed = w.count < limit_;
  if (allowed) ++w.count;
  const std::int64_t left_ms = std::max<std::int64_t>(0, w.start_ms + kWindowMs - now_ms);
  return Decision{allowed, limit_, std::max(0, limit_ - w.count),
                  static_cast<int>((left_ms + 999) / 1000)};
}

void RateLimiter::evict(Shard& shard, std::int64_t now_ms) {
  std::erase_if(shard.windows,
                [now_ms](const auto& entry) { return now_ms - entry.second.start_ms >= kWindowMs; });
  if (shard.windows.size() < max_per_shard_) return;
  // Still full of active clients: forget the one whose window started first.
  auto oldest = std::min_element(shard.windows.begin(), shard.windows.end(),
                                 [](const auto& a, const auto& b) {
                                   return a.second.start_ms < b.second.start_ms;
                                 });
  shard.windows.erase(oldest);
}

std::size_t RateLimiter::trackedClients() {
  std::size_t n = 0;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.windows.size();
  }
  return n;
}

}  // namespace collectord::http
