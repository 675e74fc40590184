// The live event streams (Server-Sent Events) against the real daemon over raw sockets: what a
// stream opens with, the order and exactness of its events, resuming with Last-Event-ID, the
// end after the terminal event, many streams at once on few HTTP threads, a reader that stalls,
// heartbeats, limits, credentials, CORS, shutdown and restart.

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"
#include "sse_client.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kKey = "events-test-key-0123456789abcdef";
const std::string kRunOnlyKey = "events-run-key-0123456789abcdef";

std::string batchEvents(const std::string& batch_id) {
  return "/api/collectors/runs/batch/" + batch_id + "/events";
}
std::string jobEvents(const std::string& job_id) {
  return "/api/collectors/runs/job/" + job_id + "/events";
}

std::string statusOf(const SseEvent& event) { return stringField(*event.json(), "status"); }
int progressOf(const SseEvent& event) {
  const auto json = event.json();
  return json->isNull("progress_percent") ? -1 : json->getValue<int>("progress_percent");
}
bool isTerminalStatus(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}
bool endsBatch(const SseEvent& event) {
  return event.event == "batch" && isTerminalStatus(statusOf(event));
}

// Every event has a numeric ID, each greater than the one before.
::testing::AssertionResult IdsStrictlyIncrease(const std::vector<SseEvent>& events) {
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::uint64_t id = events[i].number();
    if (id == 0)
      return ::testing::AssertionFailure() << "event " << i << " has id '" << events[i].id << "'";
    if (id <= previous) {
      return ::testing::AssertionFailure()
             << "event " << i << " has id " << id << " after " << previous;
    }
    previous = id;
  }
  return ::testing::AssertionSuccess();
}

// Each job event has the job status shape, each batch event the batch shape.
::testing::AssertionResult EventsHaveTheStatusShapes(const std::vector<SseEvent>& events) {
  for (const SseEvent& event : events) {
    ::testing::AssertionResult shape = ::testing::AssertionSuccess();
    if (event.event == "job") {
      shape = HasJobStatusShape(*event.json());
    } else if (event.event == "batch") {
      shape = HasBatchShape(*event.json());
    } else {
      return ::testing::AssertionFailure() << "unexpected event '" << event.event << "'";
    }
    if (!shape) return shape << " (event " << event.id << ")";
  }
  return ::testing::AssertionSuccess();
}

// A stream's response head: 200, the event-stream headers, no length.
::testing::AssertionResult IsEventStreamHead(const std::optional<HttpResponse>& head) {
  if (!head) return ::testing::AssertionFailure() << "no response head";
  if (head->status != 200) return ::testing::AssertionFailure() << head->describe();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Content-Type", "text/event-stream"},
      {"Cache-Control", "no-cache"},
      {"X-Accel-Buffering", "no"},
      {"Connection", "Close"}};
  for (const auto& [name, value] : expected) {
    if (head->header(name) != value) {
      return ::testing::AssertionFailure()
             << name << " is '" << head->header(name).value_or("<missing>") << "', not '" << value
             << "'";
    }
  }
  if (head->header("Content-Length")) return ::testing::AssertionFailure() << "has a length";
  return ::testing::AssertionSuccess();
}

