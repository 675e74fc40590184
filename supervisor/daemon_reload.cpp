#include "daemon_reload.h"

#include <Poco/Logger.h>
#include <pthread.h>
#include <signal.h>

namespace collectord {
namespace {

http::AuthSettings authSettingsOf(const Config& config) {
  http::AuthSettings settings;
  settings.api_keys_file = config.api_keys_file;
  settings.jwt_secret = config.jwt_secret;
  settings.jwt_public_key_file = config.jwt_public_key_file;
  settings.jwt_issuer = config.jwt_issuer;
  settings.jwt_audience = config.jwt_audience;
  return settings;
}

}  // namespace

std::unique_ptr<http::Authenticator> loadAuthenticator(const Config& config, std::string& error) {
  auto authenticator = http::Authenticator::load(authSettingsOf(config), error);
  if (authenticator && config.auth_required && authenticator->keyCount() == 0 &&
      !authenticator->jwtEnabled()) {
    error = config.api_keys_file +
            ": auth.required is true but the file has no keys and no JWT key is set: "
            "no request could be authenticated";
    return nullptr;
  }
  return authenticator;
}

namespace {

// A reload applies collectors, limits and credentials; these keys take effect at restart only.
void warnAboutRestartOnlyChanges(const Config& before, const Config& after) {
  Poco::Logger& log = Poco::Logger::get("collectord");
  const std::vector<std::pair<const char*, bool>> changes = {
      {"http.address / http.port / http.threads", before.http_address != after.http_address ||
                                                      before.http_port != after.http_port ||
                                                      before.http_threads != after.http_threads},
      {"http.tls_cert_file / http.tls_key_file",
       before.tls_cert_file != after.tls_cert_file || before.tls_key_file != after.tls_key_file},
      {"http.max_body_bytes / http.timeout",
       before.http_max_body_bytes != after.http_max_body_bytes ||
           before.http_timeout != after.http_timeout},
      {"store.url", before.store_url != after.store_url},
      {"cors.allowed_origins", before.allowed_origins != after.allowed_origins},
      {"ratelimit.*", before.requests_per_minute != after.requests_per_minute ||
                          before.trusted_proxies != after.trusted_proxies},
      {"auth.required / auth.public_*", before.auth_required != after.auth_required ||
                                            before.public_docs != after.public_docs ||
                                            before.public_health != after.public_health ||
                                            before.public_metrics != after.public_metrics},
      {"docs.directory", before.docs_directory != after.docs_directory},
      {"events.*", before.events_heartbeat != after.events_heartbeat ||
                       before.events_max_streams != after.events_max_streams ||
                       before.events_client_buffer != after.events_client_buffer ||
                       before.events_replay_buffer != after.events_replay_buffer},
  };
  for (const auto& [keys, changed] : changes) {
    if (changed)
      log.warning("reload: %s changed; it takes effect at the next restart", std::string(keys));
  }
}

}  // namespace

ReloadOnHangup::ReloadOnHangup(std::string config_path, Supervisor& supervisor,
                               http::ApiService& service,
                               std::function<void(const Config&)> on_reload)
    : path_(std::move(config_path)),
      supervisor_(supervisor),
      service_(service),
      on_reload_(std::move(on_reload)) {
  // The thread starts with SIGHUP blocked, so that the one the destructor sends it waits for
  // sigwait() whenever it arrives, instead of ending the process.
  sigset_t hangup, old;
  sigemptyset(&hangup);
  sigaddset(&hangup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hangup, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

ReloadOnHangup::~ReloadOnHangup() {
  stop_ = true;
  pthread_kill(thread_.native_handle(), SIGHUP);  // wakes the sigwait()
  thread_.join();
}

void ReloadOnHangup::blockSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void ReloadOnHangup::run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  // Asleep until a SIGHUP: to the process (a reload), or to this thread from the destructor.
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0 || sig != SIGHUP) continue;
    if (stop_) return;
    try {
      reload();
    } catch (const std::exception& e) {
      // An exception leaving this thread would end the process; a failed reload must not.
      Poco::Logger::get("collectord").error("reload failed: %s", std::string(e.what()));
    }
  }
}

void ReloadOnHangup::reload() {
  Poco::Logger& log = Poco::Logger::get("collectord");
  log.information("SIGHUP: reloading %s", path_);
  ConfigResult loaded = loadConfig(path_);
  if (!loaded.config) {
    for (const ConfigProblem& p : loaded.problems) log.error("reload rejected: %s", p.toString());
    return;
  }
  std::string error;
  auto auth = loadAuthenticator(*loaded.config, error);
  if (!auth) {
    log.error("reload rejected: %s", error);
    return;
  }
  warnAboutRestartOnlyChanges(*supervisor_.config(), *loaded.config);
  const auto n = loaded.config->collectors.size();
  supervisor_.reload(std::move(*loaded.config));
  service_.setAuthenticator(std::move(auth));
  if (on_reload_) on_reload_(*supervisor_.config());
  log.information("reloaded: %z collectors; running jobs keep their settings", n);
}

}  // namespace collectord
