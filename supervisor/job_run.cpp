// One run of one job: spawning the child, its pipes and protocol lines, timers, the end.
#include <fcntl.h>
#include <unistd.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "supervisor_impl.h"
#include "time_format.h"

namespace collectord {

namespace {

// collector-host beside the collectord binary (as installed and as built), else on PATH.
std::string collectorHostPath() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / "collector-host";
    if (::access(beside.c_str(), X_OK) == 0) return beside.string();
  }
  const char* path = ::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/collector-host";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

bool Supervisor::Impl::environmentFor(const Job& job, std::vector<std::string>& env,
                                      std::string& error) const {
  env = baseEnvironment(job);
  for (const auto& [name, value] : job.collector->env) {
    // env.PATH, env.HOME... replace the inherited value rather than adding a second one.
    // (A named prefix, not the binding: clang before 16 cannot capture structured bindings.)
    const std::string prefix = name + "=";
    std::erase_if(env, [&prefix](const std::string& e) { return e.rfind(prefix, 0) == 0; });
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

std::vector<std::string> Supervisor::Impl::baseEnvironment(const Job& job) const {
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
  if (cluster) env.push_back("COLLECTOR_NODE_ID=" + config()->cluster.node_id);
  if (job.collector->type == CollectorConfig::Type::kPlugin) {
    // collector-host hands these env.* settings to the plugin as its configuration.
    std::string keys;
    for (const auto& [name, value] : job.collector->env) keys += (keys.empty() ? "" : ",") + name;
    env.push_back("COLLECTOR_CONFIG_KEYS=" + keys);
  }
  return env;
}

bool Supervisor::Impl::identityFor(const CollectorConfig& c, SpawnRequest& request,
                                   std::string& error) const {
  if (!c.user.empty()) {
    const passwd* pw = ::getpwnam(c.user.c_str());
    if (!pw) {
      error = "no such user '" + c.user + "'";
      return false;
    }
    request.uid = pw->pw_uid;
    request.gid = pw->pw_gid;
    // The account's groups, looked up here: the child may only make async-signal-safe calls.
    int count = 64;
    request.groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(pw->pw_name, pw->pw_gid, request.groups.data(), &count) == -1) {
      request.groups.resize(static_cast<std::size_t>(count));
      ::getgrouplist(pw->pw_name, pw->pw_gid, request.groups.data(), &count);
    }
    request.groups.resize(static_cast<std::size_t>(std::max(count, 0)));
    // The account's home, unless the collector sets env.HOME itself.
    const bool own_home = std::any_of(c.env.begin(), c.env.end(),
                                      [](const auto& e) { return e.first == "HOME"; });
    if (!own_home) {
      std::erase_if(request.environment, [](const std::string& e) { return e.rfind("HOME=", 0) == 0; });
      request.environment.push_back(std::string("HOME=") + pw->pw_dir);
    }
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

bool Supervisor::Impl::spawn(Job& job) {
  const CollectorConfig& c = *job.collector;
  const std::string& job_id = job.sm.record().job_id;
  const auto cfg = config();
  job.log = std::make_unique<JobLog>(logPath(job_id), cfg->log_max_bytes_per_job);
  std::string error;
  if (!job.log->open(error)) {
    fail(job, error);
    return false;
  }
  SpawnRequest request;
  request.executable = c.command;
  request.args = c.args;
  request.working_directory = c.working_directory;
  if (c.type == CollectorConfig::Type::kPlugin) {
    // A plugin runs in collector-host, never in this process.
    request.executable = collectorHostPath();
    if (request.executable.empty()) {
      job.log->write("[collectord] cannot start: collector-host not found\n");
      fail(job, "failed to start: collector-host was not found next to collectord or on PATH");
      return false;
    }
    request.args = {c.plugin};
  }
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
                 std::to_string(r.max_attempts) + ": started " + (c.type == CollectorConfig::Type::kPlugin ? "plugin " + c.plugin : c.command) + " as pid " +
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

void Supervisor::Impl::armRunTimers(Job& job) {
  const CollectorConfig& c = *job.collector;
  if (c.timeout) {
    const std::string reason = "timed out after " + formatDurationSpec(*c.timeout);
    arm(job.timeout_timer, *c.timeout, job, [this, reason](Job& j) { stopRun(j, reason, false); });
  }
  if (c.stall_timeout) armStall(job, *c.stall_timeout);
}

void Supervisor::Impl::armStall(Job& job, Clock::duration after) {
  arm(job.stall_timer, after, job, [this](Job& j) {
    if (!j.child || !j.collector->stall_timeout) return;
    const auto limit = *j.collector->stall_timeout;
    const auto quiet = Clock::now() - j.last_progress;
    if (quiet < limit) return armStall(j, limit - quiet);
    stopRun(j, "no progress for " + formatDurationSpec(limit), false);
  });
}

void Supervisor::Impl::stopRun(Job& job, const std::string& reason, bool cancel) {
  if (!job.child) return;
  const bool first =
      cancel ? job.sm.requestCancel(reason, nowMicros()) : job.sm.requestKill(reason);
  if (!first) {
    // Already being stopped: a shutdown still must not wait longer than shutdown_grace.
    if (stopping && job.kill_timer &&
        job.kill_timer->expiry() > Clock::now() + config()->shutdown_grace) {
      arm(job.kill_timer, config()->shutdown_grace, job, [](Job& j) {
        if (j.child) j.child->signalGroup(SIGKILL);
      });
    }
    return;
  }
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

std::optional<Micros> Supervisor::Impl::retryDelay(const Job& job) const {
  if (!job.collector || job.collector->retries == 0) return std::nullopt;
  const CollectorConfig& c = *job.collector;
  Micros delay = toMicros(c.retry_backoff);
  for (int i = 1; i < job.sm.record().attempt && delay < toMicros(c.retry_backoff_max); ++i) {
    delay *= 2;
  }
  return std::min(delay, toMicros(c.retry_backoff_max));
}

void Supervisor::Impl::armRetry(Job& job) {
  const JobRecord& r = job.sm.record();
  if (r.status != JobStatus::kQueued || !r.next_attempt_at) return;
  const Micros wait = std::max<Micros>(0, *r.next_attempt_at - nowMicros());
  arm(job.retry_timer, std::chrono::microseconds(wait), job, [this](Job&) { dispatch(); });
}

void Supervisor::Impl::cancelTimers(Job& job) {
  for (auto* timer : {&job.timeout_timer, &job.stall_timer, &job.kill_timer}) {
    if (*timer) (*timer)->cancel();
  }
}

void Supervisor::Impl::fail(Job& job, const std::string& error) {
  job.sm.setRetryDelay(retryDelay(job));
  if (!job.sm.fail(error, nowMicros())) return;
  log.warning("job %s: %s", job.sm.record().job_id, error);
  afterRun(job);
}

void Supervisor::Impl::readPipe(Job& job, Pipe& pipe, asio::posix::stream_descriptor& fd,
                                bool progress) {
  pipe.reading = true;
  fd.async_wait(
      asio::posix::descriptor_base::wait_read,
      [this, &job, &pipe, &fd, progress](boost::system::error_code ec) {
        pipe.reading = false;
        if (!ec) {
          const ssize_t n = ::read(fd.native_handle(), read_buffer.data(), read_buffer.size());
          const int read_errno = errno;
          if (n > 0) {
            deliver(job, progress, read_buffer.data(), static_cast<std::size_t>(n));
          } else if (n == 0) {
            ec = asio::error::eof;
          } else if (read_errno != EAGAIN && read_errno != EINTR) {
            ec.assign(read_errno, boost::system::system_category());
          }
        }
        if (ec == asio::error::operation_aborted || (!ec && job.wait_status)) {
          drainAndClose(job, fd, progress);  // the child exited: read what is left
        } else if (ec) {
          if (ec != asio::error::eof)
            job.log->write("[collectord] pipe error: " + ec.message() + "\n");
          closePipe(job, fd, progress);
        } else {
          return readPipe(job, pipe, fd, progress);
        }
        maybeFinish(job);
      });
}

void Supervisor::Impl::deliver(Job& job, bool progress, const char* data, std::size_t n) {
  if (progress) {
    consume(job, data, n, Arrival{});
  } else {
    job.log->write(std::string_view(data, n));
  }
}

void Supervisor::Impl::drainAndClose(Job& job, asio::posix::stream_descriptor& fd,
                                     bool progress) {
  std::size_t total = 0;
  while (fd.is_open() && total < kMaxDrainBytes) {
    const ssize_t n = ::read(fd.native_handle(), read_buffer.data(), read_buffer.size());
    if (n > 0) {
      deliver(job, progress, read_buffer.data(), static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EOF, EAGAIN (a grandchild still holds the pipe) or an error
  }
  closePipe(job, fd, progress);
}

void Supervisor::Impl::closePipe(Job& job, asio::posix::stream_descriptor& fd, bool progress) {
  if (progress) {
    if (!job.partial.empty() && !job.discarding) {
      handleLine(job, job.partial, Arrival{});  // the last line had no newline
    }
    job.partial.clear();
  }
  boost::system::error_code ignored;
  fd.close(ignored);
}

void Supervisor::Impl::consume(Job& job, const char* data, std::size_t n, const Arrival& at) {
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
      handleLine(job, std::string_view(data + start, len), at);
    } else if (job.partial.size() + len > kMaxProtocolLine) {
      startDiscarding(job);
      job.discarding = false;
    } else {
      job.partial.append(data + start, len);
      handleLine(job, job.partial, at);
      job.partial.clear();
    }
    start += len + 1;
  }
}

void Supervisor::Impl::startDiscarding(Job& job) {
  ++job.line_no;
  warn(job, "longer than " + std::to_string(kMaxProtocolLine) + " bytes; ignored");
  job.partial.clear();
  job.discarding = true;
}

void Supervisor::Impl::handleLine(Job& job, std::string_view line, const Arrival& at) {
  ++job.line_no;
  ++metrics.progress_lines_received;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  ParsedLine parsed = parseProgressLine(line);
  if (auto* error = std::get_if<ProtocolError>(&parsed)) return warn(job, error->reason);
  job.last_progress = at.steady;
  if (job.sm.report(std::get<ProgressUpdate>(parsed), at.wall)) {
    markDirty(job);
    scheduleFlush();
  }
}

void Supervisor::Impl::warn(Job& job, const std::string& reason) {
  ++job.warnings;
  ++metrics.progress_lines_dropped;
  if (job.warnings < kMaxWarningsPerJob) {
    job.log->write("[collectord] protocol warning: line " + std::to_string(job.line_no) + ": " +
                   reason + "\n");
  } else if (job.warnings == kMaxWarningsPerJob) {
    job.log->write("[collectord] protocol warning: too many invalid lines; no more are logged\n");
  }
}

void Supervisor::Impl::onChildExit(Job& job, int wait_status) {
  job.wait_status = wait_status;
  // Pending reads are cancelled; their handlers drain what is left and finish the job.
  for (auto* fd : {&job.child->progress(), &job.child->output()}) {
    if (fd->is_open()) fd->cancel();
  }
  maybeFinish(job);
}

void Supervisor::Impl::maybeFinish(Job& job) {
  if (!job.child || !job.wait_status || job.progress.reading || job.output.reading) return;
  if (job.child->progress().is_open() || job.child->output().is_open()) return;
  const ExitStatus status = exitStatusFromWait(*job.wait_status);
  const int pid = job.child->pid();
  // Nothing of a finished run may keep running: take down what is left of its group.
  if (job.child->signalGroup(SIGKILL)) {
    job.log->write("[collectord] killed processes left in the job's process group\n");
  }
  // A child that moved to a group or session of its own (setsid, a daemonising tool) escapes
  // that signal; its environment still names the job.
  // Other runs' groups are theirs; what started before this run is not its descendant.
  const JobRecord& ended = job.sm.record();
  std::vector<int> groups;
  for (const auto& [id, other] : jobs) {
    if (other->child) groups.push_back(other->child->pid());
  }
  if (const int escaped = killProcessesOfJob(ended.job_id, ended.batch_id, groups,
                                             job.child->startTicks());
      escaped > 0) {
    job.log->write("[collectord] killed " + std::to_string(escaped) +
                   (escaped == 1 ? " process" : " processes") +
                   " the job left outside its process group\n");
    log.warning("job %s left %d processes outside its process group: killed", ended.job_id,
                escaped);
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

void Supervisor::Impl::afterRun(Job& job) {
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

}  // namespace collectord