// The value of an unlabelled sample in GET /metrics, or -1 when absent.
double metric(const HttpClient& client, const std::string& name) {
  const HttpResponse response = client.get("/metrics");
  std::istringstream lines(response.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

std::string statusLine(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

// A collector that reports the given progress values `gap` seconds apart, then completes.
std::string steppingScript(const std::vector<int>& values, const std::string& gap) {
  std::string script;
  for (int value : values) {
    script += "printf '{\"progress\": " + std::to_string(value) + ", \"message\": \"at " +
              std::to_string(value) + "\"}\\n' >&3\nsleep " + gap + "\n";
  }
  return script + "exit 0\n";
}

TEST(EventStream, ABatchStreamOpensWithTheCurrentStateAndEndsAfterTheTerminalBatchEvent) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja",
                              "wait_for_release 1\n"
                              "printf '{\"progress\": 40, \"message\": \"half\"}\\n' >&3\n"
                              "wait_for_release 2\nexit 0\n");
  config.addCollector("threatlocker", "exit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja", "threatlocker"});
  ASSERT_TRUE(waitForJob(client, run.job_ids[1], [](const Poco::JSON::Object& job) {
                return stringField(job, "status") == "completed";
              }).status == 200);

  SseStream stream(daemon.port(), batchEvents(run.batch_id));
  ASSERT_TRUE(IsEventStreamHead(stream.head()));
  // The current state first: each job, then the batch; no separate GET needed.
  std::vector<SseEvent> events =
      stream.readUntil([](const SseEvent& e) { return e.event == "batch"; });
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].event, "job");
  EXPECT_EQ(stringField(*events[0].json(), "job_id"), run.job_ids[0]);
  EXPECT_EQ(events[1].event, "job");
  EXPECT_EQ(stringField(*events[1].json(), "job_id"), run.job_ids[1]);
  EXPECT_EQ(statusOf(events[1]), "completed");
  EXPECT_EQ(stringField(*events[2].json(), "batch_id"), run.batch_id);
  EXPECT_EQ(statusOf(events[2]), "running");

  config.release("ninja", 1);
  auto more =
      stream.readUntil([](const SseEvent& e) { return e.event == "job" && progressOf(e) == 40; });
  ASSERT_FALSE(more.empty());
  config.release("ninja", 2);
  const auto rest = stream.readToClose();
  ASSERT_TRUE(rest) << "the stream stayed open after the batch ended";
  events.insert(events.end(), more.begin(), more.end());
  events.insert(events.end(), rest->begin(), rest->end());

  EXPECT_TRUE(IdsStrictlyIncrease(events));
  EXPECT_TRUE(EventsHaveTheStatusShapes(events));
  ASSERT_TRUE(endsBatch(events.back()));
  EXPECT_EQ(statusOf(events.back()), "completed");
  // The data are exactly the bodies of the status endpoints.
  EXPECT_EQ(events.back().data, client.batch(run.batch_id).body);
  const auto jobs = eventsNamed(events, "job");
  EXPECT_EQ(stringField(*jobs.back().json(), "job_id"), run.job_ids[0]);
  EXPECT_EQ(statusOf(jobs.back()), "completed");
  EXPECT_EQ(jobs.back().data, client.job(run.job_ids[0]).body);
  for (const SseEvent& event : eventsNamed(events, "batch")) {
    EXPECT_EQ(stringField(*event.json(), "batch_id"), run.batch_id);
  }
}

TEST(EventStream, ProgressArrivesInTheOrderTheCollectorWroteIt) {
  TempDir dir;
  DaemonConfig config(dir);
  const std::vector<int> written = {5, 15, 25, 35, 50, 65, 80, 95};
  // 300 ms apart: well beyond the 100 ms in which the supervisor coalesces progress writes.
  config.addBlockingCollector("ninja", "wait_for_release 1\n" + steppingScript(written, "0.3"));
  Daemon daemon(config);
  const Triggered run = triggerOrThrow(daemon.client(), {"ninja"});
  SseStream stream(daemon.port(), jobEvents(run.job_ids[0]));
  ASSERT_TRUE(IsEventStreamHead(stream.head()));
  config.release("ninja", 1);
  const auto events = stream.readToClose(20s);
  ASSERT_TRUE(events) << "the job stream did not end";
  ASSERT_FALSE(events->empty());
  EXPECT_TRUE(IdsStrictlyIncrease(*events));
  EXPECT_TRUE(EventsHaveTheStatusShapes(*events));
  std::vector<int> seen;
  for (const SseEvent& event : *events) {
    ASSERT_EQ(event.event, "job") << "a job stream carries job events only";
    EXPECT_EQ(stringField(*event.json(), "job_id"), run.job_ids[0]);
    const int progress = progressOf(event);
    if (progress > 0 && progress < 100 && (seen.empty() || seen.back() != progress)) {
      seen.push_back(progress);
    }
  }
  EXPECT_EQ(seen, written);
  EXPECT_EQ(statusOf(events->back()), "completed");
  EXPECT_EQ(progressOf(events->back()), 100);
}

TEST(EventStream, AJobStreamShowsOnlyItsJobAndEndsWithIt) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector("ninja", "wait_for_release 1\nexit 3\n");
  config.addBlockingCollector("threatlocker", "wait_for_release 1\nexit 0\n");
  Daemon daemon(config);
  const Triggered run = triggerOrThrow(daemon.client(), {"ninja", "threatlocker"});
  SseStream stream(daemon.port(), jobEvents(run.job_ids[0]));
  const auto first = stream.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->event, "job");
  config.release("threatlocker", 1);
  ASSERT_EQ(waitForBatchTerminal(daemon.client(), run.batch_id, 1s).status, 200);
  EXPECT_FALSE(stream.closed());
  config.release("ninja", 1);
  auto events = stream.readToClose();
  ASSERT_TRUE(events);
  events->insert(events->begin(), *first);
  for (const SseEvent& event : *events) {
    EXPECT_EQ(event.event, "job");
    EXPECT_EQ(stringField(*event.json(), "job_id"), run.job_ids[0]);
  }
  EXPECT_EQ(statusOf(events->back()), "failed");
  EXPECT_EQ(stringField(*events->back().json(), "error"), "exit code 3");
  EXPECT_EQ(events->back().data, daemon.client().job(run.job_ids[0]).body);
}

