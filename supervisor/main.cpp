// collectord: parse options, build the parts, start them, wait for a termination signal,
// stop them in reverse order. Everything else lives in the parts.
#include <Poco/AsyncChannel.h>
#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/File.h>
#include <Poco/FileChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/SplitterChannel.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "auth.h"
#include "config.h"
#include "daemon_context.h"
#include "daemon_reload.h"
#include "event_hub.h"
#include "http_server.h"
#include "postgres_job_store.h"
#include "sqlite_job_store.h"
#include "supervisor.h"
#include "time_format.h"
#include "webhook_sender.h"
#include "webhook_views.h"

namespace collectord {
namespace {

using Poco::Util::Option;
using Poco::Util::OptionCallback;
using Poco::Util::OptionSet;

void setUpLogging(const Config& config) {
  std::filesystem::create_directories(config.logs_directory);
  Poco::AutoPtr<Poco::PatternFormatter> format(
      new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
  format->setProperty("times", "UTC");
  Poco::AutoPtr<Poco::SplitterChannel> split(new Poco::SplitterChannel);
  split->addChannel(new Poco::ConsoleChannel);
  Poco::AutoPtr<Poco::FileChannel> file(
      new Poco::FileChannel(config.logs_directory + "/collectord.log"));
  file->setProperty("rotation", "10 M");
  file->setProperty("archive", "number");
  file->setProperty("purgeCount", "5");
  split->addChannel(file);
  Poco::AutoPtr<Poco::FormattingChannel> formatted(new Poco::FormattingChannel(format, split));
  Poco::AutoPtr<Poco::AsyncChannel> async(new Poco::AsyncChannel(formatted));
  Poco::Logger::root().setChannel(async);
  Poco::Logger::root().setLevel(Poco::Message::PRIO_INFORMATION);
}

// Names this daemon instance in the rows it writes: host, port, pid and start time.
std::string instanceId(const Config& config) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(config.http_port) + ":" +
         std::to_string(::getpid()) + ":" + formatTimestamp(nowMicros());
}

// The store store.url names. Each implements both the job store and the webhook outbox.
struct Stores {
  std::unique_ptr<SqliteJobStore> sqlite;
  std::unique_ptr<PostgresJobStore> postgres;

  JobStore& jobs() { return sqlite ? static_cast<JobStore&>(*sqlite) : *postgres; }
  WebhookStore& outbox() { return sqlite ? static_cast<WebhookStore&>(*sqlite) : *postgres; }
};

Stores openStores(const Config& config) {
  Stores stores;
  if (config.sqlite_path.empty()) {
    stores.postgres = std::make_unique<PostgresJobStore>(config.store_url, instanceId(config));
    // Cluster nodes share the database; a lone collectord takes it for itself.
    stores.postgres->holdExclusiveUse(config.cluster.enabled);
  } else {
    stores.sqlite = std::make_unique<SqliteJobStore>(config.sqlite_path, instanceId(config));
  }
  return stores;
}

// Writes the bound port to `path` atomically, so a reader never sees a half-written number.
void writePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << "\n";
  }
  std::filesystem::rename(temp, path);
}

class CollectordApp final : public Poco::Util::ServerApplication {
 protected:
  void defineOptions(OptionSet& options) override {
    ServerApplication::defineOptions(options);
    options.addOption(Option("help", "h", "Show this help and exit.")
                          .callback(OptionCallback<CollectordApp>(this, &CollectordApp::onHelp)));
    options.addOption(Option("config", "c", "The main configuration file (INI).")
                          .argument("FILE")
                          .callback(OptionCallback<CollectordApp>(this, &CollectordApp::onConfig)));
    options.addOption(
        Option("check-config", "", "Validate the configuration, print every problem, and exit.")
            .callback(OptionCallback<CollectordApp>(this, &CollectordApp::onCheck)));
    options.addOption(
        Option("port-file", "", "Once listening, write the bound HTTP port to FILE.")
            .argument("FILE")
            .callback(OptionCallback<CollectordApp>(this, &CollectordApp::onPortFile)));
  }

  int main(const ArgVec& args) override {
    if (help_) {
      Poco::Util::HelpFormatter help(options());
      help.setCommand(commandName());
      help.setUsage("--config=FILE [--check-config] [--daemon] [--pidfile=FILE]");
      help.setHeader("Runs data collectors under supervision and serves their status over HTTP.");
      help.format(std::cout);
      return EXIT_OK;
    }
    if (!args.empty()) {
      std::cerr << "collectord: unexpected argument '" << args.front() << "' (see --help)\n";
      return EXIT_USAGE;
    }
    if (config_path_.empty()) {
      std::cerr << "collectord: --config=FILE is required (see --help)\n";
      return EXIT_USAGE;
    }
    // --check-config answers 1 like any checker; a daemon refused at start answers EX_CONFIG
    // (78), which systemd units can match with RestartPreventExitStatus.
    const int config_failure = check_only_ ? 1 : EXIT_CONFIG;
    ConfigResult loaded = loadConfig(config_path_);
    if (!loaded.config) {
      for (const ConfigProblem& p : loaded.problems) std::cerr << p.toString() << "\n";
      std::cerr << "collectord: " << loaded.problems.size() << " configuration problem"
                << (loaded.problems.size() == 1 ? "" : "s") << "\n";
      return config_failure;
    }
    const Config& config = *loaded.config;
    std::string auth_error;
    auto authenticator = loadAuthenticator(config, auth_error);
    if (!authenticator) {
      std::cerr << auth_error << "\ncollectord: 1 configuration problem\n";
      return config_failure;
    }
    if (check_only_) {
      const auto n = config.collectors.size();
      std::cout << "configuration OK: " << n << " collector" << (n == 1 ? "" : "s") << "\n";
      return EXIT_OK;
    }
    return serve(config, std::move(authenticator));
  }

