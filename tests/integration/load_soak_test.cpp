// Load and soak: 200 dashboards poll batch status, job status and the latest runs on keep-alive
// connections, every 50-100 ms (the seed's 5-10 s, sped up a hundredfold), while a feeder
// triggers 1,000 short jobs (max_concurrent 16) spread over the run, and one greedy client
// hammers the API from 8 connections. Each client connects from its own loopback address
// (127.0.0.N), so the rate limiter sees 201 clients. Asserted: no 5xx, no failed connection or
// exchange, the polite clients never limited, the greedy one limited with Retry-After, every job
// completed with its last progress line, and the daemon's resident memory flat after a warm-up.
//
// COLLECTORD_SOAK_SECONDS (default 60), COLLECTORD_SOAK_JOBS (1000) and
// COLLECTORD_SOAK_CLIENTS (200) size the run; the long soak is COLLECTORD_SOAK_SECONDS=600.

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Per client and minute. A polite client sends at most 3 requests every 50 ms (3,600 a minute);
// the greedy one, never pausing on 8 connections, passes this within seconds.
constexpr int kRequestsPerMinute = 4000;
constexpr int kGreedyConnections = 8;
constexpr const char* kGreedyAddress = "127.0.0.250";
constexpr std::int64_t kRssSlackKb = 5 * 1024;

// Five progress lines a tenth of a second apart, then the end; the last message names the job
// so that the store can be checked line for line.
constexpr const char* kShortCollector = R"sh(
for p in 10 30 50 70 90; do
  printf '{"progress": %d, "message": "step %d of 5"}\n' $p $((p / 20 + 1)) >&3
  sleep 0.1
done
printf '{"status": "completed", "progress": 100, "message": "collected %s"}\n' "$COLLECTOR_JOB_ID" >&3
)sh";

const std::vector<std::string> kCollectors = {"alpha", "bravo", "charlie", "delta"};

int envInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

// What every client counts. Atomic: 200 threads add to it.
struct Tally {
  std::atomic<std::int64_t> requests{0};
  std::atomic<std::int64_t> ok{0};             // 200
  std::atomic<std::int64_t> server_errors{0};  // 5xx
  std::atomic<std::int64_t> limited{0};        // 429
  std::atomic<std::int64_t> limited_without_retry_after{0};
  std::atomic<std::int64_t> other_status{0};  // anything else
  std::atomic<std::int64_t> failed_connects{0};
  std::atomic<std::int64_t> broken_exchanges{0};  // reset, cut short or timed out
  std::atomic<std::int64_t> connections{0};       // opened
  std::atomic<std::int64_t> latency_us_max{0};
  std::mutex mutex;
  std::vector<std::string> samples;  // a few failures to show; guarded by mutex

  void note(const std::string& what) {
    std::lock_guard lock(mutex);
    if (samples.size() < 10) samples.push_back(what);
  }
  std::string describe() {
    std::ostringstream out;
    out << requests << " requests: " << ok << " ok, " << limited << " limited (429), "
        << server_errors << " 5xx, " << other_status << " other; " << connections
        << " connections, " << failed_connects << " failed connects, " << broken_exchanges
        << " broken exchanges; slowest " << latency_us_max / 1000 << " ms";
    std::lock_guard lock(mutex);
    for (const std::string& s : samples) out << "\n  " << s;
    return out.str();
  }
};

// One status line and the headers that matter; the body is read and dropped. Parsing JSON here
// would cost this process more CPU than the daemon spends answering.
struct Answer {
  int status = 0;
  bool close = false;
  std::optional<std::string> retry_after;
};

// An HTTP/1.1 keep-alive connection from a fixed loopback source address, reopened (from the
// same address) whenever the server ends it.
class KeepAliveClient {
 public:
  KeepAliveClient(std::string source, int port, Tally& tally)
      : source_(std::move(source)), port_(port), tally_(tally) {}

  // GET `path`; nullopt (counted) when no whole response came back.
  std::optional<Answer> get(const std::string& path) {
    if (!socket_ && !open()) return std::nullopt;
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";
    const auto started = Clock::now();
    ++tally_.requests;
    std::optional<Answer> answer;
    std::string failure;
    try {
      sendAll(request);
      answer = readAnswer(failure);
    } catch (const Poco::Exception& e) {
      failure = e.displayText();
    }
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
    std::int64_t seen = tally_.latency_us_max;
    while (us > seen && !tally_.latency_us_max.compare_exchange_weak(seen, us)) {
    }
    if (!answer) {
      ++tally_.broken_exchanges;
      tally_.note(source_ + " GET " + path + ": " + failure);
      socket_.reset();
      return std::nullopt;
    }
    if (answer->close) socket_.reset();
    return answer;
  }

