#include "supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>

#include <Poco/Logger.h>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "child_process.h"
#include "ids.h"
#include "job_state.h"
#include "time_format.h"
#include "unique_fd.h"

namespace collectord {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// Protocol warnings written to one job's log; a collector spewing garbage must not fill a disk.
constexpr int kMaxWarningsPerJob = 1000;
// What one drain after exit reads at most, should a grandchild keep writing.
constexpr std::size_t kMaxDrainBytes = 16 * 1024 * 1024;
constexpr auto kStoreRetryDelay = std::chrono::seconds(1);
constexpr auto kTriggerTimeout = std::chrono::seconds(30);

}  // namespace

struct Supervisor::Impl {
  // A job of an active batch. Lives on the supervision thread until its batch is terminal
  // and written to the store.
  struct Job {
    Job(JobRecord record, const CollectorConfig* config) : sm(std::move(record)), collector(config) {}
    JobStateMachine sm;
    const CollectorConfig* collector;  // into Impl::config; null if no longer configured
    std::unique_ptr<ChildProcess> child;
    UniqueFd log_fd;
    std::vector<char> buffer;
    std::string partial;      // an incomplete protocol line
    bool discarding = false;  // inside an over-long line, dropping until its newline
    bool reading = false;     // an async read of the progress pipe is outstanding
    std::optional<int> wait_status;
    std::uint64_t line_no = 0;
    int warnings = 0;
  };
  struct Batch {
    BatchRecord record;
    std::vector<std::string> job_ids;  // trigger order
  };

  Impl(Config cfg, JobStore& job_store, SupervisorOptions opts, Metrics* m)
      : config(std::move(cfg)), store(job_store), options(opts), metrics(m ? *m : own_metrics) {}

  Config config;
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

  // Owned by the supervision thread.
  std::map<std::string, std::unique_ptr<Job>> jobs;
  std::map<std::string, Batch> batches;
  std::set<std::string> dirty_jobs;
  std::set<std::string> dirty_batches;
  asio::steady_timer flush_timer{io};
  bool flush_armed = false;
  bool stopping = false;
  asio::steady_timer kill_timer{io};
  std::function<void()> on_drained;

  // ---- batches and jobs ------------------------------------------------------------------

  TriggerResult createBatch(const std::vector<std::string>& names, Priority priority) {
    if (stopping) throw ShuttingDownError("collectord is shutting down");
    const Micros now = nowMicros();
    for (int attempt = 0; attempt < 10; ++attempt) {
      TriggerResult result;
      BatchRecord& batch = result.batch;
      batch.batch_id = ids.batchId();
      batch.priority = priority;
      batch.started_at = batch.updated_at = now;
      std::set<std::string> seen;
      for (const std::string& name : names) {
        const CollectorConfig* c = config.findCollector(name);
        JobRecord job;
        job.job_id = ids.jobId(name);
        job.batch_id = batch.batch_id;
        job.collector = name;
        job.job_name = c ? c->job_name : name + "-collector";
        job.started_at = job.updated_at = now;
        seen.insert(job.job_id);
        result.jobs.push_back(std::move(job));
      }
      if (seen.size() != result.jobs.size()) continue;  // two new jobs drew the same ID
      std::vector<const JobRecord*> views;
      for (const JobRecord& j : result.jobs) views.push_back(&j);
      rollUpBatch(batch, views);
      if (!store.insertBatch(batch, result.jobs)) continue;

      Batch& active = batches[batch.batch_id];
      active.record = batch;
      for (const JobRecord& j : result.jobs) {
        active.job_ids.push_back(j.job_id);
        jobs[j.job_id] = std::make_unique<Job>(j, config.findCollector(j.collector));
        asio::post(io, [this, id = j.job_id] { spawn(id); });
      }
      log.information("batch %s triggered: %s", batch.batch_id, describeJobs(result.jobs));
      return result;
    }
    throw StoreError("could not allocate unique batch and job IDs");
  }

  static std::string describeJobs(const std::vector<JobRecord>& list) {
    std::string out;
    for (const JobRecord& j : list) out += (out.empty() ? "" : ", ") + j.job_id + " (" + j.collector + ")";
    return out;
  }

  std::vector<std::string> environmentFor(const Job& job) const {
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
    for (const auto& [name, value] : job.collector->env) env.push_back(name + "=" + value);
    return env;
  }