TEST(EventStream, ResumingWithLastEventIdReplaysExactlyTheMissedEvents) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addBlockingCollector(
      "ninja",
      "printf '{\"progress\": 10}\\n' >&3\nwait_for_release 1\n"
      "printf '{\"progress\": 40}\\n' >&3\nsleep 0.3\nprintf '{\"progress\": 50}\\n' >&3\n"
      "wait_for_release 2\nexit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja"});
  ASSERT_EQ(waitForJob(client, run.job_ids[0],
                       [](const Poco::JSON::Object& job) {
                         return jsonOf(job, "progress_percent") == "10";
                       })
                .status,
            200);
  // A witness that reads the whole time, and a client that goes away and comes back. The
  // witness's opening state is read before the other opens: each stream's opening state takes
  // new IDs, and the witness's must not come after the ID the other resumes from.
  SseStream witness(daemon.port(), batchEvents(run.batch_id));
  ASSERT_FALSE(witness.readUntil([](const SseEvent& e) { return e.event == "batch"; }).empty());
  auto leaving = std::make_unique<SseStream>(daemon.port(), batchEvents(run.batch_id));
  const auto before = leaving->readUntil([](const SseEvent& e) { return e.event == "batch"; });
  ASSERT_FALSE(before.empty());
  const std::string last_id = before.back().id;
  leaving.reset();

  config.release("ninja", 1);
  ASSERT_EQ(waitForJob(client, run.job_ids[0],
                       [](const Poco::JSON::Object& job) {
                         return jsonOf(job, "progress_percent") == "50";
                       })
                .status,
            200);
  SseStream resumed(daemon.port(), batchEvents(run.batch_id),
                    {{{"Last-Event-ID", last_id}}, std::nullopt});
  ASSERT_TRUE(IsEventStreamHead(resumed.head()));
  config.release("ninja", 2);
  const auto replayed = resumed.readToClose();
  ASSERT_TRUE(replayed) << "the resumed stream did not end with the batch";
  const auto seen = witness.readToClose();
  ASSERT_TRUE(seen);

  // Exactly what the witness got after last_id: the same IDs, the same data, in order.
  std::vector<std::pair<std::string, std::string>> expected, got;
  for (const SseEvent& e : *seen) {
    if (e.number() > std::stoull(last_id)) expected.emplace_back(e.id, e.data);
  }
  for (const SseEvent& e : *replayed) got.emplace_back(e.id, e.data);
  EXPECT_EQ(got, expected);
  std::vector<int> progress;
  for (const SseEvent& e : eventsNamed(*replayed, "job")) progress.push_back(progressOf(e));
  EXPECT_EQ(progress, (std::vector<int>{40, 50, 100}));
  EXPECT_TRUE(IdsStrictlyIncrease(*replayed));
  ASSERT_FALSE(replayed->empty());
  EXPECT_GT(replayed->front().number(), std::stoull(last_id));
}

TEST(EventStream, ResumingFromBeyondTheReplayBufferStartsWithTheCurrentState) {
  TempDir dir;
  DaemonConfig config(dir);
  // Room for one event or two: older IDs cannot be replayed.
  config.appendToMain("[events]\nreplay_buffer = 2K\n");
  config.addCollector("ninja", steppingScript({10, 20, 30, 40}, "0.15"));
  config.addBlockingCollector("threatlocker", "wait_for_release 1\nexit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();
  const Triggered first = triggerOrThrow(client, {"threatlocker"});
  SseStream early(daemon.port(), "/api/events");
  const auto opening = early.readUntil([](const SseEvent& e) { return e.event == "batch"; });
  ASSERT_EQ(opening.size(), 2u);
  const std::string old_id = opening.back().id;
  const Triggered second = triggerOrThrow(client, {"ninja"});
  ASSERT_EQ(waitForBatchTerminal(client, second.batch_id).status, 200);

  for (const std::string& last : {old_id, std::string("17"), std::string("not-a-number")}) {
    SseStream resumed(daemon.port(), jobEvents(second.job_ids[0]),
                      {{{"Last-Event-ID", last}}, std::nullopt});
    const auto events = resumed.readToClose();
    ASSERT_TRUE(events) << last;
    // The job's final state, in one event newer than anything the client had.
    ASSERT_EQ(events->size(), 1u) << last;
    EXPECT_EQ(events->front().data, client.job(second.job_ids[0]).body) << last;
    EXPECT_GT(events->front().number(), opening.back().number()) << last;
  }
  // The all-runs stream resumed from too far back: every run still going, and every run that
  // changed since, each as its jobs and then itself.
  SseStream all(daemon.port(), "/api/events", {{{"Last-Event-ID", old_id}}, std::nullopt});
  std::vector<std::string> batches;
  const auto events = all.readUntil(
      [&](const SseEvent& e) {
        if (e.event == "batch") batches.push_back(stringField(*e.json(), "batch_id"));
        return batches.size() == 2;
      },
      5s);
  // Oldest first.
  EXPECT_EQ(batches, (std::vector<std::string>{first.batch_id, second.batch_id}));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].data, client.batch(second.batch_id).body);
  EXPECT_TRUE(IdsStrictlyIncrease(events));
  config.release("threatlocker", 1);
}

