#include "supervision_support.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace collectord::test {

void releaseWord(const DaemonConfig& config, const std::string& collector,
                 const std::string& word) {
  writeFile(config.releaseDir(collector) + "/" + word, "");
}

std::vector<std::string> readLines(const std::string& path) {
  std::vector<std::string> lines;
  auto text = readFile(path);
  if (!text) return lines;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

pid_t waitForPidFile(const std::string& path, std::chrono::milliseconds timeout) {
  pid_t pid = 0;
  waitUntil(
      [&] {
        auto text = readFile(path);
        if (!text || text->empty() || text->back() != '\n') return false;
        try {
          pid = static_cast<pid_t>(std::stol(*text));
        } catch (const std::exception&) {
          pid = 0;
        }
        return pid > 0;
      },
      timeout);
  return pid;
}

bool waitUntilGone(pid_t pid, std::chrono::milliseconds timeout) {
  return waitUntil([&] { return !processAlive(pid); }, timeout);
}

std::vector<pid_t> processesWithEnvironment(const std::string& entry) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  while (dirent* process = ::readdir(proc)) {
    const std::string name = process->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto environ = readFile("/proc/" + name + "/environ");
    if (!environ) continue;
    std::size_t at = 0;
    bool holds = false;
    while (at < environ->size()) {
      std::size_t end = environ->find('\0', at);
      if (end == std::string::npos) end = environ->size();
      if (environ->compare(at, end - at, entry) == 0) {
        holds = true;
        break;
      }
      at = end + 1;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (holds && processAlive(pid)) found.push_back(pid);
  }
  ::closedir(proc);
  return found;
}

std::vector<pid_t> processesOfJob(const std::string& job_id) {
  return processesWithEnvironment("COLLECTOR_JOB_ID=" + job_id);
}

ProcessReaper::~ProcessReaper() {
  for (pid_t pgid : groups_) {
    if (pgid > 1) ::kill(-pgid, SIGKILL);
  }
  for (pid_t pid : pids_) {
    if (pid > 1 && processAlive(pid)) ::kill(pid, SIGKILL);
  }
}

void ProcessReaper::add(pid_t pid) {
  if (pid > 1) pids_.push_back(pid);
}

void ProcessReaper::addGroup(pid_t pgid) {
  if (pgid > 1) groups_.push_back(pgid);
}

int maxConcurrency(const std::vector<std::string>& events) {
  std::set<std::string> live;
  int most = 0;
  for (const std::string& line : events) {
    if (line.size() < 3) continue;
    const std::string id = line.substr(2);
    if (line[0] == 'S') {
      live.insert(id);
      most = std::max(most, static_cast<int>(live.size()));
    } else if (line[0] == 'E') {
      live.erase(id);
    }
  }
  return most;
}

std::vector<std::string> eventIds(const std::vector<std::string>& events, const std::string& kind) {
  std::vector<std::string> ids;
  for (const std::string& line : events) {
    if (line.rfind(kind + " ", 0) == 0) ids.push_back(line.substr(kind.size() + 1));
  }
  return ids;
}

std::vector<std::string> liveIds(const std::vector<std::string>& events) {
  std::vector<std::string> live;
  for (const std::string& id : eventIds(events, "S")) {
    const auto ended = eventIds(events, "E");
    if (std::find(ended.begin(), ended.end(), id) == ended.end()) live.push_back(id);
  }
  return live;
}

Poco::JSON::Object::Ptr collectorItem(const HttpClient& client, const std::string& name) {
  const HttpResponse response = client.get("/api/collectors");
  auto body = response.object();
  if (response.status != 200 || !body || !body->isArray("collectors")) return nullptr;
  auto list = body->getArray("collectors");
  for (unsigned i = 0; i < list->size(); ++i) {
    auto item = list->getObject(i);
    if (item && stringField(*item, "name") == name) return item;
  }
  return nullptr;
}

std::optional<std::int64_t> intField(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key)) return std::nullopt;
  const Poco::Dynamic::Var value = object.get(key);
  if (!value.isInteger() || value.isBoolean()) return std::nullopt;
  return value.convert<std::int64_t>();
}

std::string jobStatus(const HttpClient& client, const std::string& job_id) {
  const HttpResponse response = client.job(job_id);
  auto body = response.object();
  return response.status == 200 && body ? stringField(*body, "status") : "";
}

bool isTerminalName(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

HttpResponse waitForJobTerminal(const HttpClient& client, const std::string& job_id,
                                std::chrono::milliseconds timeout) {
  return waitForJob(
      client, job_id,
      [](const Poco::JSON::Object& job) { return isTerminalName(stringField(job, "status")); },
      timeout);
}

HttpResponse waitForJobStatus(const HttpClient& client, const std::string& job_id,
                              const std::string& status, std::chrono::milliseconds timeout) {
  return waitForJob(
      client, job_id,
      [&](const Poco::JSON::Object& job) { return stringField(job, "status") == status; },
      timeout);
}

bool waitForDaemonLog(const Daemon& daemon, const std::string& text,
                      std::chrono::milliseconds timeout) {
  return waitUntil([&] { return daemon.logText().find(text) != std::string::npos; }, timeout,
                   std::chrono::milliseconds(50));
}

std::vector<std::int64_t> readNanos(const std::string& path) {
  std::vector<std::int64_t> values;
  for (const std::string& line : readLines(path)) {
    try {
      values.push_back(std::stoll(line));
    } catch (const std::exception&) {
      values.push_back(-1);
    }
  }
  return values;
}

}  // namespace collectord::test