  void spawn(const std::string& job_id) {
    const auto it = jobs.find(job_id);
    if (it == jobs.end()) return;
    Job& job = *it->second;
    if (job.sm.record().status != JobStatus::kQueued || stopping) return;
    const CollectorConfig* c = job.collector;
    if (!c) return fail(job, "collector '" + job.sm.record().collector + "' is not configured");
    if (c->type == CollectorConfig::Type::kPlugin) {
      return fail(job, "plugin collectors are not supported yet");
    }

    const std::string log_path = config.logs_directory + "/" + job_id + ".log";
    job.log_fd.reset(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!job.log_fd) {
      return fail(job, "cannot open the job log " + log_path + ": " + std::strerror(errno));
    }
    SpawnRequest request{c->command, c->args, c->working_directory, environmentFor(job),
                         job.log_fd.get()};
    std::string error;
    job.child = ChildProcess::spawn(io, request, error);
    if (!job.child) {
      writeJobLog(job, "[collectord] failed to start " + c->command + ": " + error + "\n");
      return fail(job, "failed to start: " + error);
    }
    const int pid = job.child->pid();
    job.sm.start(pid, nowMicros());
    writeJobLog(job, "[collectord] started " + c->command + " as pid " + std::to_string(pid) + "\n");
    log.information("job %s (%s) started, pid %d", job_id, c->name, pid);
    markDirty(job);
    scheduleFlush();

    job.buffer.resize(kReadChunk);
    readProgress(job);
    job.child->asyncWait([this, &job](int status) { onChildExit(job, status); });
  }

  void fail(Job& job, const std::string& error) {
    if (!job.sm.fail(error, nowMicros())) return;
    log.warning("job %s failed: %s", job.sm.record().job_id, error);
    recordEnd(job);
    markDirty(job);
    flush();
  }

  // ---- the progress pipe -----------------------------------------------------------------

  void readProgress(Job& job) {
    job.reading = true;
    job.child->progress().async_read_some(
        asio::buffer(job.buffer), [this, &job](const boost::system::error_code& ec, std::size_t n) {
          job.reading = false;
          if (n > 0) consume(job, job.buffer.data(), n);
          if (ec == asio::error::operation_aborted && job.wait_status) {
            drainAndClose(job);  // cancelled because the child exited: read what is left
            return finish(job);
          }
          if (ec) {
            if (ec != asio::error::eof) {
              writeJobLog(job, "[collectord] progress pipe error: " + ec.message() + "\n");
            }
            closePipe(job);
            if (job.wait_status) finish(job);
            return;
          }
          if (job.wait_status) {
            drainAndClose(job);
            return finish(job);
          }
          readProgress(job);
        });
  }

