#include "supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>

#include <Poco/Logger.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "child_process.h"
#include "ids.h"
#include "job_log.h"
#include "job_state.h"
#include "time_format.h"

namespace collectord {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// Protocol warnings written to one job's log; a collector spewing garbage must not fill a disk.
constexpr int kMaxWarningsPerJob = 1000;
// What one drain after exit reads at most, should a grandchild keep writing.
constexpr std::size_t kMaxDrainBytes = 16 * 1024 * 1024;
constexpr auto kStoreRetryDelay = std::chrono::seconds(1);
constexpr auto kCommandTimeout = std::chrono::seconds(30);
constexpr auto kLogSweepInterval = std::chrono::hours(1);

Micros toMicros(std::chrono::milliseconds d) { return d.count() * 1000; }

int priorityRank(Priority p) { return static_cast<int>(p); }  // high < normal < low

// Runs `work` on the supervision thread and waits for its result (or exception).
template <typename Result, typename Work>
Result onThread(asio::io_context& io, Work work) {
  auto task = std::make_shared<std::packaged_task<Result()>>(std::move(work));
  auto result = task->get_future();
  asio::post(io, [task] { (*task)(); });
  if (result.wait_for(kCommandTimeout) != std::future_status::ready) {
    throw StoreError("the supervisor did not answer within 30 s");
  }
  return result.get();
}

}  // namespace

struct Supervisor::Impl {
  // One of a child's pipes, read asynchronously until EOF.
  struct Pipe {
    std::vector<char> buffer;
    bool reading = false;  // an async read is outstanding
  };

  // A job of an active batch. Lives on the supervision thread until its batch is terminal and
  // written to the store.
  struct Job {
    Job(JobRecord record, std::shared_ptr<const CollectorConfig> config, int pos)
        : sm(std::move(record)), collector(std::move(config)), position(pos) {}
    JobStateMachine sm;
    std::shared_ptr<const CollectorConfig> collector;  // null if no longer configured
    int position;                                       // in its batch
    std::unique_ptr<ChildProcess> child;
    std::unique_ptr<JobLog> log;
    Pipe progress, output;
    std::string partial;      // an incomplete protocol line
    bool discarding = false;  // inside an over-long line, dropping until its newline
    std::optional<int> wait_status;
    std::uint64_t line_no = 0;
    int warnings = 0;
    Clock::time_point last_progress;
    std::unique_ptr<asio::steady_timer> timeout_timer, stall_timer, kill_timer, retry_timer;
    std::vector<AttemptRecord> unsaved_attempts;
  };
  struct Batch {
    BatchRecord record;
    std::vector<std::string> job_ids;  // trigger order
  };

  Impl(Config cfg, JobStore& job_store, SupervisorOptions opts, Metrics* m)
      : store(job_store), options(opts), metrics(m ? *m : own_metrics) {
    applyConfig(std::move(cfg));
  }

  JobStore& store;
  SupervisorOptions options;
  Metrics own_metrics;  // used when the owner passes none
  Metrics& metrics;
  Poco::Logger& log = Poco::Logger::get("collectord.supervisor");
  IdGenerator ids;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> accepting{false};

  mutable std::mutex config_mutex;
  std::shared_ptr<const Config> current_config;  // guarded by config_mutex; replaced on reload

  // Owned by the supervision thread.
  std::map<std::string, std::shared_ptr<const CollectorConfig>> collectors;
  std::map<std::string, std::unique_ptr<Job>> jobs;
  std::map<std::string, Batch> batches;
  std::set<std::string> dirty_jobs;
  std::set<std::string> dirty_batches;
  asio::steady_timer flush_timer{io};
  bool flush_armed = false;
  asio::steady_timer sweep_timer{io};
  struct ScheduledCollector {
    std::unique_ptr<asio::steady_timer> timer;
    Micros next = 0;
  };
  std::map<std::string, ScheduledCollector> schedules;
  bool stopping = false;
  std::unique_ptr<asio::steady_timer> shutdown_timer;
  std::function<void()> on_drained;

  std::shared_ptr<const Config> config() const {
    std::lock_guard lock(config_mutex);
    return current_config;
  }

  void applyConfig(Config cfg) {
    auto shared = std::make_shared<const Config>(std::move(cfg));
    collectors.clear();
    for (const CollectorConfig& c : shared->collectors) {
      collectors[c.name] = std::shared_ptr<const CollectorConfig>(shared, &c);
    }
    std::lock_guard lock(config_mutex);
    current_config = std::move(shared);
  }

  std::shared_ptr<const CollectorConfig> collectorConfig(const std::string& name) const {
    const auto it = collectors.find(name);
    return it == collectors.end() ? nullptr : it->second;
  }

  Job* findJob(const std::string& id) {
    const auto it = jobs.find(id);
    return it == jobs.end() ? nullptr : it->second.get();
  }

  std::string logPath(const std::string& job_id) const {
    return config()->logs_directory + "/" + job_id + ".log";
  }