 private:
  int serve(const Config& config, std::shared_ptr<const http::Authenticator> authenticator) {
    ReloadOnHangup::blockSignals();  // before the first thread (logging starts one)
    setUpLogging(config);
    Poco::Logger& log = Poco::Logger::get("collectord");
    log.information("collectord starting with %s (%z collectors)", config.file,
                    config.collectors.size());
    for (const std::string& key : config.not_in_effect) {
      log.warning("%s is set but not in effect in this release yet", key);
    }
    if (!config.auth_required) {
      log.warning("auth.required = false: the API accepts requests without credentials");
    }
    try {
      Metrics metrics;
      Stores stores = openStores(config);
      JobStore& store = stores.jobs();
      http::EventHub events(store,
                            {config.events_heartbeat, config.events_max_streams,
                             config.events_client_buffer, config.events_replay_buffer},
                            metrics);
      WebhookSender webhooks(stores.outbox(), metrics);
      SupervisorOptions supervision;
      supervision.on_saved.push_back([&events](const StateChange& c) { events.publish(c); });
      supervision.on_saved.push_back([&webhooks](const StateChange& c) { webhooks.noteSaved(c); });
      supervision.webhook_payload = http::webhookPayloadJson;
      ClusterStore* cluster = config.cluster.enabled ? stores.postgres.get() : nullptr;
      supervision.cluster = cluster;
      Supervisor supervisor(config, store, supervision, &metrics);
      http::DaemonContext context(store, supervisor, &stores.outbox(), cluster);
      http::Router router;
      http::addApiRoutes(router, context, metrics, config.docs_directory,
                         {config.public_docs, config.public_health, config.public_metrics},
                         &events);
      http::RateLimiter limiter(config.requests_per_minute);
      http::ApiService service(router, {config.auth_required, config.trusted_proxies},
                               std::move(authenticator), http::CorsPolicy(config.allowed_origins),
                               limiter, metrics);
      http::ServerOptions options;
      options.address = config.http_address;
      options.port = config.http_port;
      options.threads = config.http_threads;
      options.max_body_bytes = config.http_max_body_bytes;
      options.timeout_seconds =
          static_cast<int>(std::max<long long>(1, config.http_timeout.count() / 1000));
      options.tls_cert_file = config.tls_cert_file;
      options.tls_key_file = config.tls_key_file;
      // Bind before any job starts: a port in use must not cancel the recovered backlog.
      http::HttpServer server(options, service);
      events.start();
      supervisor.start();
      webhooks.configure(config.webhooks);  // after recovery, whose events it delivers
      server.start();
      log.information("listening on %s://%s:%d",
                      std::string(options.tls_cert_file.empty() ? "http" : "https"),
                      config.http_address, server.port());
      if (!port_file_.empty()) writePortFile(port_file_, server.port());

      {
        ReloadOnHangup reloader(config.file, supervisor, service,
                                [&webhooks](const Config& c) { webhooks.configure(c.webhooks); });
        waitForTerminationRequest();
      }  // no reload once stopping has begun

      log.information("stopping");
      supervisor.stop();
      webhooks.stop();  // what is still pending goes out after the next start
      events.stop();  // after the supervisor's last writes, which streams show
      server.stop();
      log.information("stopped");
      return EXIT_OK;
    } catch (const StoreError& e) {
      log.fatal("cannot use the job store: %s", std::string(e.what()));
      return EXIT_CANTCREAT;
    } catch (const Poco::Exception& e) {
      log.fatal("cannot start: %s", e.displayText());
      return EXIT_SOFTWARE;
    } catch (const std::exception& e) {
      log.fatal("cannot start: %s", std::string(e.what()));
      return EXIT_SOFTWARE;
    }
  }

  void onHelp(const std::string&, const std::string&) {
    help_ = true;
    stopOptionsProcessing();
  }
  // --daemon changes directory to / before main() runs: keep the paths the user meant.
  static std::string absolute(const std::string& path) {
    std::error_code ec;
    const auto p = std::filesystem::absolute(path, ec);
    return ec ? path : p.string();
  }
  void onConfig(const std::string&, const std::string& value) { config_path_ = absolute(value); }
  void onCheck(const std::string&, const std::string&) { check_only_ = true; }
  void onPortFile(const std::string&, const std::string& value) { port_file_ = absolute(value); }

  bool help_ = false;
  bool check_only_ = false;
  std::string config_path_;
  std::string port_file_;
};

}  // namespace
}  // namespace collectord

POCO_SERVER_MAIN(collectord::CollectordApp)