TEST(EventStream, AClientThatSawTheEndIsToldWith204NotToReconnect) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  SseStream all(daemon.port(), "/api/events");
  ASSERT_TRUE(IsEventStreamHead(all.head()));
  const Triggered run = triggerOrThrow(daemon.client(), {"ninja"});
  const auto live = all.readUntil(endsBatch);
  ASSERT_FALSE(live.empty());
  ASSERT_TRUE(endsBatch(live.back()));
  SseStream stream(daemon.port(), batchEvents(run.batch_id));
  const auto events = stream.readToClose();
  ASSERT_TRUE(events) << "a stream on an ended batch sends its state and closes";
  ASSERT_EQ(events->size(), 2u);
  EXPECT_TRUE(endsBatch(events->back()));

  // What an EventSource does after the server closed: reconnect with the last ID it saw.
  SseStream again(daemon.port(), batchEvents(run.batch_id),
                  {{{"Last-Event-ID", events->back().id}}, std::nullopt});
  ASSERT_TRUE(again.head());
  EXPECT_EQ(again.head()->status, 204);
  SseStream job(daemon.port(), jobEvents(run.job_ids[0]),
                {{{"Last-Event-ID", events->back().id}}, std::nullopt});
  ASSERT_TRUE(job.head());
  EXPECT_EQ(job.head()->status, 204);
  // An ID from just before the end gets the end: the same event the live stream had.
  SseStream earlier(daemon.port(), batchEvents(run.batch_id),
                    {{{"Last-Event-ID", std::to_string(live.back().number() - 1)}}, std::nullopt});
  const auto replay = earlier.readToClose();
  ASSERT_TRUE(replay);
  ASSERT_EQ(replay->size(), 1u);
  EXPECT_EQ(replay->front().id, live.back().id);
  EXPECT_EQ(replay->front().data, live.back().data);
}

TEST(EventStream, TheAllRunsStreamCoversEveryBatchAsItHappens) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "printf '{\"progress\": 50}\\n' >&3\nexit 0\n");
  config.addCollector("threatlocker", "exit 0\n");
  Daemon daemon(config);
  SseStream stream(daemon.port(), "/api/events");
  ASSERT_TRUE(IsEventStreamHead(stream.head()));
  const Triggered a = triggerOrThrow(daemon.client(), {"ninja"});
  const Triggered b = triggerOrThrow(daemon.client(), {"threatlocker"});
  std::set<std::string> ended;
  const auto events = stream.readUntil([&](const SseEvent& e) {
    if (endsBatch(e)) ended.insert(stringField(*e.json(), "batch_id"));
    return ended.size() == 2;
  });
  EXPECT_EQ(ended, (std::set<std::string>{a.batch_id, b.batch_id}));
  EXPECT_TRUE(IdsStrictlyIncrease(events));
  EXPECT_TRUE(EventsHaveTheStatusShapes(events));
  // Each batch's life from its creation: queued first, the end last.
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(statusOf(events.front()), "queued");
  EXPECT_FALSE(stream.closed()) << "the all-runs stream never ends by itself";
}