  // ---- triggers ----------------------------------------------------------------------------

  Job* activeJobOf(const std::string& collector) {
    Job* newest = nullptr;
    for (auto& [id, job] : jobs) {
      const JobRecord& r = job->sm.record();
      if (r.collector != collector || isTerminal(r.status)) continue;
      if (!newest || r.started_at > newest->sm.record().started_at) newest = job.get();
    }
    return newest;
  }

  TriggerResult createBatch(const std::vector<std::string>& names, Priority priority) {
    if (stopping) throw ShuttingDownError("collectord is shutting down");
    const Micros now = nowMicros();
    std::vector<std::optional<JobRecord>> skipped(names.size());
    std::vector<std::string> fresh;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto c = collectorConfig(names[i]);
      Job* active = c && c->overlap == CollectorConfig::Overlap::kSkip ? activeJobOf(names[i]) : nullptr;
      if (active) {
        skipped[i] = active->sm.record();
      } else {
        fresh.push_back(names[i]);
      }
    }
    TriggerResult result;
    if (fresh.empty()) {
      result.batch = batches.at(skipped.front()->batch_id).record;
    } else {
      result.batch = insertNewBatch(fresh, priority, now);
      result.created = true;
    }
    std::size_t next_new = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (skipped[i]) {
        result.jobs.push_back(*skipped[i]);
        result.skipped.push_back(true);
        log.information("trigger of %s skipped: job %s is active (overlap = skip)", names[i],
                        skipped[i]->job_id);
      } else {
        const Batch& b = batches.at(result.batch.batch_id);
        result.jobs.push_back(findJob(b.job_ids[next_new++])->sm.record());
        result.skipped.push_back(false);
      }
    }
    if (result.created) asio::post(io, [this] { dispatch(); });
    return result;
  }

  BatchRecord insertNewBatch(const std::vector<std::string>& names, Priority priority, Micros now) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      BatchRecord batch;
      batch.batch_id = ids.batchId();
      batch.priority = priority;
      batch.started_at = batch.updated_at = now;
      std::vector<JobRecord> records;
      std::set<std::string> seen;
      for (const std::string& name : names) {
        const auto c = collectorConfig(name);
        JobRecord job;
        job.job_id = ids.jobId(name);
        job.batch_id = batch.batch_id;
        job.collector = name;
        job.job_name = c ? c->job_name : name + "-collector";
        job.max_attempts = c ? c->retries + 1 : 1;
        job.started_at = job.updated_at = now;
        seen.insert(job.job_id);
        records.push_back(std::move(job));
      }
      if (seen.size() != records.size()) continue;  // two new jobs drew the same ID
      std::vector<const JobRecord*> views;
      for (const JobRecord& j : records) views.push_back(&j);
      rollUpBatch(batch, views);
      if (!store.insertBatch(batch, records)) continue;

      Batch& active = batches[batch.batch_id];
      active.record = batch;
      for (std::size_t i = 0; i < records.size(); ++i) {
        active.job_ids.push_back(records[i].job_id);
        const std::string id = records[i].job_id;
        jobs[id] = std::make_unique<Job>(std::move(records[i]), collectorConfig(names[i]),
                                         static_cast<int>(i));
      }
      log.information("batch %s triggered (%s priority): %s", batch.batch_id,
                      std::string(toString(priority)), describe(active.job_ids));
      return batch;
    }
    throw StoreError("could not allocate unique batch and job IDs");
  }

  std::string describe(const std::vector<std::string>& job_ids) {
    std::string out;
    for (const std::string& id : job_ids) out += (out.empty() ? "" : ", ") + id;
    return out;
  }

  // ---- the queue ---------------------------------------------------------------------------

  // Starts queued jobs, by priority then age, while the node and collector limits allow.
  void dispatch() {
    if (stopping) return;
    const auto cfg = config();
    const Micros now = nowMicros();
    int running = 0;
    std::map<std::string, int> running_by_collector;
    std::vector<Job*> ready;
    for (auto& [id, job] : jobs) {
      if (job->child) {
        ++running;
        ++running_by_collector[job->sm.record().collector];
      }
      const JobRecord& r = job->sm.record();
      if (r.status == JobStatus::kQueued && (!r.next_attempt_at || *r.next_attempt_at <= now)) {
        ready.push_back(job.get());
      }
    }
    std::sort(ready.begin(), ready.end(), [this](const Job* a, const Job* b) {
      const JobRecord& ra = a->sm.record();
      const JobRecord& rb = b->sm.record();
      const int pa = priorityRank(batches.at(ra.batch_id).record.priority);
      const int pb = priorityRank(batches.at(rb.batch_id).record.priority);
      return std::tie(pa, ra.started_at, ra.batch_id, a->position) <
             std::tie(pb, rb.started_at, rb.batch_id, b->position);
    });
    for (Job* job : ready) {
      if (running >= cfg->max_concurrent) break;
      if (!job->collector) {
        fail(*job, "collector '" + job->sm.record().collector + "' is no longer configured");
        continue;
      }
      int& of_collector = running_by_collector[job->sm.record().collector];
      if (of_collector >= job->collector->effectiveConcurrency()) continue;
      if (spawn(*job)) {
        ++running;
        ++of_collector;
      }
    }
    updateGauges();
  }

  // ---- running a job -----------------------------------------------------------------------

  // The child's whole environment. `env.NAME = @file:/path` is read now, at spawn time, so a
  // rotated secret takes effect on the next run and never sits in the configuration; false
  // with `error` when such a file cannot be read.
  bool environmentFor(const Job& job, std::vector<std::string>& env, std::string& error) const {
    env = baseEnvironment(job);
    for (const auto& [name, value] : job.collector->env) {
      if (value.rfind("@file:", 0) != 0) {
        env.push_back(name + "=" + value);
        continue;
      }
      const std::string path = value.substr(6);
      std::ifstream in(path, std::ios::binary);
      std::ostringstream text;
      if (!in || !(text << in.rdbuf())) {
        error = "cannot read env." + name + " from " + path + ": " + std::strerror(errno);
        return false;
      }
      std::string secret = text.str();
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
      env.push_back(name + "=" + secret);
    }
    return true;
  }

  std::vector<std::string> baseEnvironment(const Job& job) const {
    std::vector<std::string> env;
    auto inherit = [&env](const char* name, const char* fallback) {
      const char* value = ::getenv(name);
      if (value) {
        env.push_back(std::string(name) + "=" + value);
      } else if (fallback) {
        env.push_back(std::string(name) + "=" + fallback);
      }
    };
    inherit("PATH", "/usr/local/bin:/usr/bin:/bin");
    inherit("HOME", nullptr);
    inherit("LANG", nullptr);
    const JobRecord& r = job.sm.record();
    env.push_back("COLLECTOR_PROGRESS_FD=" + std::to_string(kProgressFd));
    env.push_back("COLLECTOR_JOB_ID=" + r.job_id);
    env.push_back("COLLECTOR_BATCH_ID=" + r.batch_id);
    env.push_back("COLLECTOR_NAME=" + r.collector);
    env.push_back("COLLECTOR_ATTEMPT=" + std::to_string(r.attempt));
    return env;
  }

  // Fills the request's account and limits; false with `error` when the account is unusable.
  bool identityFor(const CollectorConfig& c, SpawnRequest& request, std::string& error) const {
    if (!c.user.empty()) {
      const passwd* pw = ::getpwnam(c.user.c_str());
      if (!pw) {
        error = "no such user '" + c.user + "'";
        return false;
      }
      request.uid = pw->pw_uid;
      request.gid = pw->pw_gid;
    }
    if (!c.group.empty()) {
      const group* gr = ::getgrnam(c.group.c_str());
      if (!gr) {
        error = "no such group '" + c.group + "'";
        return false;
      }
      request.gid = gr->gr_gid;
    }
    if ((request.uid || request.gid) && ::geteuid() != 0) {
      error = "collector.user and collector.group need collectord to run as root";
      return false;
    }
    request.nice = c.nice;
    request.memory_limit = c.memory_limit;
    if (c.cpu_limit) request.cpu_seconds = std::max<std::uint64_t>(1, c.cpu_limit->count() / 1000);
    request.max_open_files = c.max_open_files;
    return true;
  }

  bool spawn(Job& job) {
    const CollectorConfig& c = *job.collector;
    const std::string& job_id = job.sm.record().job_id;
    if (c.type == CollectorConfig::Type::kPlugin) {
      fail(job, "plugin collectors are not supported yet");
      return false;
    }
    const auto cfg = config();
    job.log = std::make_unique<JobLog>(logPath(job_id), cfg->log_max_bytes_per_job);
    std::string error;
    if (!job.log->open(error)) {
      fail(job, error);
      return false;
    }
    SpawnRequest request{c.command, c.args, c.working_directory, {}};
    if (!environmentFor(job, request.environment, error) || !identityFor(c, request, error)) {
      job.log->write("[collectord] cannot start: " + error + "\n");
      fail(job, "failed to start: " + error);
      return false;
    }
    job.child = ChildProcess::spawn(io, request, error);
    if (!job.child) {
      job.log->write("[collectord] failed to start " + c.command + ": " + error + "\n");
      fail(job, "failed to start: " + error);
      return false;
    }
    const int pid = job.child->pid();
    const JobRecord& r = job.sm.record();
    job.sm.start(pid, nowMicros());
    job.log->write("[collectord] attempt " + std::to_string(r.attempt) + " of " +
                   std::to_string(r.max_attempts) + ": started " + c.command + " as pid " +
                   std::to_string(pid) + "\n");
    log.information("job %s (%s) started, pid %d, attempt %d", job_id, c.name, pid, r.attempt);
    job.wait_status.reset();
    job.partial.clear();
    job.discarding = false;
    job.line_no = 0;
    job.last_progress = Clock::now();
    markDirty(job);
    scheduleFlush();

    readPipe(job, job.progress, job.child->progress(), true);
    readPipe(job, job.output, job.child->output(), false);
    job.child->asyncWait([this, &job](int status) { onChildExit(job, status); });
    armRunTimers(job);
    return true;
  }

  // ---- timers: timeout, stall, kill grace, retry backoff -------------------------------------

  // A timer's handler runs later, possibly after its job is gone or has moved to another
  // attempt: it captures the ID and attempt, never the job itself.
  template <typename Fn>
  void arm(std::unique_ptr<asio::steady_timer>& timer, Clock::duration after, const Job& job, Fn fn) {
    if (!timer) timer = std::make_unique<asio::steady_timer>(io);
    timer->expires_after(after);
    timer->async_wait([this, id = job.sm.record().job_id, attempt = job.sm.record().attempt,
                       fn](const boost::system::error_code& ec) {
      if (ec) return;
      Job* j = findJob(id);
      if (j && j->sm.record().attempt == attempt) fn(*j);
    });
  }

  void armRunTimers(Job& job) {
    const CollectorConfig& c = *job.collector;
    if (c.timeout) {
      const std::string reason = "timed out after " + formatDurationSpec(*c.timeout);
      arm(job.timeout_timer, *c.timeout, job, [this, reason](Job& j) { kill(j, reason, false); });
    }
    if (c.stall_timeout) armStall(job, *c.stall_timeout);
  }

  // Fires when no progress line came for stall_timeout; progress only moves the deadline, so a
  // flood of lines costs no timer operations.
  void armStall(Job& job, Clock::duration after) {
    arm(job.stall_timer, after, job, [this](Job& j) {
      if (!j.child || !j.collector->stall_timeout) return;
      const auto limit = *j.collector->stall_timeout;
      const auto quiet = Clock::now() - j.last_progress;
      if (quiet < limit) return armStall(j, limit - quiet);
      kill(j, "no progress for " + formatDurationSpec(limit), false);
    });
  }

  // Ends a running job's process group: SIGTERM, then SIGKILL after the grace period.
  void kill(Job& job, const std::string& reason, bool cancel) {
    if (!job.child) return;
    const bool first = cancel ? job.sm.requestCancel(reason, nowMicros()) : job.sm.requestKill(reason);
    if (!first) return;
    const auto grace = stopping ? config()->shutdown_grace : job.collector->kill_grace;
    job.log->write("[collectord] " + reason + ": sending SIGTERM to the process group\n");
    log.information("job %s: %s; SIGTERM", job.sm.record().job_id, reason);
    job.child->signalGroup(SIGTERM);
    arm(job.kill_timer, grace, job, [this](Job& j) {
      if (!j.child) return;
      j.log->write("[collectord] still running after the grace period: sending SIGKILL\n");
      log.warning("job %s ignored SIGTERM: SIGKILL", j.sm.record().job_id);
      j.child->signalGroup(SIGKILL);
    });
  }

  std::optional<Micros> retryDelay(const Job& job) const {
    if (!job.collector || job.collector->retries == 0) return std::nullopt;
    const CollectorConfig& c = *job.collector;
    Micros delay = toMicros(c.retry_backoff);
    for (int i = 1; i < job.sm.record().attempt && delay < toMicros(c.retry_backoff_max); ++i) {
      delay *= 2;
    }
    return std::min(delay, toMicros(c.retry_backoff_max));
  }

  void armRetry(Job& job) {
    const JobRecord& r = job.sm.record();
    if (r.status != JobStatus::kQueued || !r.next_attempt_at) return;
    const Micros wait = std::max<Micros>(0, *r.next_attempt_at - nowMicros());
    arm(job.retry_timer, std::chrono::microseconds(wait), job, [this](Job&) { dispatch(); });
  }

  void cancelTimers(Job& job) {
    for (auto* timer : {&job.timeout_timer, &job.stall_timer, &job.kill_timer}) {
      if (*timer) (*timer)->cancel();
    }
  }

  void fail(Job& job, const std::string& error) {
    job.sm.setRetryDelay(retryDelay(job));
    if (!job.sm.fail(error, nowMicros())) return;
    log.warning("job %s: %s", job.sm.record().job_id, error);
    afterRun(job);
  }

  // ---- the pipes -----------------------------------------------------------------------------

  void readPipe(Job& job, Pipe& pipe, asio::posix::stream_descriptor& fd, bool progress) {
    if (pipe.buffer.empty()) pipe.buffer.resize(kReadChunk);
    pipe.reading = true;
    fd.async_read_some(asio::buffer(pipe.buffer), [this, &job, &pipe, &fd, progress](
                                                      const boost::system::error_code& ec,
                                                      std::size_t n) {
      pipe.reading = false;
      if (n > 0) deliver(job, progress, pipe.buffer.data(), n);
      if (ec == asio::error::operation_aborted || (!ec && job.wait_status)) {
        drainAndClose(job, pipe, fd, progress);  // the child exited: read what is left
      } else if (ec) {
        if (ec != asio::error::eof) job.log->write("[collectord] pipe error: " + ec.message() + "\n");
        close(job, fd, progress);
      } else {
        return readPipe(job, pipe, fd, progress);
      }
      maybeFinish(job);
    });
  }

  void deliver(Job& job, bool progress, const char* data, std::size_t n) {
    if (progress) {
      consume(job, data, n);
    } else {
      job.log->write(std::string_view(data, n));
    }
  }

  void drainAndClose(Job& job, Pipe& pipe, asio::posix::stream_descriptor& fd, bool progress) {
    std::size_t total = 0;
    while (fd.is_open() && total < kMaxDrainBytes) {
      const ssize_t n = ::read(fd.native_handle(), pipe.buffer.data(), pipe.buffer.size());
      if (n > 0) {
        deliver(job, progress, pipe.buffer.data(), static_cast<std::size_t>(n));
        total += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EOF, EAGAIN (a grandchild still holds the pipe) or an error
    }
    close(job, fd, progress);
  }

  void close(Job& job, asio::posix::stream_descriptor& fd, bool progress) {
    if (progress) {
      if (!job.partial.empty() && !job.discarding) handleLine(job, job.partial);  // no newline
      job.partial.clear();
    }
    boost::system::error_code ignored;
    fd.close(ignored);
  }

  void consume(Job& job, const char* data, std::size_t n) {
    std::size_t start = 0;
    while (start < n) {
      const void* found = std::memchr(data + start, '\n', n - start);
      if (!found) {
        const std::size_t tail = n - start;
        if (job.discarding) return;
        if (job.partial.size() + tail > kMaxProtocolLine) {
          startDiscarding(job);
        } else {
          job.partial.append(data + start, tail);
        }
        return;
      }
      const std::size_t len = static_cast<const char*>(found) - (data + start);
      if (job.discarding) {
        job.discarding = false;  // the newline that ends the over-long line
      } else if (job.partial.empty()) {
        handleLine(job, std::string_view(data + start, len));
      } else if (job.partial.size() + len > kMaxProtocolLine) {
        startDiscarding(job);
        job.discarding = false;
      } else {
        job.partial.append(data + start, len);
        handleLine(job, job.partial);
        job.partial.clear();
      }
      start += len + 1;
    }
  }

  void startDiscarding(Job& job) {
    ++job.line_no;
    warn(job, "longer than " + std::to_string(kMaxProtocolLine) + " bytes; ignored");
    job.partial.clear();
    job.discarding = true;
  }

  void handleLine(Job& job, std::string_view line) {
    ++job.line_no;
    ++metrics.progress_lines_received;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    ParsedLine parsed = parseProgressLine(line);
    if (auto* error = std::get_if<ProtocolError>(&parsed)) return warn(job, error->reason);
    job.last_progress = Clock::now();
    if (job.sm.report(std::get<ProgressUpdate>(parsed), nowMicros())) {
      markDirty(job);
      scheduleFlush();
    }
  }

  void warn(Job& job, const std::string& reason) {
    ++job.warnings;
    ++metrics.progress_lines_dropped;
    if (job.warnings < kMaxWarningsPerJob) {
      job.log->write("[collectord] protocol warning: line " + std::to_string(job.line_no) + ": " +
                     reason + "\n");
    } else if (job.warnings == kMaxWarningsPerJob) {
      job.log->write("[collectord] protocol warning: too many invalid lines; no more are logged\n");
    }
  }

  // ---- the end of a run --------------------------------------------------------------------

  void onChildExit(Job& job, int wait_status) {
    job.wait_status = wait_status;
    // Pending reads are cancelled; their handlers drain what is left and finish the job.
    for (auto* fd : {&job.child->progress(), &job.child->output()}) {
      if (fd->is_open()) fd->cancel();
    }
    maybeFinish(job);
  }

  void maybeFinish(Job& job) {
    if (!job.child || !job.wait_status || job.progress.reading || job.output.reading) return;
    if (job.child->progress().is_open() || job.child->output().is_open()) return;
    const ExitStatus status = exitStatusFromWait(*job.wait_status);
    const int pid = job.child->pid();
    // Nothing of a finished run may keep running: take down what is left of its group.
    if (job.child->signalGroup(SIGKILL)) {
      job.log->write("[collectord] killed processes left in the job's process group\n");
    }
    // A limit the kernel enforces by signal is named, not just the signal.
    if (status.signaled && status.code == SIGXCPU && job.collector->cpu_limit) {
      job.sm.requestKill("cpu_limit of " + formatDurationSpec(*job.collector->cpu_limit) +
                         " exceeded (killed by signal 24 (SIGXCPU))");
    }
    job.sm.setRetryDelay(retryDelay(job));
    job.sm.exited(status, nowMicros());
    const JobRecord& r = job.sm.record();
    job.log->write("[collectord] " + status.describe() + "; job " + std::string(toString(r.status)) +
                   (r.error ? ": " + *r.error : std::string()) +
                   (r.status == JobStatus::kQueued ? ": " + r.message.value_or("") : std::string()) +
                   "\n");
    log.information("job %s (%s) %s, pid %d: %s", r.job_id, r.collector,
                    std::string(toString(r.status)), pid, status.describe());
    job.child.reset();
    cancelTimers(job);
    afterRun(job);
  }

  // Whatever ended a run (exit, spawn failure, cancel of a queued job): persist, retry or
  // record the outcome, and let the queue move.
  void afterRun(Job& job) {
    if (job.log) job.log->close();
    for (AttemptRecord& a : job.sm.takeNewAttempts()) job.unsaved_attempts.push_back(std::move(a));
    recordEnd(job);
    armRetry(job);
    markDirty(job);
    flush();
    if (stopping) {
      checkDrained();
    } else {
      asio::post(io, [this] { dispatch(); });
    }
  }

  // ---- cancel ------------------------------------------------------------------------------

  CancelOutcome cancel(Job& job) {
    const JobRecord& r = job.sm.record();
    if (isTerminal(r.status)) return CancelOutcome::kAlreadyTerminal;
    if (job.child) {
      kill(job, "cancelled by request", true);
      return CancelOutcome::kCancelling;
    }
    job.sm.requestCancel("cancelled by request", nowMicros());
    if (job.retry_timer) job.retry_timer->cancel();
    log.information("job %s cancelled while queued", r.job_id);
    afterRun(job);
    return CancelOutcome::kCancelled;
  }

  CancelOutcome cancelJob(const std::string& job_id) {
    if (Job* job = findJob(job_id)) return cancel(*job);
    return store.findJob(job_id) ? CancelOutcome::kAlreadyTerminal : CancelOutcome::kNotFound;
  }

  CancelOutcome cancelBatch(const std::string& batch_id) {
    const auto it = batches.find(batch_id);
    if (it == batches.end()) {
      return store.findBatch(batch_id) ? CancelOutcome::kAlreadyTerminal : CancelOutcome::kNotFound;
    }
    CancelOutcome outcome = CancelOutcome::kAlreadyTerminal;
    for (const std::string& id : std::vector<std::string>(it->second.job_ids)) {
      Job* job = findJob(id);
      if (!job) continue;
      const CancelOutcome one = cancel(*job);
      if (one == CancelOutcome::kCancelling) outcome = one;
      if (one == CancelOutcome::kCancelled && outcome == CancelOutcome::kAlreadyTerminal) outcome = one;
    }
    return outcome;
  }

  // ---- persistence -------------------------------------------------------------------------

  void recordEnd(const Job& job) {
    const JobRecord& r = job.sm.record();
    if (!isTerminal(r.status)) return;
    metrics.jobEnded(r.collector, std::string(toString(r.status)),
                     durationSeconds(r.started_at, r.ended_at).value_or(0));
  }

  void updateGauges() {
    std::int64_t running = 0, queued = 0;
    for (const auto& [id, job] : jobs) {
      if (job->sm.record().status == JobStatus::kRunning) ++running;
      if (job->sm.record().status == JobStatus::kQueued) ++queued;
    }
    metrics.jobs_running = running;
    metrics.jobs_queued = queued;
  }

  void markDirty(Job& job) {
    dirty_jobs.insert(job.sm.record().job_id);
    dirty_batches.insert(job.sm.record().batch_id);
  }

  void scheduleFlush(Clock::duration delay) {
    if (flush_armed) return;
    flush_armed = true;
    flush_timer.expires_after(delay);
    flush_timer.async_wait([this](const boost::system::error_code& ec) {
      flush_armed = false;
      if (!ec) flush();
    });
  }
  void scheduleFlush() { scheduleFlush(options.flush_interval); }

  // Writes every dirty job and its batch in one transaction; on failure keeps them dirty and
  // tries again later, so a passing store fault loses nothing.
  void flush() {
    if (dirty_jobs.empty() && dirty_batches.empty()) return;
    std::vector<JobRecord> job_rows;
    std::vector<BatchRecord> batch_rows;
    std::vector<std::pair<std::string, AttemptRecord>> attempt_rows;
    for (const std::string& id : dirty_jobs) {
      if (Job* job = findJob(id)) {
        job_rows.push_back(job->sm.record());
        for (const AttemptRecord& a : job->unsaved_attempts) attempt_rows.emplace_back(id, a);
      }
    }
    for (const std::string& id : dirty_batches) {
      const auto it = batches.find(id);
      if (it == batches.end()) continue;
      rollUp(it->second);
      batch_rows.push_back(it->second.record);
    }
    try {
      store.save(job_rows, batch_rows, attempt_rows);
    } catch (const StoreError& e) {
      log.error("cannot write job state, retrying: %s", std::string(e.what()));
      if (flush_armed) flush_timer.cancel();
      flush_armed = false;
      scheduleFlush(kStoreRetryDelay);
      return;
    }
    for (const std::string& id : dirty_jobs) {
      if (Job* job = findJob(id)) job->unsaved_attempts.clear();
    }
    dirty_jobs.clear();
    for (const std::string& id : dirty_batches) retireIfDone(id);
    dirty_batches.clear();
    updateGauges();
  }

  void rollUp(Batch& batch) {
    std::vector<const JobRecord*> views;
    for (const std::string& id : batch.job_ids) views.push_back(&jobs.at(id)->sm.record());
    rollUpBatch(batch.record, views);
  }

  void retireIfDone(const std::string& batch_id) {
    const auto it = batches.find(batch_id);
    if (it == batches.end() || !isTerminal(it->second.record.status)) return;
    for (const std::string& id : it->second.job_ids) {
      const auto job = jobs.find(id);
      if (job != jobs.end() && job->second->child) return;  // still reaping
    }
    log.information("batch %s %s", batch_id, std::string(toString(it->second.record.status)));
    for (const std::string& id : it->second.job_ids) jobs.erase(id);
    batches.erase(it);
  }

  // ---- housekeeping --------------------------------------------------------------------------

  // Deletes job logs older than logs.retention_days, then again every hour.
  void sweepLogs() {
    const auto cfg = config();
    if (cfg->log_retention_days > 0) {
      namespace fs = std::filesystem;
      const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24) * cfg->log_retention_days;
      std::error_code ec;
      int removed = 0;
      for (const auto& entry : fs::directory_iterator(cfg->logs_directory, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() != 15 || name.compare(11, 4, ".log") != 0) continue;  // "ni_12345678.log"
        if (findJob(name.substr(0, 11))) continue;
        std::error_code time_ec;
        if (entry.last_write_time(time_ec) < cutoff && !time_ec && fs::remove(entry.path(), time_ec)) {
          ++removed;
        }
      }
      if (removed > 0) log.information("removed %d job logs older than %d days", removed, cfg->log_retention_days);
    }
    sweep_timer.expires_after(kLogSweepInterval);
    sweep_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) sweepLogs();
    });
  }

  // ---- schedules ---------------------------------------------------------------------------

  // (Re)arms a timer per scheduled collector. A slot missed while collectord was down fires
  // once now, not once per missed slot.
  void armSchedules() {
    for (auto& [name, s] : schedules) s.timer->cancel();
    schedules.clear();
    const Micros now = nowMicros();
    for (const auto& [name, c] : collectors) {
      if (!c->schedule) continue;
      std::optional<Micros> last;
      try {
        last = store.lastScheduledRun(name);
      } catch (const StoreError& e) {
        log.error("schedule of %s: %s", name, std::string(e.what()));
      }
      const Micros next = last ? c->schedule->next(*last) : c->schedule->next(now);
      armSchedule(name, std::max(next, now));
      if (last && next <= now) {
        log.information("schedule of %s missed a run while collectord was down: running now", name);
      }
    }
  }

  void armSchedule(const std::string& name, Micros at) {
    ScheduledCollector& s = schedules[name];
    if (!s.timer) s.timer = std::make_unique<asio::steady_timer>(io);
    s.next = at;
    s.timer->expires_after(std::chrono::microseconds(std::max<Micros>(0, at - nowMicros())));
    s.timer->async_wait([this, name](const boost::system::error_code& ec) {
      if (!ec) fireSchedule(name);
    });
  }

  void fireSchedule(const std::string& name) {
    const auto c = collectorConfig(name);
    if (stopping || !c || !c->schedule) return;
    const Micros now = nowMicros();
    try {
      store.recordScheduledRun(name, now);
      const TriggerResult result = createBatch({name}, Priority::kNormal);
      log.information("schedule %s of %s: %s", c->schedule->describe(), name,
                      result.created ? "batch " + result.batch.batch_id
                                     : std::string("skipped, a run is active"));
    } catch (const StoreError& e) {
      log.error("schedule of %s could not start a run: %s", name, std::string(e.what()));
    }
    armSchedule(name, c->schedule->next(now));
  }

  std::vector<CollectorState> collectorStates() {
    std::map<std::string, CollectorState> states;
    for (const auto& [name, c] : collectors) states[name].name = name;
    for (const auto& [name, s] : schedules) {
      if (states.count(name)) states[name].next_scheduled_at = s.next;
    }
    std::map<std::string, Micros> newest;
    for (const auto& [id, job] : jobs) {
      const JobRecord& r = job->sm.record();
      auto it = states.find(r.collector);
      if (it == states.end() || isTerminal(r.status)) continue;
      (r.status == JobStatus::kRunning ? it->second.running : it->second.queued)++;
      if (!newest.count(r.collector) || r.started_at >= newest[r.collector]) {
        newest[r.collector] = r.started_at;
        it->second.active_job_id = r.job_id;
      }
    }
    std::vector<CollectorState> out;
    for (auto& [name, state] : states) out.push_back(std::move(state));
    return out;
  }

  // ---- start and stop ----------------------------------------------------------------------

  void recover() {
    const std::vector<JobRecord> active = store.activeJobs();
    const Micros now = nowMicros();
    for (const JobRecord& left : active) {
      if (batches.count(left.batch_id)) continue;
      const auto batch = store.findBatch(left.batch_id);
      if (!batch) {
        log.error("job %s refers to missing batch %s", left.job_id, left.batch_id);
        continue;
      }
      Batch& b = batches[left.batch_id];
      b.record = *batch;
      int position = 0;
      for (JobRecord& r : store.jobsOfBatch(left.batch_id)) {
        b.job_ids.push_back(r.job_id);
        const std::string id = r.job_id;
        const auto collector = collectorConfig(r.collector);
        jobs[id] = std::make_unique<Job>(std::move(r), collector, position++);
        Job& j = *jobs[id];
        if (j.sm.record().status == JobStatus::kRunning) {
          if (j.sm.record().pid) {
            const int killed = killLeftoverProcesses(*j.sm.record().pid, id);
            if (killed > 0) log.warning("killed %d leftover processes of job %s", killed, id);
          }
          j.sm.setRetryDelay(retryDelay(j));
          j.sm.fail("supervisor restarted while the job was running", now);
          for (AttemptRecord& a : j.sm.takeNewAttempts()) j.unsaved_attempts.push_back(std::move(a));
          recordEnd(j);
          log.warning("job %s was running when the previous instance stopped: %s", id,
                      std::string(toString(j.sm.record().status)));
          markDirty(j);
        }
        if (j.sm.record().status == JobStatus::kQueued) {
          log.information("job %s was queued when the previous instance stopped", id);
          armRetry(j);
        }
      }
      dirty_batches.insert(left.batch_id);
    }
    flush();
    asio::post(io, [this] { dispatch(); });
  }

  void beginStop(std::function<void()> done) {
    stopping = true;
    for (auto& [name, s] : schedules) s.timer->cancel();
    on_drained = std::move(done);
    int running = 0;
    for (auto& [id, job] : jobs) {
      if (!job->child) continue;
      ++running;
      kill(*job, "supervisor shutting down", true);
    }
    if (running > 0) {
      log.information("stopping: sent SIGTERM to %d running jobs; SIGKILL after %s", running,
                      formatDurationSpec(config()->shutdown_grace));
    }
    checkDrained();
  }

  void checkDrained() {
    for (const auto& [id, job] : jobs) {
      if (job->child) return;
    }
    flush();
    if (auto done = std::move(on_drained)) {
      on_drained = nullptr;
      done();
    }
  }
};

