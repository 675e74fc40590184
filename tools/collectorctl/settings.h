#pragma once

// Where collectorctl finds its server and credentials: flags, then the environment, then the
// user's client.ini, then the default URL.

#include <optional>
#include <string>
#include <vector>

#include "command_line.h"

namespace collectorctl {

inline constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";

// The resolved settings. `api_key` and `ca_file` are empty when none was given.
struct Settings {
  std::string url;
  std::string api_key;
  std::string ca_file;
  std::vector<std::string> warnings;  // for stderr: e.g. a key file others can read
};

// ${XDG_CONFIG_HOME}/collectord/client.ini when XDG_CONFIG_HOME is an absolute path, else
// ${HOME}/.config/collectord/client.ini; "" when neither can be found.
std::string clientConfigPath();

// Resolves each setting from, in order: the command line's --url, --api-key and --ca-file;
// COLLECTORD_URL, COLLECTORD_API_KEY and COLLECTORD_CA_FILE (empty values count as unset);
// client.ini's url, api_key and ca_file; the default URL. A client.ini that exists but cannot
// be read, has a line that is not `key = value`, or names an unknown key is an error (the
// message names the file and line); so is a URL that is not http:// or https://.
// Returns the settings, or sets `error` and returns nullopt.
std::optional<Settings> resolveSettings(const CommandLine& line, std::string& error);

}  // namespace collectorctl
