#include "event_stream.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketImpl.h>
#include <sys/socket.h>

#include <istream>

namespace collectorctl {
namespace {

// Silence from the server for this long means the connection is dead: collectord sends
// heartbeats well within it.
constexpr auto kStreamReceiveTimeout = std::chrono::seconds(45);

}  // namespace

std::optional<ServerEvent> EventStreamParser::feed(const std::string& line) {
  if (line.empty()) {
    if (!has_data_) {
      type_.clear();
      return std::nullopt;
    }
    ServerEvent event;
    if (!type_.empty()) event.type = type_;
    event.data = data_;
    event.id = last_id_;
    type_.clear();
    data_.clear();
    has_data_ = false;
    return event;
  }
  if (line[0] == ':') return std::nullopt;
  std::string field = line;
  std::string value;
  if (const auto colon = line.find(':'); colon != std::string::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  }
  if (field == "event") {
    type_ = value;
  } else if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  } else if (field == "id" && value.find('\0') == std::string::npos) {
    last_id_ = value;
  }
  return std::nullopt;
}

EventStream::EventStream(const ApiClient& client, std::string path, std::string last_event_id)
    : client_(client), path_(std::move(path)), last_event_id_(last_event_id) {
  reader_ = std::thread([this, last_event_id] { read(last_event_id); });
}

EventStream::~EventStream() {
  stop();
  if (reader_.joinable()) reader_.join();
}

void EventStream::setState(State state, std::string error) {
  {
    std::lock_guard lock(mutex_);
    state_ = state;
    if (!error.empty()) error_ = std::move(error);
  }
  changed_.notify_all();
}

void EventStream::read(std::string last_event_id) {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  try {
    session = client_.newSession(kStreamReceiveTimeout);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      session_ = session.get();
    }
    Poco::Net::HTTPRequest request = client_.newRequest("GET", path_);
    request.set("Accept", "text/event-stream");
    if (!last_event_id.empty()) request.set("Last-Event-ID", last_event_id);
    session->sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    const int status = static_cast<int>(response.getStatus());
    const bool is_stream = response.getContentType().find("text/event-stream") == 0;
    if (status == 404 || status == 405 || status == 501 || (status == 200 && !is_stream)) {
      setState(State::kUnavailable);
    } else if (status != 200) {
      // The caller falls back to polling, which reports the server's message if it refuses too.
      setState(State::kFailed, "the event stream was refused: HTTP " + std::to_string(status));
    } else {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) {
          session_ = nullptr;
          return;
        }
        state_ = State::kOpen;
      }
      changed_.notify_all();
      EventStreamParser parser;
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (auto event = parser.feed(line)) {
          {
            std::lock_guard lock(mutex_);
            last_event_id_ = event->id;
            events_.push_back(std::move(*event));
          }
          changed_.notify_all();
        }
      }
      setState(State::kEnded);
    }
  } catch (const Poco::Exception& e) {
    bool stopping = false;
    {
      std::lock_guard lock(mutex_);
      stopping = stopping_;
    }
    setState(stopping ? State::kEnded : State::kFailed, client_.describeFailure(e));
  } catch (const std::exception& e) {
    setState(State::kFailed, client_.describeFailure(e));
  }
  std::lock_guard lock(mutex_);
  session_ = nullptr;
}

std::vector<ServerEvent> EventStream::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [this] {
    return !events_.empty() || (state_ != State::kConnecting && state_ != State::kOpen);
  });
  std::vector<ServerEvent> taken(std::make_move_iterator(events_.begin()),
                                 std::make_move_iterator(events_.end()));
  events_.clear();
  return taken;
}

EventStream::State EventStream::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::string EventStream::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

std::string EventStream::lastEventId() const {
  std::lock_guard lock(mutex_);
  return last_event_id_;
}

void EventStream::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  // shutdown(2) on the descriptor, not Poco's (TLS) shutdown: the reader may be inside a read
  // on the same connection, and only the kernel call is safe to make from another thread. The
  // read then returns end-of-stream and the reader finishes.
  // Only once open: before that the reader may still be setting the connection up, and it
  // checks stopping_ itself as soon as the response has come.
  if (session_ && state_ == State::kOpen) {
    ::shutdown(session_->socket().impl()->sockfd(), SHUT_RDWR);
  }
}

}  // namespace collectorctl