 private:
  bool open() {
    try {
      Poco::Net::StreamSocket socket(Poco::Net::SocketAddress::IPv4);
      socket.impl()->bind(Poco::Net::SocketAddress(source_, 0), true);
      socket.connect(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)),
                     Poco::Timespan(10, 0));
      socket.setReceiveTimeout(Poco::Timespan(10, 0));
      socket.setSendTimeout(Poco::Timespan(10, 0));
      socket.setNoDelay(true);
      socket_ = socket;
      ++tally_.connections;
      return true;
    } catch (const Poco::Exception& e) {
      ++tally_.failed_connects;
      tally_.note(source_ + " connect: " + e.displayText());
      return false;
    }
  }

  void sendAll(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const int n = socket_->sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent));
      if (n <= 0) throw Poco::Net::NetException("send returned " + std::to_string(n));
      sent += static_cast<std::size_t>(n);
    }
  }

  std::optional<Answer> readAnswer(std::string& failure) {
    std::string data = std::move(leftover_);
    leftover_.clear();
    std::size_t head_end = std::string::npos;
    char buffer[16384];
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const int n = socket_->receiveBytes(buffer, sizeof buffer);
      if (n <= 0) {
        failure = "closed before the headers (" + std::to_string(data.size()) + " bytes)";
        return std::nullopt;
      }
      data.append(buffer, static_cast<std::size_t>(n));
    }
    Answer answer;
    std::istringstream head(data.substr(0, head_end));
    std::string line, version;
    std::getline(head, line);
    std::istringstream status_line(line);
    status_line >> version >> answer.status;
    std::size_t length = 0;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (name == "content-length") length = std::stoul(value);
      if (name == "connection" && (value == "close" || value == "Close")) answer.close = true;
      if (name == "retry-after") answer.retry_after = value;
    }
    const std::size_t total = head_end + 4 + length;
    while (data.size() < total) {
      const int n = socket_->receiveBytes(buffer, sizeof buffer);
      if (n <= 0) {
        failure = "closed inside the body";
        return std::nullopt;
      }
      data.append(buffer, static_cast<std::size_t>(n));
    }
    leftover_ = data.substr(total);
    return answer;
  }

  std::string source_;
  int port_;
  Tally& tally_;
  std::optional<Poco::Net::StreamSocket> socket_;
  std::string leftover_;
};

// Counts one answer into `tally`.
void count(const std::optional<Answer>& answer, const std::string& what, Tally& tally) {
  if (!answer) return;
  if (answer->status == 200) {
    ++tally.ok;
  } else if (answer->status == 429) {
    ++tally.limited;
    const std::string value = answer->retry_after.value_or("");
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(value) < 1) {
      ++tally.limited_without_retry_after;
    }
  } else if (answer->status >= 500) {
    ++tally.server_errors;
    tally.note(what + ": " + std::to_string(answer->status));
  } else {
    ++tally.other_status;
    tally.note(what + ": " + std::to_string(answer->status));
  }
}

// The batches triggered so far, newest last; clients poll one of the newest.
class BatchBoard {
 public:
  void add(const Triggered& t) {
    std::lock_guard lock(mutex_);
    all_.push_back(t);
  }
  std::optional<Triggered> pickRecent(std::mt19937& rng) {
    std::lock_guard lock(mutex_);
    if (all_.empty()) return std::nullopt;
    const std::size_t window = std::min<std::size_t>(all_.size(), 20);
    return all_[all_.size() - 1 - std::uniform_int_distribution<std::size_t>(0, window - 1)(rng)];
  }
  std::vector<Triggered> all() {
    std::lock_guard lock(mutex_);
    return all_;
  }

 private:
  std::mutex mutex_;
  std::vector<Triggered> all_;  // guarded by mutex_
};

// The daemon's resident set in kB, from /proc/PID/status; 0 when it cannot be read.
std::int64_t residentKb(pid_t pid) {
  const auto status = readFile("/proc/" + std::to_string(pid) + "/status");
  if (!status) return 0;
  const auto at = status->find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::atoll(status->c_str() + at + 6);
}

