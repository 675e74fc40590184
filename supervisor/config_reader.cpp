#include "config_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace collectord::config_detail {

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

}  // namespace collectord::config_detail