Supervisor::Supervisor(Config config, JobStore& store, SupervisorOptions options,
                       Metrics* metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, options, metrics)) {}

Supervisor::~Supervisor() { stop(); }

bool Supervisor::accepting() const { return impl_->accepting; }

std::shared_ptr<const Config> Supervisor::config() const { return impl_->config(); }

void Supervisor::start() {
  std::error_code ec;
  std::filesystem::create_directories(impl_->config()->logs_directory, ec);
  impl_->recover();  // before the thread exists: nothing else touches the state yet
  impl_->sweepLogs();
  impl_->armSchedules();
  impl_->work.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([this] {
    for (;;) {
      try {
        impl_->io.run();
        return;
      } catch (const std::exception& e) {
        // A broken invariant in one handler must not end supervision of every other job.
        impl_->log.critical("supervision thread: %s", std::string(e.what()));
      }
    }
  });
  impl_->accepting = true;
}

void Supervisor::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->accepting = false;
  std::promise<void> drained;
  auto done = drained.get_future();
  asio::post(impl_->io, [this, &drained] { impl_->beginStop([&drained] { drained.set_value(); }); });
  // Children get shutdown_grace to exit, then SIGKILL, which cannot be ignored.
  if (done.wait_for(impl_->config()->shutdown_grace + std::chrono::seconds(10)) !=
      std::future_status::ready) {
    impl_->log.error("stopping: jobs did not end after SIGKILL; giving up on them");
  }
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->on_drained = nullptr;
}

TriggerResult Supervisor::trigger(const std::vector<std::string>& collectors, Priority priority) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  return onThread<TriggerResult>(impl_->io, [this, collectors, priority] {
    return impl_->createBatch(collectors, priority);
  });
}

CancelOutcome Supervisor::cancelJob(const std::string& job_id) {
  return onThread<CancelOutcome>(impl_->io, [this, job_id] { return impl_->cancelJob(job_id); });
}

CancelOutcome Supervisor::cancelBatch(const std::string& batch_id) {
  return onThread<CancelOutcome>(impl_->io, [this, batch_id] { return impl_->cancelBatch(batch_id); });
}

void Supervisor::reload(Config config) {
  onThread<bool>(impl_->io, [this, &config] {
    impl_->applyConfig(std::move(config));
    impl_->armSchedules();
    impl_->dispatch();
    return true;
  });
}

std::vector<CollectorState> Supervisor::collectorStates() {
  return onThread<std::vector<CollectorState>>(impl_->io, [this] { return impl_->collectorStates(); });
}

}  // namespace collectord
