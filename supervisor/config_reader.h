#pragma once

// The parts of configuration parsing that config.cpp, collector_config.cpp and
// webhook_config.cpp share: the INI reader that checks keys and values as it reads them, and the
// checks of paths and names. Internal to loading a configuration (config.h is the interface).

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <Poco/Util/IniFileConfiguration.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "time_format.h"

namespace collectord::config_detail {

namespace fs = std::filesystem;

// `in` without comments: one that starts with whitespace followed by ';' or '#' outside quotes
// is cut, and '#' comment lines are blanked, which Poco's INI reader does not know.
std::string stripComments(std::istream& in);

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

bool isLoopback(const std::string& address);
bool isExecutableFile(const std::string& path);
// The first executable NAME in $PATH.
std::optional<std::string> findOnPath(const std::string& name);
bool isValidCollectorName(const std::string& name);
// A node id or tag: 1 to 64 of letters, digits, '.', '_', ':' and '-'.
bool isValidNodeName(const std::string& name);
bool isValidEnvName(const std::string& name);
// A problem for `key` unless `path` is an existing directory.
void requireDirectory(IniReader& reader, const std::string& key, const std::string& path);
// A problem for `key` unless `path` is empty or an existing regular file.
void requireFile(IniReader& reader, const std::string& key, const std::string& path);

// The collector in `r` (one collectors.d/NAME.ini file), its problems reported to `r`.
CollectorConfig readCollector(IniReader& r, const std::string& name);

// "webhook.NAME" for each [webhook.NAME]: their keys are checked by readWebhooks.
std::set<std::string> webhookSections(IniReader& r);
// [webhooks] and every [webhook.NAME].
void readWebhooks(IniReader& r, WebhookSettings& w);

// Reads [node] and [cluster] into config.cluster; needs config.store_url and http_port read.
void readCluster(IniReader& r, Config& config);

// The comma-separated, trimmed, non-empty items of a list value.
std::vector<std::string> splitList(const std::string& value);

}  // namespace collectord::config_detail