std::string join(const std::vector<std::int64_t>& values) {
  std::string out;
  for (std::int64_t v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
  return out;
}

TEST(LoadSoak, TwoHundredPollingClientsSeeNoErrorWhileAThousandJobsRunAndMemoryStaysFlat) {
  const auto duration = std::chrono::seconds(envInt("COLLECTORD_SOAK_SECONDS", 60));
  const int total_jobs = envInt("COLLECTORD_SOAK_JOBS", 1000);
  const int client_count = std::min(envInt("COLLECTORD_SOAK_CLIENTS", 200), 240);
  ::signal(SIGPIPE, SIG_IGN);

  TempDir dir;
  DaemonConfig config(dir);
  config.replaceMain(
      "[http]\nport = 0\n"
      "[store]\nurl = sqlite:collectord.db\n"
      "[logs]\ndirectory = logs\n"
      "[auth]\nrequired = false\n"
      "[collectors]\nmax_concurrent = 16\n"
      // The event streams' replay buffer is memory held on purpose, up to its bound (8 MiB by
      // default), and fills over the first thousands of events: a small bound fills during the
      // warm-up, so that what the flat-memory check sees is growth without a bound.
      "[events]\nreplay_buffer = 256K\n"
      "[ratelimit]\nrequests_per_minute = " +
      std::to_string(kRequestsPerMinute) + "\n");
  for (const std::string& name : kCollectors) {
    config.addCollector(name, kShortCollector, {{"overlap", "parallel"}, {"concurrency", "16"}});
  }
  Daemon daemon(config);
  const int port = daemon.port();
  const HttpClient feeder_client = daemon.client();

  std::atomic<bool> stop{false};
  BatchBoard board;
  Tally polite, greedy;

  // The feeder: batches of every collector, spread over the first three quarters of the run.
  // A trigger waits for the supervision thread, which shares two cores with everything here: on
  // a slow machine the feeder falls behind its plan, and then triggers the rest at once. Every
  // batch is triggered, and the clients poll until the last one is (see below).
  const int batches = (total_jobs + static_cast<int>(kCollectors.size()) - 1) /
                      static_cast<int>(kCollectors.size());
  const auto feed_for = duration * 3 / 4;
  std::atomic<int> trigger_failures{0};
  std::vector<std::int64_t> trigger_ms;  // the feeder's only
  std::thread feeder([&] {
    const auto started = Clock::now();
    for (int i = 0; i < batches; ++i) {
      std::this_thread::sleep_until(started + feed_for * i / batches);
      const auto sent = Clock::now();
      try {
        board.add(triggerOrThrow(feeder_client, kCollectors));
      } catch (const std::exception& e) {
        ++trigger_failures;
        polite.note(std::string("trigger: ") + e.what());
      }
      trigger_ms.push_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent).count());
    }
  });

  // Resident memory once a second.
  std::vector<std::int64_t> rss;
  std::thread sampler([&] {
    auto next = Clock::now();
    while (!stop) {
      rss.push_back(residentKb(daemon.pid()));
      next += 1s;
      std::this_thread::sleep_until(next);
    }
  });

  std::vector<std::thread> clients;
  for (int i = 0; i < client_count; ++i) {
    clients.emplace_back([&, i] {
      std::mt19937 rng(static_cast<unsigned>(i));
      KeepAliveClient http("127.0.0." + std::to_string(2 + i), port, polite);
      std::uniform_int_distribution<int> pause(50, 100);
      // Not all at once: dashboards open at different moments.
      std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
      while (!stop) {
        if (const auto target = board.pickRecent(rng)) {
          const std::string batch = "/api/collectors/runs/batch/" + target->batch_id;
          count(http.get(batch), batch, polite);
          const std::string job =
              "/api/collectors/runs/job/" + target->job_ids[rng() % target->job_ids.size()];
          count(http.get(job), job, polite);
        }
        count(http.get("/api/collectors/runs/latest"), "latest", polite);
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
      }
    });
  }
  for (int i = 0; i < kGreedyConnections; ++i) {
    clients.emplace_back([&, i] {
      std::mt19937 rng(static_cast<unsigned>(1000 + i));
      KeepAliveClient http(kGreedyAddress, port, greedy);
      while (!stop) {
        const auto target = board.pickRecent(rng);
        const std::string path = target ? "/api/collectors/runs/batch/" + target->batch_id
                                        : std::string("/api/collectors/runs/latest");
        count(http.get(path), path, greedy);
      }
    });
  }

  std::this_thread::sleep_for(duration);
  feeder.join();
  stop = true;
  sampler.join();
  for (std::thread& t : clients) t.join();

  // Every job ends, with its last line as written, in the API and in the store.
  const std::vector<Triggered> triggered = board.all();
  EXPECT_EQ(trigger_failures, 0);
  EXPECT_EQ(static_cast<int>(triggered.size()), batches);
  int completed = 0;
  for (const Triggered& t : triggered) {
    const HttpResponse batch = waitForBatchTerminal(feeder_client, t.batch_id, 120s);
    ASSERT_EQ(stringField(*batch.object(), "status"), "completed") << batch.describe();
    for (const std::string& id : t.job_ids) {
      const HttpResponse job = feeder_client.job(id);
      const auto object = job.object();
      ASSERT_TRUE(object) << job.describe();
      EXPECT_EQ(stringField(*object, "status"), "completed") << job.describe();
      EXPECT_EQ(object->getValue<int>("progress_percent"), 100) << job.describe();
      EXPECT_EQ(stringField(*object, "message"), "collected " + id) << job.describe();
      if (stringField(*object, "message") == "collected " + id) ++completed;
    }
  }
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session store("SQLite", config.dbPath());
  int stored_done = 0;
  store << "SELECT COUNT(*) FROM job_runs WHERE status = 'completed' AND progress_percent = 100 "
           "AND message = 'collected ' || job_id",
      Poco::Data::Keywords::into(stored_done), Poco::Data::Keywords::now;
  EXPECT_EQ(stored_done, batches * static_cast<int>(kCollectors.size()));

  const std::string polite_summary = polite.describe();
  const std::string greedy_summary = greedy.describe();
  EXPECT_EQ(polite.server_errors, 0) << polite_summary;
  EXPECT_EQ(polite.failed_connects, 0) << polite_summary;
  EXPECT_EQ(polite.broken_exchanges, 0) << polite_summary;
  EXPECT_EQ(polite.other_status, 0) << polite_summary;
  EXPECT_EQ(polite.limited, 0) << "a polite client was rate limited: " << polite_summary;
  EXPECT_GT(polite.ok, 0);
  EXPECT_EQ(greedy.server_errors, 0) << greedy_summary;
  EXPECT_EQ(greedy.failed_connects, 0) << greedy_summary;
  EXPECT_EQ(greedy.broken_exchanges, 0) << greedy_summary;
  EXPECT_GT(greedy.limited, 0) << "the greedy client was never limited: " << greedy_summary;
  EXPECT_EQ(greedy.limited_without_retry_after, 0) << greedy_summary;
  EXPECT_GE(greedy.ok, kRequestsPerMinute) << greedy_summary;

  // Flat memory: after the warm-up, the last third's peak is within kRssSlackKb of the first's.
  const std::size_t warm_up = std::max<std::size_t>(10, rss.size() / 6);
  ASSERT_GE(rss.size(), warm_up + 9) << "too few samples: " << join(rss);
  const std::vector<std::int64_t> settled(rss.begin() + static_cast<long>(warm_up), rss.end());
  const std::size_t third = settled.size() / 3;
  const std::int64_t first_peak = *std::max_element(settled.begin(), settled.begin() + third);
  const std::int64_t last_peak = *std::max_element(settled.end() - third, settled.end());
  EXPECT_LE(last_peak, first_peak + kRssSlackKb) << "VmRSS kB once a second: " << join(rss);

  std::sort(trigger_ms.begin(), trigger_ms.end());
  std::cout << "[ soak     ] " << duration.count() << " s, " << client_count
            << " polite clients + 1 greedy (" << kGreedyConnections << " connections), "
            << completed << " jobs completed\n"
            << "[ soak     ] polite: " << polite_summary << "\n"
            << "[ soak     ] greedy: " << greedy_summary << "\n"
            << "[ soak     ] served " << (polite.requests + greedy.requests) / duration.count()
            << " requests/s; VmRSS kB first-third peak " << first_peak << ", last-third peak "
            << last_peak << "; samples: " << join(rss) << "\n"
            << "[ soak     ] trigger ms: median " << trigger_ms[trigger_ms.size() / 2] << ", p90 "
            << trigger_ms[trigger_ms.size() * 9 / 10] << ", max " << trigger_ms.back()
            << std::endl;
}

}  // namespace
}  // namespace collectord::test
