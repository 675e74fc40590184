#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <Poco/URI.h>
#include <Poco/Util/IniFileConfiguration.h>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "time_format.h"

namespace collectord {

namespace fs = std::filesystem;

std::string_view toString(CollectorConfig::Overlap overlap) {
  switch (overlap) {
    case CollectorConfig::Overlap::kSkip: return "skip";
    case CollectorConfig::Overlap::kParallel: return "parallel";
    case CollectorConfig::Overlap::kQueue: break;
  }
  return "queue";
}

const CollectorConfig* Config::findCollector(std::string_view name) const {
  for (const CollectorConfig& c : collectors) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string ConfigProblem::toString() const {
  return key.empty() ? file + ": " + message : file + ": " + key + ": " + message;
}

std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      const std::size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) {
        error = "unterminated single quote";
        return std::nullopt;
      }
      word.append(text.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        // Inside double quotes a backslash escapes only these, as in sh.
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`')) {
          ++j;
        }
        word += text[j];
      }
      if (j >= text.size()) {
        error = "unterminated double quote";
        return std::nullopt;
      }
      in_word = true;
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        error = "trailing backslash";
        return std::nullopt;
      }
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

namespace {

// Cuts a comment that starts with whitespace followed by ';' or '#' outside quotes, and blanks
// '#' comment lines, which Poco's INI reader does not know.
std::string stripComments(std::istream& in) {
  std::string out, line;
  while (std::getline(in, line)) {
    const std::size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && (line[first] == '#' || line[first] == ';')) line.clear();
    char quote = 0;
    for (std::size_t i = 1; i < line.size(); ++i) {
      const char c = line[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if ((c == '"' || c == '\'') &&
                 (line[i - 1] == ' ' || line[i - 1] == '\t' || line[i - 1] == '=')) {
        quote = c;  // only at the start of a word: "it's" is no quote
      } else if ((c == ';' || c == '#') && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line.erase(i);
        break;
      }
    }
    out += line;
    out += '\n';
  }
  return out;
}

// Reads one INI file and checks its keys against what the caller asks for.
class IniReader {
 public:
  // Reads the file at `path`.
  IniReader(std::string path, std::vector<ConfigProblem>& problems)
      : path_(std::move(path)), problems_(problems) {
    std::ifstream in(path_);
    if (!in) {
      problem("", "cannot read the file");
      return;
    }
    parse(in);
  }

  // Parses `text` as if it had been read from the file at `path`.
  IniReader(std::string path, std::string_view text, std::vector<ConfigProblem>& problems)
      : path_(std::move(path)), problems_(problems) {
    std::istringstream in{std::string(text)};
    parse(in);
  }

  bool ok() const { return !ini_.isNull(); }
  const std::string& path() const { return path_; }
  std::string folder() const { return fs::path(path_).parent_path().string(); }

  // The raw value of "section.key" when present and not empty.
  std::optional<std::string> get(const std::string& key) {
    used_.insert(Poco::toLower(key));
    if (!ini_ || !ini_->hasProperty(key)) return std::nullopt;
    std::string value = Poco::trim(ini_->getRawString(key));
    if (value.empty()) return std::nullopt;
    return value;
  }

  std::string getString(const std::string& key, const std::string& fallback) {
    return get(key).value_or(fallback);
  }

  int getInt(const std::string& key, int fallback, int min, int max) {
    const auto value = get(key);
    if (!value) return fallback;
    int n;
    if (!Poco::NumberParser::tryParse(*value, n) || n < min || n > max) {
      problem(key, "'" + *value + "' is not a whole number from " + std::to_string(min) + " to " +
                       std::to_string(max));
      return fallback;
    }
    return n;
  }

  bool getBool(const std::string& key, bool fallback) {
    const auto value = get(key);
    if (!value) return fallback;
    const std::string v = Poco::toLower(*value);
    if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
    if (v == "false" || v == "no" || v == "off" || v == "0") return false;
    problem(key, "'" + *value + "' is not a boolean (true or false)");
    return fallback;
  }

  std::optional<std::chrono::milliseconds> getDuration(const std::string& key) {
    const auto value = get(key);
    if (!value) return std::nullopt;
    auto d = parseDuration(*value);
    if (!d || d->count() <= 0) {
      problem(key, "invalid duration '" + *value + "' (use e.g. 90s, 5m, 1h)");
      return std::nullopt;
    }
    return d;
  }

  // A byte size: a whole number with an optional K, M, G or T suffix (powers of 1024).
  std::optional<std::uint64_t> getSize(const std::string& key) {
    const auto value = get(key);
    if (!value) return std::nullopt;
    std::size_t digits = 0;
    while (digits < value->size() && std::isdigit(static_cast<unsigned char>((*value)[digits]))) {
      ++digits;
    }
    std::string unit = Poco::toUpper(Poco::trim(value->substr(digits)));
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back();  // "MiB"
    const std::map<std::string, int> shifts = {{"", 0}, {"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}};
    const auto shift = shifts.find(unit);
    std::uint64_t n = 0;
    if (digits == 0 || digits > 12 || shift == shifts.end() ||
        !Poco::NumberParser::tryParseUnsigned64(value->substr(0, digits), n) || n == 0) {
      problem(key, "invalid size '" + *value + "' (use e.g. 512M, 2G, 1048576)");
      return std::nullopt;
    }
    // 12 digits with a T suffix would wrap past 2^64 (16777216T wraps to 0 exactly).
    if (n > (std::numeric_limits<std::uint64_t>::max() >> shift->second)) {
      problem(key, "size '" + *value + "' is too large (at most 16777215T)");
      return std::nullopt;
    }
    return n << shift->second;
  }

  // A path resolved against this file's folder; empty when not set.
  std::string getPath(const std::string& key, const std::string& fallback = "") {
    const std::string value = getString(key, fallback);
    if (value.empty()) return "";
    return resolve(value);
  }

  std::string resolve(const std::string& value) const {
    fs::path p(value);
    if (p.is_relative()) p = fs::path(folder()) / p;
    std::string normal = p.lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();  // "dir/." -> "dir"
    return normal;
  }

  // Keys of `section` with the given prefix ("env." for env.NAME) and their values. A dotted
  // name (env.A.B) comes back whole ("A.B"): Poco files it as a child of "A", which may have no
  // value of its own, so reading "A" would throw. Walked with an explicit stack, as a line of
  // many dots would otherwise recurse as deep.
  std::vector<std::pair<std::string, std::string>> prefixed(const std::string& section,
                                                            const std::string& prefix) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!ini_) return out;
    const std::string root = section + "." + prefix.substr(0, prefix.size() - 1);
    // Full keys still to list; "env." has a child named "", so no name can mark the root.
    std::vector<std::string> pending;
    Poco::Util::AbstractConfiguration::Keys children;
    ini_->keys(root, children);
    for (auto it = children.rbegin(); it != children.rend(); ++it) {
      pending.push_back(root + "." + *it);
    }
    while (!pending.empty()) {
      const std::string full = std::move(pending.back());
      pending.pop_back();
      if (ini_->hasProperty(full)) {
        out.emplace_back(full.substr(root.size() + 1), Poco::trim(ini_->getRawString(full)));
      }
      children.clear();
      ini_->keys(full, children);
      for (auto it = children.rbegin(); it != children.rend(); ++it) {
        pending.push_back(full + "." + *it);
      }
    }
    return out;
  }

  // Reports every section and key not in `allowed` (section -> keys); `open_prefixes` lists
  // "section.prefix" roots whose children are all allowed (e.g. "collector.env").
  void rejectUnknown(const std::map<std::string, std::set<std::string>>& allowed,
                     const std::set<std::string>& open_prefixes) {
    if (!ini_) return;
    Poco::Util::AbstractConfiguration::Keys sections;
    ini_->keys("", sections);
    for (const std::string& section : sections) {
      const auto it = allowed.find(Poco::toLower(section));
      if (it == allowed.end()) {
        problem(section, "unknown section [" + section + "]");
        continue;
      }
      Poco::Util::AbstractConfiguration::Keys keys;
      ini_->keys(section, keys);
      if (keys.empty() && ini_->hasProperty(section)) {
        problem(section, "a key outside of any section");
      }
      for (const std::string& key : keys) {
        const std::string full = Poco::toLower(section) + "." + Poco::toLower(key);
        if (open_prefixes.count(full)) continue;
        if (!it->second.count(Poco::toLower(key))) {
          problem(section + "." + key, "unknown key");
          continue;
        }
        // "command.x = 1" files x under a known key; reading the key would not see it.
        Poco::Util::AbstractConfiguration::Keys nested;
        ini_->keys(section + "." + key, nested);
        if (!nested.empty()) problem(section + "." + key + "." + nested.front(), "unknown key");
      }
    }
  }

  void problem(const std::string& key, const std::string& message) {
    problems_.push_back({path_, key, message});
  }

  // The names directly under `key`, as written: "webhook" gives the NAME of each
  // [webhook.NAME], "webhook.ops" the keys of [webhook.ops].
  std::vector<std::string> children(const std::string& key) {
    Poco::Util::AbstractConfiguration::Keys names;
    if (ini_) ini_->keys(key, names);
    return names;
  }
  // True when `key` itself has a value (not only children).
  bool hasValue(const std::string& key) const { return ini_ && ini_->hasProperty(key); }

 private:
  void parse(std::istream& in) {
    std::istringstream text(stripComments(in));
    try {
      ini_ = new Poco::Util::IniFileConfiguration(text);
    } catch (const Poco::Exception& e) {
      problem("", "cannot parse the file: " + e.displayText());
    }
  }

  std::string path_;
  std::vector<ConfigProblem>& problems_;
  Poco::AutoPtr<Poco::Util::IniFileConfiguration> ini_;
  std::set<std::string> used_;
};

bool isLoopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

bool isExecutableFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> findOnPath(const std::string& name) {
  const char* path_env = ::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = (fs::path(dir) / name).string();
    if (isExecutableFile(candidate)) return candidate;
  }
  return std::nullopt;
}

bool isValidCollectorName(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool isValidEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

void requireDirectory(IniReader& reader, const std::string& key, const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) reader.problem(key, "directory '" + path + "' does not exist");
}

void requireFile(IniReader& reader, const std::string& key, const std::string& path) {
  std::error_code ec;
  if (!path.empty() && !fs::is_regular_file(path, ec)) {
    reader.problem(key, "file '" + path + "' does not exist");
  }
}

CollectorConfig readCollector(IniReader& r, const std::string& name) {
  CollectorConfig c;
  c.name = name;
  c.source_file = r.path();
  if (!r.ok()) return c;
  r.rejectUnknown({{"collector",
                    {"job_name", "type", "command", "args", "plugin", "working_directory",
                     "timeout", "stall_timeout", "kill_grace", "retries", "retry_backoff",
                     "retry_backoff_max", "concurrency", "overlap", "nice", "memory_limit",
                     "cpu_limit", "max_open_files", "user", "group", "schedule", "cron",
                     "timezone"}}},
                  {"collector.env"});

  c.job_name = r.getString("collector.job_name", name + "-collector");
  const std::string type = r.getString("collector.type", "exec");
  if (type == "exec") {
    c.type = CollectorConfig::Type::kExec;
  } else if (type == "plugin") {
    c.type = CollectorConfig::Type::kPlugin;
  } else {
    r.problem("collector.type", "'" + type + "' is not a collector type (exec or plugin)");
  }

  const auto command = r.get("collector.command");
  if (c.type == CollectorConfig::Type::kExec) {
    if (!command) {
      r.problem("collector.command", "is required for an exec collector");
    } else if (command->find('/') == std::string::npos) {
      if (auto found = findOnPath(*command)) {
        c.command = *found;
      } else {
        r.problem("collector.command", "'" + *command + "' is not found on PATH");
      }
    } else {
      c.command = r.resolve(*command);
      if (!isExecutableFile(c.command)) {
        r.problem("collector.command", "'" + c.command + "' is not an executable file");
      }
    }
  }
  if (const auto args = r.get("collector.args")) {
    std::string error;
    if (auto words = splitShellWords(*args, error)) {
      c.args = std::move(*words);
    } else {
      r.problem("collector.args", error);
    }
  }
  c.plugin = r.getPath("collector.plugin");
  if (c.type == CollectorConfig::Type::kPlugin) {
    if (c.plugin.empty()) {
      r.problem("collector.plugin", "is required for a plugin collector");
    } else {
      requireFile(r, "collector.plugin", c.plugin);
    }
  }
  c.working_directory = r.getPath("collector.working_directory", ".");
  requireDirectory(r, "collector.working_directory", c.working_directory);
  for (auto& [key, value] : r.prefixed("collector", "env.")) {
    if (!isValidEnvName(key)) {
      r.problem("collector.env." + key, "not a valid environment variable name");
    } else if (key.rfind("COLLECTOR_", 0) == 0) {
      r.problem("collector.env." + key, "COLLECTOR_* variables are set by collectord");
    } else {
      c.env.emplace_back(key, value);
    }
  }
  c.timeout = r.getDuration("collector.timeout");
  c.stall_timeout = r.getDuration("collector.stall_timeout");
  c.kill_grace = r.getDuration("collector.kill_grace").value_or(c.kill_grace);
  c.retries = r.getInt("collector.retries", 0, 0, 100);
  c.retry_backoff = r.getDuration("collector.retry_backoff").value_or(c.retry_backoff);
  c.retry_backoff_max = r.getDuration("collector.retry_backoff_max").value_or(c.retry_backoff_max);
  if (c.retry_backoff_max < c.retry_backoff) {
    r.problem("collector.retry_backoff_max", "must not be shorter than collector.retry_backoff");
  }
  c.concurrency = r.getInt("collector.concurrency", 1, 1, 10000);
  const std::string overlap = r.getString("collector.overlap", "queue");
  if (overlap == "queue") {
    c.overlap = CollectorConfig::Overlap::kQueue;
  } else if (overlap == "skip") {
    c.overlap = CollectorConfig::Overlap::kSkip;
  } else if (overlap == "parallel") {
    c.overlap = CollectorConfig::Overlap::kParallel;
  } else {
    r.problem("collector.overlap", "'" + overlap + "' is not an overlap mode (queue, skip or parallel)");
  }
  if (c.concurrency > 1 && c.overlap != CollectorConfig::Overlap::kParallel) {
    r.problem("collector.concurrency",
              "more than one run at once needs collector.overlap = parallel");
  }
  if (r.get("collector.nice")) c.nice = r.getInt("collector.nice", 0, -20, 19);
  c.memory_limit = r.getSize("collector.memory_limit");
  c.cpu_limit = r.getDuration("collector.cpu_limit");
  if (r.get("collector.max_open_files")) {
    c.max_open_files = static_cast<std::uint64_t>(r.getInt("collector.max_open_files", 1024, 16, 1 << 20));
  }
  c.user = r.getString("collector.user", "");
  c.group = r.getString("collector.group", "");
  if (!c.user.empty() && ::getpwnam(c.user.c_str()) == nullptr) {
    r.problem("collector.user", "no such user '" + c.user + "'");
  }
  if (!c.group.empty() && ::getgrnam(c.group.c_str()) == nullptr) {
    r.problem("collector.group", "no such group '" + c.group + "'");
  }
  const auto every = r.get("collector.schedule");
  const auto cron = r.get("collector.cron");
  const auto timezone = r.get("collector.timezone");
  std::string error;
  if (every && cron) {
    r.problem("collector.cron", "set either collector.schedule or collector.cron, not both");
  } else if (every) {
    c.schedule = Schedule::every(*every, error);
    if (!c.schedule) r.problem("collector.schedule", error);
  } else if (cron) {
    c.schedule = Schedule::cron(*cron, timezone.value_or("UTC"), error);
    if (!c.schedule) r.problem(error.find("time zone") != std::string::npos ? "collector.timezone" : "collector.cron", error);
  }
  if (timezone && !cron) r.problem("collector.timezone", "applies to collector.cron only");
  return c;
}

// "webhook.NAME" for each [webhook.NAME]: their keys are checked by readWebhookEndpoint.
std::set<std::string> webhookSections(IniReader& r) {
  std::set<std::string> sections;
  for (const std::string& name : r.children("webhook")) {
    sections.insert("webhook." + Poco::toLower(name));
  }
  return sections;
}

// The comma list of webhook event names in `text`; "*" stands for all of them.
unsigned parseWebhookEvents(IniReader& r, const std::string& key, const std::string& text) {
  unsigned events = 0;
  std::istringstream list(text);
  std::string name;
  bool named = false;
  while (std::getline(list, name, ',')) {
    name = Poco::trim(name);
    if (name.empty()) continue;
    named = true;
    if (name == "*") {
      events |= (1u << kWebhookEventTypeCount) - 1;
    } else if (const auto type = parseWebhookEventType(name)) {
      events |= 1u << static_cast<int>(*type);
    } else {
      std::string known;
      for (int i = 0; i < kWebhookEventTypeCount; ++i) {
        known += std::string(toString(static_cast<WebhookEventType>(i))) + ", ";
      }
      r.problem(key, "'" + name + "' is not a webhook event (" + known + "or * for all)");
    }
  }
  if (!named) r.problem(key, "names no event");
  return events;
}

// [webhook.NAME]: one endpoint.
std::optional<WebhookEndpoint> readWebhookEndpoint(IniReader& r, const std::string& name,
                                                   std::chrono::milliseconds default_timeout) {
  const std::string section = "webhook." + name;
  if (r.hasValue(section)) {
    r.problem(section,
              "endpoints go in sections of their own: [webhook.NAME] with url, secret and events");
    return std::nullopt;
  }
  if (!isValidCollectorName(name)) {
    r.problem(section, "'" + name +
                           "' is not a valid endpoint name (letters, digits, '-' and '_', "
                           "starting with a letter or digit)");
    return std::nullopt;
  }
  static const std::set<std::string> kKeys = {"url", "secret", "events", "timeout", "ca_file"};
  for (const std::string& key : r.children(section)) {
    const auto nested = r.children(section + "." + key);
    if (!kKeys.count(Poco::toLower(key))) {
      r.problem(section + "." + key, "unknown key");
    } else if (!nested.empty()) {
      r.problem(section + "." + key + "." + nested.front(), "unknown key");
    }
  }
  WebhookEndpoint e;
  e.name = name;
  std::string scheme;
  if (const auto url = r.get(section + ".url")) {
    e.url = *url;
    try {
      const Poco::URI uri(*url);
      scheme = Poco::toLower(uri.getScheme());
      if (scheme != "http" && scheme != "https") {
        r.problem(section + ".url", "'" + *url + "' is not an http:// or https:// URL");
      } else if (uri.getHost().empty()) {
        r.problem(section + ".url", "'" + *url + "' names no host");
      } else if (!uri.getUserInfo().empty()) {
        r.problem(section + ".url",
                  "credentials in the URL are not sent; receivers authenticate collectord by "
                  "the signature made with `secret`");
      }
    } catch (const Poco::SyntaxException& ex) {
      r.problem(section + ".url", "'" + *url + "' is not a URL: " + ex.message());
    }
  } else {
    r.problem(section + ".url", "is required");
  }
  if (const auto secret = r.get(section + ".secret")) {
    e.secret = *secret;
    std::string error;
    if (secret->rfind("@file:", 0) == 0 && !fs::path(secret->substr(6)).is_absolute()) {
      r.problem(section + ".secret", "@file: needs an absolute path");
    } else if (!resolveWebhookSecret(*secret, error)) {
      r.problem(section + ".secret", error);
    }
  } else {
    r.problem(section + ".secret", "is required: receivers check the signature made with it");
  }
  if (const auto events = r.get(section + ".events")) {
    e.events = parseWebhookEvents(r, section + ".events", *events);
  } else {
    r.problem(section + ".events",
              "is required: a comma list of batch.completed, batch.failed, batch.cancelled, "
              "job.completed, job.failed, job.cancelled, or * for all");
  }
  e.timeout = r.getDuration(section + ".timeout").value_or(default_timeout);
  e.ca_file = r.getPath(section + ".ca_file");
  requireFile(r, section + ".ca_file", e.ca_file);
  if (!e.ca_file.empty() && scheme == "http") {
    r.problem(section + ".ca_file", "applies to https:// URLs only");
  }
  return e;
}

// [webhooks] and every [webhook.NAME].
void readWebhooks(IniReader& r, WebhookSettings& w) {
  w.retry_backoff = r.getDuration("webhooks.retry_backoff").value_or(w.retry_backoff);
  w.retry_backoff_max = r.getDuration("webhooks.retry_backoff_max").value_or(w.retry_backoff_max);
  if (w.retry_backoff_max < w.retry_backoff) {
    r.problem("webhooks.retry_backoff_max", "must not be shorter than webhooks.retry_backoff");
  }
  w.max_attempts = r.getInt("webhooks.max_attempts", w.max_attempts, 1, 1000);
  w.retention_days = r.getInt("webhooks.retention_days", w.retention_days, 0, 36500);
  const auto timeout = r.getDuration("webhooks.timeout").value_or(std::chrono::seconds(10));
  for (const std::string& name : r.children("webhook")) {
    if (auto endpoint = readWebhookEndpoint(r, name, timeout)) {
      w.endpoints.push_back(std::move(*endpoint));
    }
  }
  std::sort(w.endpoints.begin(), w.endpoints.end(),
            [](const WebhookEndpoint& a, const WebhookEndpoint& b) { return a.name < b.name; });
}

// Fills `result` from the main file in `r`, whose problems go to result.problems.
void readConfig(IniReader& r, ConfigResult& result) {
  auto& problems = result.problems;
  Config config;
  std::error_code ec;
  config.file = r.path();
  if (!r.ok()) return;

  r.rejectUnknown({{"http", {"address", "port", "threads", "max_body_bytes", "timeout",
                             "tls_cert_file", "tls_key_file"}},
                   {"store", {"url"}},
                   {"collectors", {"directory", "max_concurrent", "shutdown_grace"}},
                   {"auth", {"api_keys_file", "jwt_secret", "jwt_public_key_file", "jwt_issuer",
                             "jwt_audience", "required", "public_docs", "public_health",
                             "public_metrics"}},
                   {"ratelimit", {"requests_per_minute", "trusted_proxies"}},
                   {"cors", {"allowed_origins"}},
                   {"logs", {"directory", "max_bytes_per_job", "retention_days"}},
                   {"docs", {"directory"}},
                   {"events", {"heartbeat_seconds", "max_streams", "client_buffer", "replay_buffer"}},
                   {"webhooks",
                    {"retry_backoff", "retry_backoff_max", "max_attempts", "timeout",
                     "retention_days"}},
                   {"webhook", {}}},
                  webhookSections(r));

  config.http_address = r.getString("http.address", config.http_address);
  config.http_port = r.getInt("http.port", config.http_port, 0, 65535);
  config.http_threads = r.getInt("http.threads", config.http_threads, 1, 1024);
  config.http_max_body_bytes = static_cast<std::size_t>(
      r.getInt("http.max_body_bytes", static_cast<int>(config.http_max_body_bytes), 1024,
               1 << 30));
  config.http_timeout = r.getDuration("http.timeout").value_or(config.http_timeout);
  config.tls_cert_file = r.getPath("http.tls_cert_file");
  config.tls_key_file = r.getPath("http.tls_key_file");
  requireFile(r, "http.tls_cert_file", config.tls_cert_file);
  requireFile(r, "http.tls_key_file", config.tls_key_file);
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    r.problem(config.tls_cert_file.empty() ? "http.tls_cert_file" : "http.tls_key_file",
              "HTTPS needs both http.tls_cert_file and http.tls_key_file");
  }

  config.store_url = r.getString("store.url", config.store_url);
  if (config.store_url.rfind("sqlite:", 0) == 0 && config.store_url.size() > 7) {
    config.sqlite_path = r.resolve(config.store_url.substr(7));
  } else if (config.store_url.rfind("postgresql://", 0) == 0 ||
             config.store_url.rfind("postgres://", 0) == 0) {
    // Checked when collectord connects: libpq names what is wrong with the URL then.
  } else {
    r.problem("store.url", "'" + config.store_url +
                               "' is not a store URL (sqlite:PATH or postgresql://...)");
  }

  config.collectors_directory = r.getPath("collectors.directory", "collectors.d");
  config.max_concurrent = r.getInt("collectors.max_concurrent", config.max_concurrent, 1, 100000);
  config.shutdown_grace = r.getDuration("collectors.shutdown_grace").value_or(config.shutdown_grace);

  config.api_keys_file = r.getPath("auth.api_keys_file");
  requireFile(r, "auth.api_keys_file", config.api_keys_file);
  config.jwt_secret = r.getString("auth.jwt_secret", "");
  config.jwt_public_key_file = r.getPath("auth.jwt_public_key_file");
  requireFile(r, "auth.jwt_public_key_file", config.jwt_public_key_file);
  config.jwt_issuer = r.getString("auth.jwt_issuer", "");
  config.jwt_audience = r.getString("auth.jwt_audience", "");
  config.auth_required = r.getBool("auth.required", config.auth_required);
  config.public_docs = r.getBool("auth.public_docs", config.public_docs);
  config.public_health = r.getBool("auth.public_health", config.public_health);
  config.public_metrics = r.getBool("auth.public_metrics", config.public_metrics);
  if (!config.auth_required && !isLoopback(config.http_address)) {
    r.problem("auth.required",
              "false is only allowed when http.address is a loopback address (127.0.0.1, ::1, "
              "localhost); '" + config.http_address + "' is reachable from other machines");
  }
  if (config.auth_required && config.api_keys_file.empty() && config.jwt_secret.empty() &&
      config.jwt_public_key_file.empty()) {
    r.problem("auth.required",
              "is true but no credentials are configured: set auth.api_keys_file, "
              "auth.jwt_secret or auth.jwt_public_key_file");
  }

  config.requests_per_minute =
      r.getInt("ratelimit.requests_per_minute", config.requests_per_minute, 1, 1'000'000);
  if (const auto proxies = r.get("ratelimit.trusted_proxies")) {
    std::istringstream list(*proxies);
    std::string proxy;
    while (std::getline(list, proxy, ',')) {
      proxy = Poco::trim(proxy);
      if (!proxy.empty()) config.trusted_proxies.push_back(proxy);
    }
  }
  if (const auto origins = r.get("cors.allowed_origins")) {
    std::istringstream list(*origins);
    std::string origin;
    while (std::getline(list, origin, ',')) {
      origin = Poco::trim(origin);
      if (origin.empty()) continue;
      if (origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0) {
        r.problem("cors.allowed_origins", "'" + origin + "' is not an http:// or https:// origin");
      }
      config.allowed_origins.push_back(origin);
    }
  }
  config.logs_directory = r.getPath("logs.directory", "logs");
  config.log_max_bytes_per_job = r.getSize("logs.max_bytes_per_job").value_or(config.log_max_bytes_per_job);
  config.log_retention_days = r.getInt("logs.retention_days", config.log_retention_days, 0, 36500);
  config.docs_directory = r.getPath("docs.directory", "../docs");
  config.events_heartbeat = std::chrono::seconds(r.getInt(
      "events.heartbeat_seconds", static_cast<int>(config.events_heartbeat.count()), 1, 3600));
  config.events_max_streams =
      r.getInt("events.max_streams", config.events_max_streams, 1, 100'000);
  config.events_client_buffer =
      r.getSize("events.client_buffer").value_or(config.events_client_buffer);
  if (config.events_client_buffer < 4096 || config.events_client_buffer > (1ull << 30)) {
    r.problem("events.client_buffer", "must be from 4K to 1G");
  }
  config.events_replay_buffer =
      r.getSize("events.replay_buffer").value_or(config.events_replay_buffer);
  if (config.events_replay_buffer > (1ull << 32)) {
    r.problem("events.replay_buffer", "must be at most 4G");
  }
  readWebhooks(r, config.webhooks);


  if (!fs::is_directory(config.collectors_directory, ec)) {
    r.problem("collectors.directory",
              "directory '" + config.collectors_directory + "' does not exist");
  } else {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(config.collectors_directory, ec)) {
      if (entry.path().extension() == ".ini") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string name = file.stem().string();
      if (!isValidCollectorName(name)) {
        problems.push_back({file.string(), "",
                            "'" + name +
                                "' is not a valid collector name (letters, digits, '-' and '_', "
                                "starting with a letter or digit)"});
        continue;
      }
      IniReader collector(file.string(), problems);
      config.collectors.push_back(readCollector(collector, name));
    }
  }

  if (problems.empty()) result.config = std::move(config);
}

}  // namespace

ConfigResult loadConfig(const std::string& path) {
  ConfigResult result;
  std::error_code ec;
  IniReader r(fs::absolute(path, ec).lexically_normal().string(), result.problems);
  readConfig(r, result);
  return result;
}

ConfigResult parseConfig(std::string_view text, const std::string& path) {
  ConfigResult result;
  IniReader r(path, text, result.problems);
  readConfig(r, result);
  return result;
}

CollectorConfig parseCollectorConfig(std::string_view text, const std::string& path,
                                     std::vector<ConfigProblem>& problems) {
  IniReader r(path, text, problems);
  return readCollector(r, fs::path(path).stem().string());
}

}  // namespace collectord
