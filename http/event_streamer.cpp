#include "event_streamer.h"

#include <Poco/Logger.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>

namespace collectord::http {
namespace {

using Clock = std::chrono::steady_clock;

// The kernel's send buffer of a stream socket. Left to autotuning it grows to megabytes (4 MiB on
// Linux by default) for a reader that stops, all of it held on top of the client buffer; events
// are small and few, so this much keeps a reading client's stream flowing.
constexpr int kSocketSendBuffer = 256 * 1024;

EventPtr notice(std::string text) {
  auto event = std::make_shared<StreamEvent>();
  event->text = std::move(text);
  return event;
}

const EventPtr& heartbeat() {
  static const EventPtr event = notice(": keep-alive\n\n");
  return event;
}

}  // namespace

bool Topic::covers(const StreamEvent& event) const {
  switch (kind) {
    case Kind::kAll:
      return event.kind != StreamEvent::Kind::kOther;
    case Kind::kBatch:
      return event.kind != StreamEvent::Kind::kOther && event.batch_id == id;
    case Kind::kJob:
      return event.kind == StreamEvent::Kind::kJob && event.job_id == id;
  }
  return false;
}

bool Topic::endsWith(const StreamEvent& event) const {
  if (!event.terminal || !covers(event)) return false;
  return (kind == Kind::kBatch && event.kind == StreamEvent::Kind::kBatch) || kind == Kind::kJob;
}

struct EventStreamer::Client {
  std::unique_ptr<StreamConnection> connection;
  Topic topic;
  std::deque<EventPtr> queue;  // what is still to be written, oldest first
  std::size_t offset = 0;      // bytes of queue.front() already written
  std::size_t queued = 0;      // bytes in `queue` not yet written
  bool ending = false;         // the topic has ended: close once `queue` is written
  bool done = false;           // close now
  bool writable = true;        // the socket took everything last time, or polled POLLOUT since
  // Since when the socket has taken nothing while bytes wait: a client that reads nothing for
  // long is dropped even when little is waiting (it holds a place of max_streams).
  std::optional<Clock::time_point> stalled_since;
  Clock::time_point last_queued = Clock::now();
  std::shared_ptr<void> slot;

  void push(const EventPtr& event) {
    queue.push_back(event);
    queued += event->text.size();
    last_queued = Clock::now();
  }
};

EventStreamer::EventStreamer(StreamerOptions options, Metrics& metrics)
    : options_(options), metrics_(metrics), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!wake_fd_) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

EventStreamer::~EventStreamer() { stop(std::chrono::milliseconds(0)); }

void EventStreamer::start() {
  thread_ = std::thread([this] { run(); });
}

void EventStreamer::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    grace_ = grace;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  clients_.clear();
  metrics_.event_streams = 0;
}

void EventStreamer::add(std::unique_ptr<StreamConnection> connection, std::string head, Topic topic,
                        std::vector<EventPtr> first, bool ends, std::shared_ptr<void> slot) {
  auto client = std::make_unique<Client>();
  client->connection = std::move(connection);
  // Best effort: the default merely lets a stalled reader hold more before it is dropped.
  [[maybe_unused]] const int ignored = ::setsockopt(client->connection->fd(), SOL_SOCKET, SO_SNDBUF,
                                                    &kSocketSendBuffer, sizeof kSocketSendBuffer);
  client->topic = std::move(topic);
  client->slot = std::move(slot);
  client->ending = ends;
  client->push(notice(std::move(head)));
  for (const EventPtr& event : first) client->push(event);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // the daemon is stopping: the stream closes unanswered
    inbox_.push_back(Arrival{std::move(client), {}});
  }
  wake();
}

void EventStreamer::publish(std::vector<EventPtr> events) {
  if (events.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (!inbox_.empty() && !inbox_.back().client) {
      auto& tail = inbox_.back().events;
      tail.insert(tail.end(), events.begin(), events.end());
    } else {
      inbox_.push_back(Arrival{nullptr, std::move(events)});
    }
  }
  wake();
}

