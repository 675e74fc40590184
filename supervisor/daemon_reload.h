#pragma once

// What main() needs beyond starting and stopping parts: loading the credentials a
// configuration names, and reloading on SIGHUP.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "api_service.h"
#include "auth.h"
#include "config.h"
#include "supervisor.h"

namespace collectord {

// The credentials of `config`, or null with `error` when they cannot be used; refused as well
// when auth is required and nobody could ever authenticate.
std::unique_ptr<http::Authenticator> loadAuthenticator(const Config& config, std::string& error);

// Waits for SIGHUP on a thread of its own and reloads: the collectors, limits and credentials.
// An invalid new configuration is rejected whole; the old one stays in effect. Keys that only a
// restart applies are named in a warning.
class ReloadOnHangup {
 public:
  // `on_reload` (optional) gets each configuration applied, after the supervisor has it.
  ReloadOnHangup(std::string config_path, Supervisor& supervisor, http::ApiService& service,
                 std::function<void(const Config&)> on_reload = {});
  ~ReloadOnHangup();

  // The signals collectord acts on are blocked in every thread before any exists, so only the
  // threads that sigwait for them see them: SIGHUP here, SIGTERM, SIGINT and SIGQUIT in
  // waitForTerminationRequest(). A second SIGTERM during a graceful stop is then absorbed
  // instead of killing the process with the default action. Call first thing in main.
  static void blockSignals();

 private:
  void run();
  void reload();

  std::string path_;
  Supervisor& supervisor_;
  http::ApiService& service_;
  std::function<void(const Config&)> on_reload_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace collectord