  void drainAndClose(Job& job) {
    auto& pipe = job.child->progress();
    std::size_t total = 0;
    while (pipe.is_open() && total < kMaxDrainBytes) {
      const ssize_t n = ::read(pipe.native_handle(), job.buffer.data(), job.buffer.size());
      if (n > 0) {
        consume(job, job.buffer.data(), static_cast<std::size_t>(n));
        total += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // EOF, EAGAIN (a grandchild still holds the pipe) or an error
    }
    closePipe(job);
  }

  void closePipe(Job& job) {
    if (!job.partial.empty() && !job.discarding) handleLine(job, job.partial);  // no final newline
    job.partial.clear();
    boost::system::error_code ignored;
    job.child->progress().close(ignored);
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
    if (job.sm.report(std::get<ProgressUpdate>(parsed), nowMicros())) {
      markDirty(job);
      scheduleFlush();
    }
  }

  void warn(Job& job, const std::string& reason) {
    ++job.warnings;
    ++metrics.progress_lines_dropped;
    if (job.warnings < kMaxWarningsPerJob) {
      writeJobLog(job, "[collectord] protocol warning: line " + std::to_string(job.line_no) + ": " +
                           reason + "\n");
    } else if (job.warnings == kMaxWarningsPerJob) {
      writeJobLog(job, "[collectord] protocol warning: too many invalid lines; no more are logged\n");
    }
  }

  void writeJobLog(Job& job, const std::string& text) {
    if (!job.log_fd) return;
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
      const ssize_t n = ::write(job.log_fd.get(), p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk must not stop supervision; the daemon log has the outcome
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  // ---- exit ------------------------------------------------------------------------------

  void onChildExit(Job& job, int wait_status) {
    job.wait_status = wait_status;
    if (job.reading) {
      job.child->progress().cancel();  // the read handler drains the pipe and finishes the job
    } else {
      finish(job);
    }
  }

  void finish(Job& job) {
    const ExitStatus status = exitStatusFromWait(*job.wait_status);
    const int pid = job.child->pid();
    job.sm.exited(status, nowMicros());
    recordEnd(job);
    const JobRecord& r = job.sm.record();
    // Nothing of a finished job may keep running: take down what is left of its group.
    if (job.child->signalGroup(SIGKILL)) {
      writeJobLog(job, "[collectord] killed processes left in the job's process group\n");
    }
    writeJobLog(job, "[collectord] " + status.describe() + "; job " +
                         std::string(toString(r.status)) +
                         (r.error ? ": " + *r.error : std::string()) + "\n");
    log.information("job %s (%s) %s, pid %d: %s", r.job_id, r.collector,
                    std::string(toString(r.status)), pid, status.describe());
    job.child.reset();
    job.log_fd.reset();
    markDirty(job);
    flush();
    if (stopping) checkDrained();
  }

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

  // ---- persistence -----------------------------------------------------------------------

  void markDirty(Job& job) {
    dirty_jobs.insert(job.sm.record().job_id);
    dirty_batches.insert(job.sm.record().batch_id);
  }

  void scheduleFlush(std::chrono::milliseconds delay) {
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
    for (const std::string& id : dirty_jobs) {
      const auto it = jobs.find(id);
      if (it != jobs.end()) job_rows.push_back(it->second->sm.record());
    }
    for (const std::string& id : dirty_batches) {
      const auto it = batches.find(id);
      if (it == batches.end()) continue;
      rollUp(it->second);
      batch_rows.push_back(it->second.record);
    }
    try {
      store.save(job_rows, batch_rows);
    } catch (const StoreError& e) {
      log.error("cannot write job state, retrying: %s", std::string(e.what()));
      if (flush_armed) flush_timer.cancel();
      flush_armed = false;
      scheduleFlush(std::chrono::duration_cast<std::chrono::milliseconds>(kStoreRetryDelay));
      return;
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

  // ---- start and stop --------------------------------------------------------------------

  void recover() {
    const std::vector<JobRecord> active = store.activeJobs();
    if (active.empty()) return;
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
      for (JobRecord& r : store.jobsOfBatch(left.batch_id)) {
        b.job_ids.push_back(r.job_id);
        const std::string id = r.job_id;
        const CollectorConfig* collector = config.findCollector(r.collector);
        auto job = std::make_unique<Job>(std::move(r), collector);
        Job& j = *job;
        jobs[id] = std::move(job);
        if (j.sm.record().status == JobStatus::kRunning) {
          if (j.sm.record().pid) {
            const int killed = killLeftoverProcesses(*j.sm.record().pid, id);
            if (killed > 0) log.warning("killed %d leftover processes of job %s", killed, id);
          }
          j.sm.fail("supervisor restarted while the job was running", now);
          recordEnd(j);
          log.warning("job %s was running when the previous instance stopped: failed", id);
          markDirty(j);
        } else if (j.sm.record().status == JobStatus::kQueued) {
          log.information("job %s was queued when the previous instance stopped: starting", id);
          asio::post(io, [this, id] { spawn(id); });
        }
      }
      dirty_batches.insert(left.batch_id);
    }
    flush();
  }

  void beginStop(std::function<void()> done) {
    stopping = true;
    on_drained = std::move(done);
    int running = 0;
    for (auto& [id, job] : jobs) {
      if (!job->child) continue;
      ++running;
      job->sm.requestCancel("supervisor shutting down", nowMicros());
      job->child->signalGroup(SIGTERM);
    }
    if (running > 0) {
      log.information("stopping: sent SIGTERM to %d running jobs", running);
      kill_timer.expires_after(options.kill_grace);
      kill_timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        for (auto& [id, job] : jobs) {
          if (job->child) {
            log.warning("job %s ignored SIGTERM: sending SIGKILL", id);
            job->child->signalGroup(SIGKILL);
          }
        }
      });
    }
    checkDrained();
  }

  void checkDrained() {
    for (const auto& [id, job] : jobs) {
      if (job->child) return;
    }
    kill_timer.cancel();
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

bool Supervisor::accepting() const { return impl_->accepting; }

Supervisor::~Supervisor() { stop(); }

void Supervisor::start() {
  std::error_code ec;
  std::filesystem::create_directories(impl_->config.logs_directory, ec);
  impl_->recover();  // before the thread exists: nothing else touches the state yet
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
  // Children get kill_grace to exit, then SIGKILL, which cannot be ignored.
  if (done.wait_for(impl_->options.kill_grace + std::chrono::seconds(10)) !=
      std::future_status::ready) {
    impl_->log.error("stopping: jobs did not end after SIGKILL; giving up on them");
  }
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

TriggerResult Supervisor::trigger(const std::vector<std::string>& collectors, Priority priority) {
  if (!impl_->accepting) throw ShuttingDownError("collectord is shutting down");
  auto task = std::make_shared<std::packaged_task<TriggerResult()>>(
      [this, collectors, priority] { return impl_->createBatch(collectors, priority); });
  auto result = task->get_future();
  asio::post(impl_->io, [task] { (*task)(); });
  if (result.wait_for(kTriggerTimeout) != std::future_status::ready) {
    throw StoreError("the supervisor did not answer within 30 s");
  }
  return result.get();
}

}  // namespace collectord