TEST(EventStream, TwoHundredConcurrentStreamsAllReceiveTheTerminalEvent) {
  constexpr int kStreams = 200;
  TempDir dir;
  DaemonConfig config(dir);
  // Four HTTP threads for two hundred streams: a stream must not keep one.
  config.appendToMain("[http]\nthreads = 4\n");
  config.addBlockingCollector(
      "ninja",
      "wait_for_release 1\n"
      "printf '{\"progress\": 50, \"message\": \"%s\"}\\n' \"$(date +%s%N)\" >&3\n"
      "wait_for_release 2\nexit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja"});
  const int threads_before = std::stoi(statusLine(daemon.pid(), "Threads"));

  std::vector<std::unique_ptr<SseStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<SseStream>(daemon.port(), batchEvents(run.batch_id)));
  }
  std::vector<std::vector<SseEvent>> received(kStreams);
  std::vector<std::pair<std::size_t, Clock::time_point>> arrived(kStreams, {0, {}});
  // Follows every stream at once, so that each event is timed when it arrives.
  const auto pumpAll = [&](const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done() && Clock::now() < deadline) {
      std::vector<pollfd> fds;
      for (const auto& s : streams) fds.push_back({s->socket().impl()->sockfd(), POLLIN, 0});
      ::poll(fds.data(), fds.size(), 100);
      for (int i = 0; i < kStreams; ++i) {
        if (!fds[i].revents) continue;
        for (SseEvent& e : streams[i]->pump()) received[i].push_back(std::move(e));
      }
    }
    return done();
  };
  const auto allHave = [&](const std::function<bool(const SseEvent&)>& match) {
    return [&, match] {
      return std::all_of(received.begin(), received.end(), [&](const std::vector<SseEvent>& r) {
        return std::any_of(r.begin(), r.end(), match);
      });
    };
  };
  ASSERT_TRUE(pumpAll(allHave([](const SseEvent& e) { return e.event == "batch"; }), 30s))
      << "not every stream got the opening state";
  for (const auto& s : streams) ASSERT_TRUE(IsEventStreamHead(s->head(0ms)));
  // The HTTP server still answers at once: no stream holds one of its threads.
  const auto asked = Clock::now();
  EXPECT_EQ(client.get("/healthz").status, 200);
  const auto healthz_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked).count();
  EXPECT_LT(healthz_ms, 2000);
  EXPECT_EQ(metric(client, "collectord_event_streams"), kStreams);
  const int threads_streaming = std::stoi(statusLine(daemon.pid(), "Threads"));
  EXPECT_LE(threads_streaming, threads_before + 6) << "threads grew with the streams";
  const std::string rss = statusLine(daemon.pid(), "VmRSS");

  config.release("ninja", 1);
  const auto hasLine = [](const SseEvent& e) { return e.event == "job" && progressOf(e) == 50; };
  ASSERT_TRUE(pumpAll(allHave(hasLine), 30s));
  std::vector<double> latencies_ms;
  for (const auto& events : received) {
    const auto line = std::find_if(events.begin(), events.end(), hasLine);
    const long long written_ns = std::stoll(stringField(*line->json(), "message"));
    const auto received_at = std::chrono::system_clock::now() -
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 Clock::now() - line->received);
    const long long received_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(received_at.time_since_epoch())
            .count();
    latencies_ms.push_back(static_cast<double>(received_ns - written_ns) / 1e6);
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());

  config.release("ninja", 2);
  ASSERT_TRUE(pumpAll(
      [&] {
        return std::all_of(streams.begin(), streams.end(),
                           [](const auto& s) { return s->closed(); });
      },
      30s))
      << "not every stream was closed after the batch ended";
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_FALSE(received[i].empty());
    EXPECT_TRUE(endsBatch(received[i].back())) << "stream " << i;
    EXPECT_EQ(statusOf(received[i].back()), "completed") << "stream " << i;
    EXPECT_TRUE(IdsStrictlyIncrease(received[i])) << "stream " << i;
  }
  EXPECT_TRUE(waitUntil([&] { return metric(client, "collectord_event_streams") == 0; }, 5s));
  std::cout << "[ measured ] " << kStreams << " streams on 4 HTTP threads: daemon threads "
            << threads_before << " -> " << threads_streaming << ", VmRSS" << rss << ", /healthz "
            << healthz_ms << " ms; collector line to event: median "
            << latencies_ms[latencies_ms.size() / 2] << " ms, max " << latencies_ms.back()
            << " ms\n";
}

// Every dashboard reconnects at once after a restart: the connections wait in the queues for a
// thread, none is refused or reset, and none waits for its SYN to be sent again (a second).
TEST(EventStream, FiveHundredClientsConnectingAtOnceAllGetTheirStreamsPromptly) {
  constexpr int kStreams = 500;
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  std::vector<std::unique_ptr<SseStream>> streams;
  std::chrono::milliseconds slowest_connect{0};
  const auto started = Clock::now();
  for (int i = 0; i < kStreams; ++i) {
    const auto connecting = Clock::now();
    streams.push_back(std::make_unique<SseStream>(daemon.port(), "/api/events"));
    slowest_connect =
        std::max(slowest_connect,
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - connecting));
  }
  for (const auto& stream : streams) ASSERT_TRUE(IsEventStreamHead(stream->head()));
  const auto all_open =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  EXPECT_LT(slowest_connect, 900ms) << "a SYN was dropped: the listen queue overflowed";
  EXPECT_LT(all_open, 5s);
  // After the burst the daemon still stops promptly: no worker thread of the burst holds it up.
  streams.clear();
  const auto stopping = Clock::now();
  EXPECT_EQ(daemon.stop(), 0);
  const auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stopping);
  EXPECT_LT(stop_ms, 5s);
  std::cout << "[ measured ] " << kStreams << " streams opened at once in " << all_open.count()
            << " ms; slowest connect " << slowest_connect.count() << " ms; stopped in "
            << stop_ms.count() << " ms\n";
}

