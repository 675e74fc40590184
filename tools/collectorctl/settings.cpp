#include "settings.h"

#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace collectorctl {
namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// client.ini: `key = value` lines, optionally under a [client] section; comment lines start
// with ';' or '#', and ` ;` or ` #` starts a comment after a value; a value may be quoted.
// Returns the keys, or sets `error`.
std::optional<std::map<std::string, std::string>> readClientIni(const std::string& path,
                                                                std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::map<std::string, std::string> values;
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::string text = trim(raw);
    if (text.empty() || text[0] == ';' || text[0] == '#') continue;
    if (text.front() == '[') {
      if (text != "[client]") {
        error = where + "unknown section " + text + " (only [client] is read)";
        return std::nullopt;
      }
      continue;
    }
    const auto eq = text.find('=');
    if (eq == std::string::npos) {
      error = where + "expected 'key = value'";
      return std::nullopt;
    }
    const std::string key = trim(text.substr(0, eq));
    std::string value = trim(text.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    } else {
      for (std::size_t i = 1; i < value.size(); ++i) {
        if ((value[i] == ';' || value[i] == '#') && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
          value = trim(value.substr(0, i));
          break;
        }
      }
    }
    if (key != "url" && key != "api_key" && key != "ca_file") {
      error = where + "unknown key '" + key + "' (known: url, api_key, ca_file)";
      return std::nullopt;
    }
    values[key] = value;
  }
  return values;
}

bool readableByOthers(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && (info.st_mode & (S_IRGRP | S_IROTH)) != 0;
}

}  // namespace

std::string clientConfigPath() {
  if (auto xdg = environment("XDG_CONFIG_HOME"); xdg && xdg->front() == '/') {
    return *xdg + "/collectord/client.ini";
  }
  if (auto home = environment("HOME")) return *home + "/.config/collectord/client.ini";
  return "";
}

std::optional<Settings> resolveSettings(const CommandLine& line, std::string& error) {
  std::map<std::string, std::string> file;
  const std::string path = clientConfigPath();
  struct stat info {};
  if (!path.empty() && ::stat(path.c_str(), &info) == 0) {
    auto values = readClientIni(path, error);
    if (!values) return std::nullopt;
    file = std::move(*values);
  }
  const auto pick = [&](const char* option, const char* variable, const char* key) -> std::string {
    if (auto value = line.value(option)) return *value;
    if (auto value = environment(variable)) return *value;
    if (auto it = file.find(key); it != file.end()) return it->second;
    return "";
  };

  Settings settings;
  settings.url = pick("url", "COLLECTORD_URL", "url");
  if (settings.url.empty()) settings.url = kDefaultUrl;
  settings.api_key = pick("api-key", "COLLECTORD_API_KEY", "api_key");
  settings.ca_file = pick("ca-file", "COLLECTORD_CA_FILE", "ca_file");

  try {
    const Poco::URI uri(settings.url);
    if ((uri.getScheme() != "http" && uri.getScheme() != "https") || uri.getHost().empty()) {
      error = "the server URL must be http://HOST[:PORT] or https://HOST[:PORT], not '" +
              settings.url + "'";
      return std::nullopt;
    }
    if (!uri.getQuery().empty() || !uri.getFragment().empty()) {
      error = "the server URL must not have a query or fragment: '" + settings.url + "'";
      return std::nullopt;
    }
  } catch (const Poco::SyntaxException& e) {
    error = "the server URL '" + settings.url + "' is not a URL: " + e.message();
    return std::nullopt;
  }
  if (file.count("api_key") && !file.at("api_key").empty() && readableByOthers(path)) {
    settings.warnings.push_back(path + " holds an API key and other users can read it (chmod 600 " +
                                path + ")");
  }
  return settings;
}

}  // namespace collectorctl
