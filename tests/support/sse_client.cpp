#include "sse_client.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketAddress.h>

#include <charconv>
#include <sstream>
#include <stdexcept>

namespace collectord::test {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::uint64_t SseEvent::number() const {
  std::uint64_t n = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), n);
  return error == std::errc() && end == id.data() + id.size() ? n : 0;
}

Poco::JSON::Object::Ptr SseEvent::json() const {
  Poco::JSON::Parser parser;
  return parser.parse(data).extract<Poco::JSON::Object::Ptr>();
}

SseStream::SseStream(int port, const std::string& path, const SseOptions& options)
    : socket_(Poco::Net::SocketAddress::IPv4) {
  if (options.receive_buffer) socket_.setReceiveBufferSize(*options.receive_buffer);
  socket_.connect(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)),
                  Poco::Timespan(10, 0));
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  for (const auto& [name, value] : options.headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const int n = socket_.sendBytes(request.data() + sent, static_cast<int>(request.size() - sent));
    if (n <= 0) throw std::runtime_error("cannot send the request for " + path);
    sent += static_cast<std::size_t>(n);
  }
}

bool SseStream::receive(Clock::time_point deadline) {
  if (closed_) return false;
  const auto left =
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  try {
    if (!socket_.poll(Poco::Timespan(left), Poco::Net::Socket::SELECT_READ)) return false;
    char chunk[16384];
    const int n = socket_.receiveBytes(chunk, sizeof chunk);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  } catch (const Poco::Exception&) {
    closed_ = true;  // reset by the server
    return false;
  }
}

const std::optional<HttpResponse>& SseStream::head(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!head_) {
    const auto end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      Poco::Net::HTTPResponse parsed;
      std::istringstream in(buffer_.substr(0, end + 4));
      parsed.read(in);
      HttpResponse response;
      response.status = static_cast<int>(parsed.getStatus());
      response.reason = parsed.getReason();
      for (const auto& [name, value] : parsed) response.headers.emplace_back(name, value);
      std::string rest = buffer_.substr(end + 4);
      if (parsed.hasContentLength()) {
        const auto length = static_cast<std::size_t>(parsed.getContentLength64());
        if (rest.size() >= length) {
          response.body = rest.substr(0, length);
          try {
            Poco::JSON::Parser parser;
            response.json = parser.parse(response.body);
          } catch (const Poco::Exception&) {
            response.json.clear();  // not JSON: tests look at `body`
          }
          buffer_ = rest.substr(length);
          head_ = std::move(response);
          break;
        }
      } else {
        buffer_ = std::move(rest);
        head_ = std::move(response);
        break;
      }
    }
    if (!receive(deadline)) break;
  }
  return head_;
}

std::optional<SseEvent> SseStream::parseOne() {
  for (;;) {
    const auto end = buffer_.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    const std::string block = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    SseEvent event;
    event.event = "message";
    event.received = Clock::now();
    bool any = false;
    std::istringstream lines(block);
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line.front() == ':') {
        comments_.push_back(event.received);
        continue;
      }
      const auto colon = line.find(':');
      const std::string field = line.substr(0, colon);
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.erase(0, 1);
      any = true;
      if (field == "id") {
        event.id = value;
      } else if (field == "event") {
        event.event = value;
      } else if (field == "data") {
        event.data += (event.data.empty() ? "" : "\n") + value;
      }
    }
    if (any) return event;
  }
}

std::optional<SseEvent> SseStream::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!head(timeout)) return std::nullopt;
  for (;;) {
    if (auto event = parseOne()) return event;
    if (!receive(deadline)) return std::nullopt;
  }
}

std::vector<SseEvent> SseStream::pump() {
  std::vector<SseEvent> events;
  if (!closed_) {
    try {
      while (socket_.poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ)) {
        char chunk[16384];
        const int n = socket_.receiveBytes(chunk, sizeof chunk);
        if (n <= 0) {
          closed_ = true;
          break;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
      }
    } catch (const Poco::Exception&) {
      closed_ = true;
    }
  }
  if (!head(std::chrono::milliseconds(0))) return events;
  while (auto event = parseOne()) events.push_back(std::move(*event));
  return events;
}

std::vector<SseEvent> SseStream::readUntil(const std::function<bool(const SseEvent&)>& done,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<SseEvent> events;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    auto event = next(left);
    if (!event) break;
    events.push_back(std::move(*event));
    if (done(events.back())) break;
  }
  return events;
}

std::optional<std::vector<SseEvent>> SseStream::readToClose(std::chrono::milliseconds timeout) {
  std::vector<SseEvent> events = readUntil([](const SseEvent&) { return false; }, timeout);
  if (!closed_) return std::nullopt;
  return events;
}

std::vector<SseEvent> eventsNamed(const std::vector<SseEvent>& events, const std::string& name) {
  std::vector<SseEvent> out;
  for (const SseEvent& event : events) {
    if (event.event == name) out.push_back(event);
  }
  return out;
}

}  // namespace collectord::test
