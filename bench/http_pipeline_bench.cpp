// Is the rate limiter a bottleneck? Its cost per request, next to what it must stay small
// against: a plain hash-map lookup (the least any per-client limiter can do) and the whole
// request pipeline of a trivial route.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include "api_service.h"
#include "rate_limiter.h"

namespace collectord::http {
namespace {

constexpr int kClients = 1000;

std::vector<std::string> clientNames() {
  std::vector<std::string> names;
  for (int i = 0; i < kClients; ++i) names.push_back("key:dashboard-" + std::to_string(i));
  return names;
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void BM_BaselineMapLookup(benchmark::State& state) {
  const auto names = clientNames();
  std::unordered_map<std::string, int> map;
  for (const auto& n : names) map[n] = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(++map.find(names[i++ % names.size()])->second);
  }
}
BENCHMARK(BM_BaselineMapLookup)->Threads(1);

RateLimiter& sharedLimiter() {
  static RateLimiter limiter(1'000'000'000);
  return limiter;
}

void BM_RateLimiterCheck(benchmark::State& state) {
  const auto names = clientNames();
  RateLimiter& limiter = sharedLimiter();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  const std::int64_t now = nowMs();
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.check(names[i++ % names.size()], now));
  }
}
BENCHMARK(BM_RateLimiterCheck)->Threads(1)->Threads(2);

// The pipeline around a route whose handler does nothing, with and without the limiter.
struct PipelineFixture {
  Router router;
  Metrics metrics;
  RateLimiter limiter{1'000'000'000};
  std::unique_ptr<ApiService> service;

  explicit PipelineFixture(bool limited) {
    router.add("GET", "/api/collectors/runs/job/{job_id}", {Access::kPublic, limited},
               [](const Request&) { return Response{200, "{}", "application/json", {}}; });
    std::string error;
    service = std::make_unique<ApiService>(
        router, ApiPolicy{false, {}}, Authenticator::load(AuthSettings{}, error),
        CorsPolicy({"http://localhost:3000"}), limiter, metrics);
  }
};

void pipeline(benchmark::State& state, bool limited) {
  PipelineFixture fixture(limited);
  std::size_t i = 0;
  for (auto _ : state) {
    Request r;
    r.method = "GET";
    r.path = "/api/collectors/runs/job/ni_12345678";
    r.client = "10.0.0." + std::to_string(i++ % 250);
    r.headers = {{"Origin", "http://localhost:3000"}, {"Accept", "application/json"}};
    benchmark::DoNotOptimize(fixture.service->handle(r));
  }
}
void BM_PipelineWithoutLimiter(benchmark::State& state) { pipeline(state, false); }
void BM_PipelineWithLimiter(benchmark::State& state) { pipeline(state, true); }
BENCHMARK(BM_PipelineWithoutLimiter);
BENCHMARK(BM_PipelineWithLimiter);

}  // namespace
}  // namespace collectord::http

BENCHMARK_MAIN();