TEST(EventStream, AReaderThatStopsReadingIsDroppedWhileOtherStreamsAndHealthzStayResponsive) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[events]\nclient_buffer = 64K\n");
  // 30 KB messages as fast as the pipe takes them: about 600 KB of events a second per stream.
  config.addBlockingCollector("ninja", R"(
big=$(head -c 30000 /dev/zero | tr '\0' x)
i=0
while [ ! -e "$RELEASE/1" ]; do
  i=$(( (i + 1) % 100 ))
  printf '{"progress": %d, "message": "%s"}\n' "$i" "$big" >&3
  sleep 0.01
done
exit 0
)");
  Daemon daemon(config);
  const auto client = daemon.client();
  const Triggered run = triggerOrThrow(client, {"ninja"});
  // Never read: a small receive buffer, so the daemon's side fills soon.
  SseStream stalled(daemon.port(), batchEvents(run.batch_id), {{}, 4096});
  SseStream reader(daemon.port(), batchEvents(run.batch_id));
  ASSERT_TRUE(IsEventStreamHead(reader.head()));

  std::size_t read_events = 0;
  long long slowest_healthz_ms = 0;
  const auto started = Clock::now();
  bool dropped = false;
  while (!dropped && Clock::now() - started < 60s) {
    const auto events = reader.readUntil([](const SseEvent&) { return false; }, 200ms);
    read_events += events.size();
    const auto asked = Clock::now();
    ASSERT_EQ(client.get("/healthz").status, 200);
    slowest_healthz_ms = std::max<long long>(
        slowest_healthz_ms,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked).count());
    dropped = metric(client, "collectord_event_streams_dropped_total") >= 1;
  }
  const auto drop_seconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() /
      1000.0;
  ASSERT_TRUE(dropped) << "the stalled reader was never dropped";
  EXPECT_EQ(metric(client, "collectord_event_streams_dropped_total"), 1)
      << "only the stalled stream is dropped";
  EXPECT_LT(slowest_healthz_ms, 2000);
  EXPECT_GT(read_events, 10u);
  // The reader goes on getting events after the drop, and the end.
  const auto after = reader.readUntil([](const SseEvent& e) { return e.event == "job"; }, 5s);
  EXPECT_FALSE(after.empty()) << "the reading stream stalled with the other";
  config.release("ninja", 1);
  const auto rest = reader.readToClose(20s);
  ASSERT_TRUE(rest) << "the reading stream did not end with the batch";
  ASSERT_FALSE(rest->empty());
  EXPECT_TRUE(endsBatch(rest->back()));

  // The stalled client finds its stream closed once it reads what it was sent.
  std::string tail;
  bool closed = false;
  const auto deadline = Clock::now() + 10s;
  while (!closed && Clock::now() < deadline) {
    try {
      if (!stalled.socket().poll(Poco::Timespan(0, 200'000), Poco::Net::Socket::SELECT_READ))
        continue;
      char chunk[65536];
      const int n = stalled.socket().receiveBytes(chunk, sizeof chunk);
      if (n <= 0) closed = true;
      tail.append(chunk, static_cast<std::size_t>(std::max(n, 0)));
      if (tail.size() > 4096) tail.erase(0, tail.size() - 4096);
    } catch (const Poco::Exception&) {
      closed = true;  // reset
    }
  }
  EXPECT_TRUE(closed) << "the dropped stream was left open";
  std::cout << "[ measured ] stalled reader dropped after " << drop_seconds
            << " s; slowest /healthz meanwhile " << slowest_healthz_ms << " ms; "
            << (tail.find("event: dropped") != std::string::npos ? "the notice fit"
                                                                 : "the notice did not fit")
            << "\n";
}

// CPU time (user + system) the process has used so far.
std::chrono::milliseconds cpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::vector<std::string> values{std::istream_iterator<std::string>(fields), {}};
  const long ticks = std::stol(values.at(11)) + std::stol(values.at(12));  // utime, stime
  return std::chrono::milliseconds(ticks * 1000 / ::sysconf(_SC_CLK_TCK));
}

TEST(EventStream, AReaderThatReadsNothingForFourHeartbeatsIsDroppedAndCostsNothingMeanwhile) {
  TempDir dir;
  DaemonConfig config(dir);
  // A buffer far larger than the run's events: only the time it reads nothing counts.
  config.appendToMain("[events]\nheartbeat_seconds = 2\nclient_buffer = 64M\n");
  config.addCollector("ninja", R"(
big=$(head -c 60000 /dev/zero | tr '\0' x)
i=0
while [ $i -lt 20 ]; do
  i=$((i + 1))
  printf '{"progress": %d, "message": "%s"}\n' "$i" "$big" >&3
  sleep 0.12
done
)");
  Daemon daemon(config);
  const auto client = daemon.client();
  SseStream reader(daemon.port(), "/api/events");
  ASSERT_TRUE(IsEventStreamHead(reader.head()));
  const Triggered run = triggerOrThrow(client, {"ninja"});
  const auto opened = Clock::now();
  SseStream stalled(daemon.port(), batchEvents(run.batch_id), {{}, 4096});
  // The reader gets the whole run, the end included, while the other reads nothing.
  const auto events = reader.readUntil(endsBatch, 20s);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(endsBatch(events.back()));
  EXPECT_EQ(metric(client, "collectord_event_streams_dropped_total"), 0);

  // Its stream has ended with bytes still waiting for it: nothing to do but wait for the client
  // or the stall limit: no CPU spent, also once a heartbeat would have been due, and the stall
  // check still comes. (Measuring an interval, not waiting for an event.)
  std::this_thread::sleep_until(events.back().received + 2200ms);
  const auto cpu_before = cpuTime(daemon.pid());
  std::this_thread::sleep_for(2s);
  const auto cpu_spent = cpuTime(daemon.pid()) - cpu_before;
  EXPECT_LT(cpu_spent, 300ms) << "the daemon spins while a stalled stream waits";

  ASSERT_TRUE(waitUntil(
      [&] { return metric(client, "collectord_event_streams_dropped_total") == 1; }, 20s));
  const auto dropped_after = Clock::now() - opened;
  EXPECT_GE(dropped_after, 8s) << "dropped before reading nothing for four heartbeats";
  EXPECT_NE(daemon.logText().find("dropped: it read nothing for 8 s"), std::string::npos);
  EXPECT_TRUE(waitUntil([&] { return metric(client, "collectord_event_streams") == 1; }));
}

TEST(EventStream, AnIdleStreamGetsHeartbeatComments) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[events]\nheartbeat_seconds = 1\n");
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  SseStream stream(daemon.port(), "/api/events");
  ASSERT_TRUE(IsEventStreamHead(stream.head()));
  const auto opened = Clock::now();
  EXPECT_TRUE(stream.readUntil([](const SseEvent&) { return false; }, 3500ms).empty());
  ASSERT_GE(stream.comments().size(), 2u);
  ASSERT_LE(stream.comments().size(), 4u);
  EXPECT_GE(stream.comments()[0] - opened, 700ms);
  EXPECT_GE(stream.comments()[1] - stream.comments()[0], 700ms);
  EXPECT_FALSE(stream.closed());
}

