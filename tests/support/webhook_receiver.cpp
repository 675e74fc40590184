#include "webhook_receiver.h"

#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>


namespace collectord::test {

WebhookReceiver::WebhookReceiver(const TempDir& dir, const std::string& name,
                                 const std::string& secret_file,
                                 const std::vector<std::string>& args, int port)
    : log_(dir.file(name + ".jsonl")) {
  const std::string port_file = dir.file(name + ".port");
  ::unlink(port_file.c_str());
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   COLLECTORD_SOURCE_DIR "/examples/webhooks/receiver.py",
                                   "--port", std::to_string(port),
                                   "--port-file", port_file,
                                   "--secret-file", secret_file,
                                   "--log", log_};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir.file(name + ".out");
  const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) throw std::runtime_error("cannot open " + out);
  std::vector<char*> c_argv = cStrings(argv);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::execv(c_argv[0], c_argv.data());
    ::_exit(127);
  }
  ::close(out_fd);
  if (pid_ < 0) throw std::runtime_error("fork failed for the webhook receiver");
  if (!waitUntil([&] { return readFile(port_file).value_or("").find('\n') != std::string::npos; },
                 std::chrono::seconds(10))) {
    throw std::runtime_error("the webhook receiver did not start: " + readFile(out).value_or(""));
  }
  port_ = std::stoi(*readFile(port_file));
}

void WebhookReceiver::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string WebhookReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<Poco::JSON::Object::Ptr> WebhookReceiver::requests() const {
  std::vector<Poco::JSON::Object::Ptr> out;
  const std::string text = readFile(log_).value_or("");
  // Whole lines only: the receiver may be writing the last one right now.
  std::size_t at = 0;
  for (std::size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
    Poco::JSON::Parser parser;
    out.push_back(parser.parse(text.substr(at, end - at)).extract<Poco::JSON::Object::Ptr>());
  }
  return out;
}

std::vector<Poco::JSON::Object::Ptr> WebhookReceiver::requestsFor(
    const std::string& event_id) const {
  std::vector<Poco::JSON::Object::Ptr> out;
  for (const auto& request : requests()) {
    if (stringField(*request, "event_id") == event_id) out.push_back(request);
  }
  return out;
}

}  // namespace collectord::test
