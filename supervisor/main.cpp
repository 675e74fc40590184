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

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "config.h"
#include "daemon_context.h"
#include "http_server.h"
#include "sqlite_job_store.h"
#include "supervisor.h"

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
  Poco::AutoPtr<Poco::FileChannel> file(new Poco::FileChannel(config.logs_directory + "/collectord.log"));
  file->setProperty("rotation", "10 M");
  file->setProperty("archive", "number");
  file->setProperty("purgeCount", "5");
  split->addChannel(file);
  Poco::AutoPtr<Poco::FormattingChannel> formatted(new Poco::FormattingChannel(format, split));
  Poco::AutoPtr<Poco::AsyncChannel> async(new Poco::AsyncChannel(formatted));
  Poco::Logger::root().setChannel(async);
  Poco::Logger::root().setLevel(Poco::Message::PRIO_INFORMATION);
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
    ConfigResult loaded = loadConfig(config_path_);
    if (!loaded.config) {
      for (const ConfigProblem& p : loaded.problems) std::cerr << p.toString() << "\n";
      std::cerr << "collectord: " << loaded.problems.size() << " configuration problem"
                << (loaded.problems.size() == 1 ? "" : "s") << "\n";
      return EXIT_CONFIG;
    }
    const Config& config = *loaded.config;
    if (check_only_) {
      const auto n = config.collectors.size();
      std::cout << "configuration OK: " << n << " collector" << (n == 1 ? "" : "s") << "\n";
      return EXIT_OK;
    }
    return serve(config);
  }

 private:
  int serve(const Config& config) {
    setUpLogging(config);
    Poco::Logger& log = Poco::Logger::get("collectord");
    log.information("collectord starting with %s (%z collectors)", config.file,
                    config.collectors.size());
    for (const std::string& key : config.not_in_effect) {
      log.warning("%s is set but not in effect in this release yet", key);
    }
    try {
      SqliteJobStore store(config.sqlite_path);
      Supervisor supervisor(config, store);
      supervisor.start();
      http::DaemonContext context(config, store, supervisor);
      http::Router router;
      http::addApiRoutes(router, context);
      http::HttpServer server(
          http::ServerOptions{config.http_address, config.http_port, config.http_threads},
          router);
      server.start();
      log.information("listening on http://%s:%d", config.http_address, server.port());
      if (!port_file_.empty()) writePortFile(port_file_, server.port());

      waitForTerminationRequest();

      log.information("stopping");
      supervisor.stop();
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
  void onConfig(const std::string&, const std::string& value) { config_path_ = value; }
  void onCheck(const std::string&, const std::string&) { check_only_ = true; }
  void onPortFile(const std::string&, const std::string& value) { port_file_ = value; }

  bool help_ = false;
  bool check_only_ = false;
  std::string config_path_;
  std::string port_file_;
};

}  // namespace
}  // namespace collectord

POCO_SERVER_MAIN(collectord::CollectordApp)