TEST(EventStream, StreamsBeyondMaxStreamsAreRefusedWith503UntilOneCloses) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[events]\nmax_streams = 2\n");
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  auto one = std::make_unique<SseStream>(daemon.port(), "/api/events");
  SseStream two(daemon.port(), "/api/events");
  ASSERT_TRUE(IsEventStreamHead(one->head()));
  ASSERT_TRUE(IsEventStreamHead(two.head()));
  SseStream three(daemon.port(), "/api/events");
  ASSERT_TRUE(three.head());
  EXPECT_TRUE(IsErrorResponse(*three.head(), 503,
                              "Too many event streams are open (events.max_streams = 2); try "
                              "again later, or poll the status"));
  EXPECT_EQ(three.head()->header("Retry-After"), "5");
  one.reset();
  EXPECT_TRUE(waitUntil([&] {
    SseStream again(daemon.port(), "/api/events");
    return again.head() && again.head()->status == 200;
  }));
}

TEST(EventStream, UnknownIdsAnswer404Json) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();
  EXPECT_TRUE(IsErrorResponse(client.get(batchEvents("bc_00000000")), 404, "Batch not found"));
  EXPECT_TRUE(IsErrorResponse(client.get(batchEvents("nonsense")), 404, "Batch not found"));
  EXPECT_TRUE(IsErrorResponse(client.get(jobEvents("ni_00000000")), 404, "Job not found"));
  EXPECT_TRUE(IsErrorResponse(client.get(jobEvents("x")), 404, "Job not found"));
  EXPECT_EQ(client.post("/api/events", "{}").status, 405);
}