void EventStreamer::wake() {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the thread wakes anyway.
  [[maybe_unused]] const auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void EventStreamer::accept(Arrival& arrival) {
  if (arrival.client) {
    clients_.push_back(std::move(arrival.client));
    return;
  }
  for (const EventPtr& event : arrival.events) {
    for (const auto& client : clients_) deliver(*client, event);
  }
}

void EventStreamer::deliver(Client& client, const EventPtr& event) {
  if (client.ending || client.done || !client.topic.covers(*event)) return;
  // An event larger than the whole buffer still goes to a client that has caught up.
  if (client.queued > 0 && client.queued + event->text.size() > options_.client_buffer_bytes) {
    drop(client, "more than " + std::to_string(options_.client_buffer_bytes) +
                     " bytes were waiting for it");
    return;
  }
  client.push(event);
  if (client.topic.endsWith(*event)) client.ending = true;
}

void EventStreamer::flush(Client& client) {
  while (!client.queue.empty() && !client.done) {
    const std::string& text = client.queue.front()->text;
    const long n =
        client.connection->send(text.data() + client.offset, text.size() - client.offset);
    if (n < 0) {
      client.done = true;
      return;
    }
    if (n == 0) {
      client.writable = false;  // the socket is full: POLLOUT says when to go on
      if (!client.stalled_since) client.stalled_since = Clock::now();
      return;
    }
    client.stalled_since.reset();
    client.offset += static_cast<std::size_t>(n);
    client.queued -= static_cast<std::size_t>(n);
    if (client.offset == text.size()) {
      client.queue.pop_front();
      client.offset = 0;
    }
  }
}

void EventStreamer::drop(Client& client, const std::string& why) {
  // The event being written stays (a stream must not end in the middle of one); the rest goes.
  const EventPtr current = client.offset > 0 ? client.queue.front() : nullptr;
  client.queue.clear();
  client.queued = 0;
  if (current) {
    client.push(current);
    client.queued -= client.offset;
  }
  client.push(notice("event: dropped\ndata: {\"error\":\"This client read events too slowly: " +
                     why + ". Reconnect with Last-Event-ID to resume.\"}\n\n"));
  flush(client);  // the notice goes out only if the socket takes it now
  ++metrics_.event_streams_dropped;
  Poco::Logger::get("collectord.http")
      .warning("event stream to %s dropped: %s", client.connection->peer(), why);
  client.done = true;
}

void EventStreamer::close(Client& client) {
  // What the client sent and we did not read would turn our FIN into a reset, which can lose
  // the last events still in flight.
  client.connection->drain();
  client.connection.reset();
}

void EventStreamer::run() {
  std::vector<pollfd> fds;
  std::vector<Arrival> arrivals;
  std::optional<Clock::time_point> stop_by;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      arrivals.swap(inbox_);
      if (stopping_ && !stop_by) stop_by = Clock::now() + grace_;
    }
    for (Arrival& arrival : arrivals) accept(arrival);
    arrivals.clear();

    const auto now = Clock::now();
    for (const auto& client : clients_) {
      if (!stop_by && !client->ending && !client->done &&
          now - client->last_queued >= options_.heartbeat) {
        client->push(heartbeat());
      }
      if (client->writable) flush(*client);
      if (!client->done && client->stalled_since && now - *client->stalled_since >= stallLimit()) {
        drop(*client,
             "it read nothing for " +
                 std::to_string(
                     std::chrono::duration_cast<std::chrono::seconds>(stallLimit()).count()) +
                 " s");
      }
      if (client->done || (client->ending && client->queue.empty())) close(*client);
    }
    std::erase_if(clients_, [](const auto& client) { return !client->connection; });
    metrics_.event_streams = static_cast<std::int64_t>(clients_.size());

    if (stop_by) {
      const bool waiting = std::any_of(clients_.begin(), clients_.end(),
                                       [](const auto& client) { return !client->queue.empty(); });
      if (!waiting || Clock::now() >= *stop_by) break;
    }

    // Sleep until a socket is ready, the inbox fills, or a client's next heartbeat or stall
    // check is due (never: nothing is due for any client).
    std::optional<std::chrono::milliseconds> timeout;
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    for (const auto& client : clients_) {
      const short events = POLLIN | POLLRDHUP | (client->queue.empty() ? 0 : POLLOUT);
      fds.push_back({client->connection->fd(), events, 0});
      std::optional<Clock::time_point> next;
      if (!client->ending) next = client->last_queued + options_.heartbeat;
      if (client->stalled_since) {
        next = std::min(next.value_or(Clock::time_point::max()),
                        *client->stalled_since + stallLimit());
      }
      if (!next) continue;
      const auto due = std::max(std::chrono::milliseconds(0),
                                std::chrono::ceil<std::chrono::milliseconds>(*next - now));
      timeout = timeout ? std::min(*timeout, due) : due;
    }
    if (stop_by) timeout = std::chrono::milliseconds(20);
    const int ready =
        ::poll(fds.data(), fds.size(), timeout ? static_cast<int>(timeout->count()) : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      Poco::Logger::get("collectord.http")
          .error("event streams: poll failed: %s", std::string(std::strerror(errno)));
      break;
    }
    if (fds[0].revents) {
      std::uint64_t count;
      [[maybe_unused]] const auto n = ::read(wake_fd_.get(), &count, sizeof count);
    }
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      const short revents = fds[i + 1].revents;
      Client& client = *clients_[i];
      if (revents & (POLLERR | POLLNVAL)) {
        client.done = true;
      } else if (revents & (POLLIN | POLLHUP | POLLRDHUP)) {
        if (!client.connection->drain()) client.done = true;
      }
      // Written at the top of the loop, with everything that arrived meanwhile.
      if (revents & POLLOUT) client.writable = true;
    }
  }
  for (const auto& client : clients_) close(*client);
  clients_.clear();
}

}  // namespace collectord::http