TEST(EventStream, StreamsNeedReadCredentialsCountOnlyTheirOpeningRequestAndCarryCors) {
  TempDir dir;
  DaemonConfig config(dir);
  writeFile(dir.file("api_keys"), kKey + " read,run\n" + kRunOnlyKey + " run\n", 0600);
  config.appendToMain(
      "[auth]\nrequired = true\napi_keys_file = api_keys\n"
      "[ratelimit]\nrequests_per_minute = 3\n"
      "[cors]\nallowed_origins = http://localhost:3000\n");
  config.addCollector("ninja", "printf '{\"progress\": 50}\\n' >&3\nexit 0\n");
  Daemon daemon(config);
  const auto client = daemon.client();

  SseStream anonymous(daemon.port(), "/api/events");
  ASSERT_TRUE(anonymous.head());
  EXPECT_EQ(anonymous.head()->status, 401);
  SseStream runner(daemon.port(), "/api/events", {apiKeyHeader(kRunOnlyKey), std::nullopt});
  ASSERT_TRUE(runner.head());
  EXPECT_EQ(runner.head()->status, 403);

  SseStream stream(daemon.port(), "/api/events",
                   {{{"X-API-Key", kKey}, {"Origin", "http://localhost:3000"}}, std::nullopt});
  ASSERT_TRUE(IsEventStreamHead(stream.head()));
  EXPECT_EQ(stream.head()->header("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(stream.head()->header("Access-Control-Allow-Credentials"), "true");
  EXPECT_EQ(stream.head()->header("X-RateLimit-Remaining"), "2");
  // Many events over the open stream, and the key still has its remaining requests.
  const auto keyed = client.withHeaders(apiKeyHeader(kKey));
  const Triggered run = triggerOrThrow(keyed, {"ninja"});  // not rate limited
  const auto events = stream.readUntil(endsBatch);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(endsBatch(events.back()));
  EXPECT_GE(events.size(), 4u);
  EXPECT_EQ(keyed.batch(run.batch_id).header("X-RateLimit-Remaining"), "1");
  EXPECT_EQ(keyed.batch(run.batch_id).header("X-RateLimit-Remaining"), "0");
  SseStream limited(daemon.port(), batchEvents(run.batch_id), {apiKeyHeader(kKey), std::nullopt});
  ASSERT_TRUE(limited.head());
  EXPECT_EQ(limited.head()->status, 429);
  EXPECT_FALSE(stream.closed());
}

TEST(EventStream, StoppingTheDaemonSendsTheCancelledStateThenCloses) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[collectors]\nshutdown_grace = 5s\n");
  config.addBlockingCollector("ninja", "printf '{\"progress\": 30}\\n' >&3\nwait_for_release 1\n");
  Daemon daemon(config);
  const Triggered run = triggerOrThrow(daemon.client(), {"ninja"});
  SseStream stream(daemon.port(), batchEvents(run.batch_id));
  ASSERT_FALSE(stream.readUntil([](const SseEvent& e) { return progressOf(e) == 30; }).empty());
  EXPECT_EQ(daemon.stop(), 0);
  const auto events = stream.readToClose(5s);
  ASSERT_TRUE(events) << "the stream outlived the daemon";
  ASSERT_FALSE(events->empty());
  EXPECT_TRUE(endsBatch(events->back()));
  EXPECT_EQ(statusOf(events->back()), "cancelled");
}

TEST(EventStream, EventIdsKeepGrowingAcrossARestart) {
  TempDir dir;
  DaemonConfig config(dir);
  config.addCollector("ninja", "exit 0\n");
  std::string batch_id;
  std::uint64_t last = 0;
  {
    Daemon daemon(config);
    // Open first: /api/events starts with what is active, and the run may be over before a
    // stream opened after the trigger gets there.
    SseStream stream(daemon.port(), "/api/events");
    ASSERT_TRUE(IsEventStreamHead(stream.head()));  // the hub has the stream
    batch_id = triggerOrThrow(daemon.client(), {"ninja"}).batch_id;
    const auto events = stream.readUntil(endsBatch);
    ASSERT_FALSE(events.empty());
    last = events.back().number();
  }
  Daemon daemon(config);
  // An ID from the last run: the hub cannot replay it, so the final state comes again.
  SseStream stream(daemon.port(), batchEvents(batch_id),
                   {{{"Last-Event-ID", std::to_string(last)}}, std::nullopt});
  const auto events = stream.readToClose();
  ASSERT_TRUE(events);
  ASSERT_FALSE(events->empty());
  EXPECT_TRUE(endsBatch(events->back()));
  EXPECT_GT(events->front().number(), last);
}

TEST(EventStreamConfig, InvalidEventsKeysAreReportedWithFileAndKey) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain(
      "[events]\nheartbeat_seconds = 0\nmax_streams = lots\n"
      "client_buffer = 1K\nreplay_buffer = huge\nbacklog = 3\n");
  const RunResult result = runCollectord({"--check-config", "--config=" + config.mainPath()});
  EXPECT_EQ(result.exit_code, 1);
  const std::string file = config.mainPath();
  for (const std::string& line :
       {file + ": events.backlog: unknown key",
        file + ": events.heartbeat_seconds: '0' is not a whole number from 1 to 3600",
        file + ": events.max_streams: 'lots' is not a whole number from 1 to 100000",
        file + ": events.client_buffer: must be from 4K to 1G",
        file + ": events.replay_buffer: invalid size 'huge' (use e.g. 512M, 2G, 1048576)"}) {
    EXPECT_NE(result.err.find(line + "\n"), std::string::npos) << line << "\n" << result.err;
  }
}

}  // namespace
}  // namespace collectord::test
