#include "http_server.h"

#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/SecureStreamSocketImpl.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerDispatcher.h>
#include <Poco/String.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

namespace collectord::http {
namespace {

using Poco::Net::HTTPServerRequestImpl;
using Poco::Net::HTTPServerResponseImpl;
using Poco::Net::HTTPServerSession;

enum class BodyRead { kWhole, kTooLarge, kCutShort };

// Reads at most `limit` bytes of body. A declared length that never arrives (the client
// stalled past the timeout, or closed) is kCutShort.
BodyRead readBody(Poco::Net::HTTPServerRequest& raw, std::size_t limit, std::string& body) {
  std::istream& in = raw.stream();
  char chunk[8192];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto n = static_cast<std::size_t>(in.gcount());
    if (body.size() + n > limit) return BodyRead::kTooLarge;
    body.append(chunk, n);
  }
  if (raw.hasContentLength() && static_cast<Poco::Int64>(body.size()) < raw.getContentLength64()) {
    return BodyRead::kCutShort;
  }
  return BodyRead::kWhole;
}

// RFC 9110 5.6.2: the characters a header name may hold.
bool isTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isDigits(const std::string& text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

const char* const kInvalidLength = "Malformed HTTP request: invalid Content-Length";

// What is wrong with the version, the header section or the framing of a request Poco has
// read, as the answer to give before any of its body is read; nullopt when nothing is. Poco
// takes these in its stride (the first of two lengths, chunked over a length, an unknown coding
// as no body at all), which lets a client and a proxy in front of us disagree on where a request
// ends and smuggle a second one inside the first (RFC 9112 6.1, 6.3, 11.2).
std::optional<Response> framingProblem(const Poco::Net::HTTPServerRequest& raw) {
  const std::string& version = raw.getVersion();
  const auto digit = [&](std::size_t i) { return version[i] >= '0' && version[i] <= '9'; };
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || !digit(5) ||
      version[6] != '.' || !digit(7)) {
    return errorResponse(400, "Malformed HTTP request: invalid HTTP version '" + version + "'");
  }
  if (version[5] != '1') {
    return errorResponse(505, "HTTP version " + version + " is not supported: use HTTP/1.1");
  }
  std::vector<std::string> lengths;
  std::string codings;
  for (const auto& [name, value] : raw) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), isTokenChar)) {
      return errorResponse(400, "Malformed HTTP request: invalid header name '" + name + "'");
    }
    // RFC 9110 5.5: NUL, CR and LF inside a value must not reach anything that reads it.
    if (std::any_of(value.begin(), value.end(), [](char c) {
          return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7F;
        })) {
      return errorResponse(400,
                           "Malformed HTTP request: control character in header '" + name + "'");
    }
    if (Poco::icompare(name, "Content-Length") == 0) lengths.push_back(value);
    if (Poco::icompare(name, "Transfer-Encoding") == 0) {
      codings += (codings.empty() ? "" : ", ") + value;
    }
  }
  for (const std::string& length : lengths) {
    if (!isDigits(length)) return errorResponse(400, kInvalidLength);
    if (length != lengths.front()) {
      return errorResponse(400, "Malformed HTTP request: conflicting Content-Length headers");
    }
  }
  if (!codings.empty()) {
    if (!lengths.empty()) {
      return errorResponse(400,
                           "Malformed HTTP request: Content-Length and Transfer-Encoding together");
    }
    if (Poco::icompare(Poco::trim(codings), "chunked") != 0) {
      return errorResponse(501, "Transfer-Encoding '" + codings +
                                    "' is not supported: send the body with Content-Length or "
                                    "Transfer-Encoding: chunked");
    }
  }
  return std::nullopt;
}

void send(Poco::Net::HTTPServerResponse& out, const Response& response) {
  out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
  if (!response.content_type.empty()) out.setContentType(response.content_type);
  for (const auto& [name, value] : response.headers) out.add(name, value);
  out.setContentLength(static_cast<std::streamsize>(response.body.size()));
  out.send().write(response.body.data(), static_cast<std::streamsize>(response.body.size()));
}

// The status line and headers of a streamed response, to be written by whoever takes the
// connection over. No length: the body ends when the connection does (RFC 9112 6.3).
std::string streamHead(Poco::Net::HTTPServerResponse& out, const Response& response) {
  out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
  if (!response.content_type.empty()) out.setContentType(response.content_type);
  for (const auto& [name, value] : response.headers) out.add(name, value);
  out.setKeepAlive(false);
  std::ostringstream head;
  out.write(head);
  return head.str();
}

// A connection handed over to a streaming handler. It owns the HTTP session, whose destruction
// closes the socket (with TLS's close_notify when it is one), and uses the socket without
// blocking from then on: plain TCP with the system calls themselves (Poco 1.11 throws on a full
// non-blocking socket), TLS through Poco.
//
// Poco 1.11's TLS socket does not pass setBlocking on to the socket under it, so when OpenSSL
// wants to read or write more it still waits for the socket, up to the socket's timeout, before
// it throws TimeoutException. The descriptor itself is non-blocking; a timeout of a millisecond
// bounds those waits, and TimeoutException reads as "not now".
class SessionStream final : public StreamConnection {
 public:
  explicit SessionStream(std::unique_ptr<HTTPServerSession> session)
      : session_(std::move(session)),
        socket_(session_->socket()),
        tls_(dynamic_cast<Poco::Net::SecureStreamSocketImpl*>(socket_.impl()) != nullptr) {
    try {
      peer_ = socket_.peerAddress().toString();
    } catch (const Poco::Exception& e) {
      peer_ = "-";  // already gone: the first write will tell
    }
    socket_.setBlocking(false);
    if (tls_) {
      const timeval brief{0, 1000};
      for (int option : {SO_RCVTIMEO, SO_SNDTIMEO}) {
        if (::setsockopt(fd(), SOL_SOCKET, option, &brief, sizeof brief) != 0) {
          log().warning("stream to %s: cannot bound TLS waits: %s", peer_,
                        std::string(std::strerror(errno)));
        }
      }
    }
  }

  int fd() const override { return socket_.impl()->sockfd(); }

  long send(const char* data, std::size_t size) override {
    size = std::min<std::size_t>(size, 1 << 20);
    if (!tls_) {
      // MSG_NOSIGNAL: a client gone away is an error to handle, not a SIGPIPE.
      const ssize_t n = ::send(fd(), data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
      log().debug("stream to %s failed: %s", peer_, std::string(std::strerror(errno)));
      return -1;
    }
    try {
      const int n = socket_.sendBytes(data, static_cast<int>(size));
      return n < 0 ? 0 : n;
    } catch (const Poco::TimeoutException&) {
      return 0;  // the socket takes nothing now (see the class comment)
    } catch (const Poco::Exception& e) {
      log().debug("stream to %s failed: %s", peer_, e.displayText());
      return -1;
    }
  }

  bool drain() override {
    char buffer[4096];
    // Bounded: a client that sends without end must not hold the streaming thread.
    for (int i = 0; i < 16; ++i) {
      long n = 0;
      if (!tls_) {
        n = ::recv(fd(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
        if (n < 0) log().debug("stream to %s ended: %s", peer_, std::string(std::strerror(errno)));
      } else {
        try {
          n = socket_.receiveBytes(buffer, sizeof buffer);
          if (n < 0) return true;
        } catch (const Poco::TimeoutException&) {
          return true;  // nothing to read now (see the class comment)
        } catch (const Poco::Exception& e) {
          log().debug("stream to %s ended: %s", peer_, e.displayText());
          return false;
        }
      }
      if (n <= 0) return false;
    }
    return true;
  }

  std::string peer() const override { return peer_; }

 private:
  static Poco::Logger& log() { return Poco::Logger::get("collectord.http"); }

  std::unique_ptr<HTTPServerSession> session_;
  Poco::Net::StreamSocket& socket_;
  bool tls_;
  std::string peer_;
};

}  // namespace

namespace {

// Accepts connections on a thread of its own, blocked in accept(2), and hands each to Poco's
// dispatcher, which queues it for the pool's threads. Poco's TCPServer does the same but polls
// the socket every 250 ms to notice a stop: four wake-ups a second on an idle daemon. Here
// stop() shuts the listening socket down, which ends the accept(2) under way (Linux).
class Acceptor {
 public:
  Acceptor(Poco::Net::TCPServerConnectionFactory::Ptr factory, Poco::ThreadPool& pool,
           Poco::Net::ServerSocket& socket, Poco::Net::TCPServerParams::Ptr params)
      : socket_(socket), dispatcher_(new Poco::Net::TCPServerDispatcher(factory, pool, params)) {}
  ~Acceptor() {
    stop();
    dispatcher_->release();
  }
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  void start() { thread_ = std::thread([this] { run(); }); }
  void stop() {
    if (stopped_.exchange(true)) return;
    ::shutdown(socket_.impl()->sockfd(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    dispatcher_->stop();
  }
  int queuedConnections() const { return dispatcher_->queuedConnections(); }

 private:
  void run() {
    Poco::Logger& log = Poco::Logger::get("collectord.http");
    int failures = 0;  // accept(2) failures in a row
    while (!stopped_) {
      std::optional<Poco::Net::StreamSocket> connection;
      std::string error;
      try {
        connection = socket_.acceptConnection();
      } catch (const std::exception& e) {
        error = describe(e);
      } catch (...) {
        error = "unknown error";
      }
      if (stopped_) break;
      if (!connection) {
        // Out of descriptors or memory: the next accept would fail at once too. Back off (20 ms,
        // doubling up to 640 ms), and say so once per run of failures rather than at each.
        if (failures++ == 0) log.warning("cannot accept connections: %s", error);
        std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(failures, 6)));
        continue;
      }
      failures = 0;
      try {
        connection->setNoDelay(true);
        dispatcher_->enqueue(*connection);
      } catch (const std::exception& e) {
        log.warning("cannot take a connection: %s", describe(e));  // that one client's
      } catch (...) {
        log.warning("cannot take a connection: unknown error");
      }
    }
  }

  static std::string describe(const std::exception& e) {
    const auto* poco = dynamic_cast<const Poco::Exception*>(&e);
    return poco ? poco->displayText() : std::string(e.what());
  }

  Poco::Net::ServerSocket& socket_;
  Poco::Net::TCPServerDispatcher* dispatcher_;  // reference-counted by Poco
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace

// What every connection of one server shares.
struct HttpServer::Impl {
  ServerOptions options;
  const ApiService& service;
  Poco::Logger& log = Poco::Logger::get("collectord.http");
  Poco::Net::HTTPServerParams::Ptr params;
  Poco::ThreadPool pool;
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Acceptor> server;
  std::atomic<bool> stopped{false};
  bool running = false;
  std::mutex connections_mutex;
  std::set<Poco::Net::StreamSocket*> connections;  // guarded by connections_mutex

  Impl(const ServerOptions& opts, const ApiService& api);
  // Turns one parsed request into its response and writes the access-log line. A streaming
  // response is not written: its take-over is returned, with its status line and headers in
  // `head`, for the caller to call once it is done with the connection.
  StreamTakeOver serve(Poco::Net::HTTPServerRequest& raw, Poco::Net::HTTPServerResponse& out,
                       std::string& head);
  Response respond(Poco::Net::HTTPServerRequest& raw, Request& request, bool& drop_connection);
};

namespace {

// One client connection: requests in a loop while keep-alive lasts. Unlike Poco's own
// connection class it answers malformed requests, over-long URIs and headers, and clients
// that stall, with the API's JSON errors instead of an empty status line.
class ApiConnection final : public Poco::Net::TCPServerConnection {
 public:
  ApiConnection(const Poco::Net::StreamSocket& socket, HttpServer::Impl& server)
      : TCPServerConnection(socket), server_(server) {
    std::lock_guard lock(server_.connections_mutex);
    server_.connections.insert(&this->socket());
  }
  ~ApiConnection() override {
    std::lock_guard lock(server_.connections_mutex);
    server_.connections.erase(&socket());
  }

  void run() override {
    // On the heap: a streaming response takes the session, and with it the socket, along.
    auto session = std::make_unique<HTTPServerSession>(socket(), server_.params);
    StreamTakeOver take_over;
    std::string head;
    while (!server_.stopped && session->hasMoreRequests()) {
      try {
        HTTPServerResponseImpl response(*session);
        HTTPServerRequestImpl request(response, *session, server_.params);
        if (const std::optional<Response> problem = framingProblem(request)) {
          refuse(*session, *problem);
          break;
        }
        response.setDate(Poco::Timestamp());
        // HTTP/1.1 answers any later 1.x (RFC 9112 2.3); only 1.0 gets 1.0 back.
        response.setVersion(request.getVersion() == Poco::Net::HTTPMessage::HTTP_1_0
                                ? Poco::Net::HTTPMessage::HTTP_1_0
                                : Poco::Net::HTTPMessage::HTTP_1_1);
        response.setKeepAlive(server_.params->getKeepAlive() && request.getKeepAlive() &&
                              session->canKeepAlive());
        // No "100 Continue" for a body that will be refused for its size: the client would
        // start sending it only to have the connection closed under it.
        const bool too_large =
            request.hasContentLength() &&
            request.getContentLength64() > static_cast<Poco::Int64>(server_.options.max_body_bytes);
        if (request.getExpectContinue() && !too_large) response.sendContinue();
        take_over = server_.serve(request, response, head);
        if (take_over) break;
        session->setKeepAlive(server_.params->getKeepAlive() && response.getKeepAlive() &&
                              session->canKeepAlive());
      } catch (const Poco::Net::NoMessageException&) {
        break;  // the client closed the connection between requests
      } catch (const Poco::Net::MessageException& e) {
        refuse(*session, framingError(e.message()));
        break;
      } catch (const Poco::SyntaxException&) {
        // Only the request's constructor parses a number: the Content-Length it streams by.
        refuse(*session, errorResponse(400, kInvalidLength));
        break;
      } catch (const Poco::TimeoutException&) {
        refuse(*session,
               errorResponse(408, "Request timed out: the client sent nothing for " +
                                      std::to_string(server_.options.timeout_seconds) + " s"));
        break;
      } catch (const Poco::Exception& e) {
        server_.log.debug("connection from %s ended: %s", socket().peerAddress().toString(),
                          e.displayText());
        break;
      }
    }
    // After the request and response objects are gone: nothing of this thread uses the
    // session any more.
    if (take_over) take_over(std::make_unique<SessionStream>(std::move(session)), std::move(head));
  }

 private:
  // Poco's reader says what was wrong only in words; map them to the precise status.
  static Response framingError(const std::string& what) {
    if (what.find("URI") != std::string::npos) {
      return errorResponse(414, "Request URI is too long");
    }
    if (what.find("ield") != std::string::npos || what.find("eader") != std::string::npos) {
      return errorResponse(431, "Request header fields are too large or too many");
    }
    return errorResponse(400, "Malformed HTTP request: " + what);
  }

  void refuse(HTTPServerSession& session, const Response& error) {
    try {
      HTTPServerResponseImpl response(session);
      response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
      response.setDate(Poco::Timestamp());
      response.setKeepAlive(false);
      send(response, error);
      session.setKeepAlive(false);
      server_.service.countUnparsed(error.status);
      server_.log.information("- - %d client=%s", error.status,
                              socket().peerAddress().host().toString());
    } catch (const Poco::Exception& e) {
      server_.log.debug("cannot answer a refused request: %s", e.displayText());
    }
  }

  HttpServer::Impl& server_;
};

class ApiConnectionFactory final : public Poco::Net::TCPServerConnectionFactory {
 public:
  explicit ApiConnectionFactory(HttpServer::Impl& server) : server_(server) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new ApiConnection(socket, server_);
  }

 private:
  HttpServer::Impl& server_;
};

// Connections waiting for a worker thread: first in the kernel until accepted, then in Poco's
// queue. Poco's defaults (64 and 256) overflow when many clients connect at once, e.g. every
// dashboard reopening its event stream after a restart: past the kernel's queue a client waits a
// second for its SYN to be sent again, past Poco's its connection is closed under it (a reset,
// as its request is unread). Each waits only as long as the threads take to answer those ahead.
constexpr int kListenBacklog = 1024;

// Binds the listening socket: plain TCP, or TLS 1.2+ when a certificate is configured.
Poco::Net::ServerSocket listen(const ServerOptions& options) {
  const Poco::Net::SocketAddress address(options.address, static_cast<Poco::UInt16>(options.port));
  if (options.tls_cert_file.empty()) return Poco::Net::ServerSocket(address, kListenBacklog);
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_SERVER_USE, options.tls_key_file, options.tls_cert_file, "",
      Poco::Net::Context::VERIFY_NONE);
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  return Poco::Net::SecureServerSocket(address, kListenBacklog, context);
}

}  // namespace

HttpServer::Impl::Impl(const ServerOptions& opts, const ApiService& api)
    : options(opts),
      service(api),
      params(new Poco::Net::HTTPServerParams),
      pool("http", 2, std::max(2, opts.threads)),
      socket(listen(opts)) {
  params->setMaxThreads(std::max(1, opts.threads));
  params->setMaxQueued(kListenBacklog);
  // After a burst of connections, stop() waits for worker threads that are left idle until this
  // passes (Poco's default is 10 s); a thread is started again at once when needed.
  params->setThreadIdleTime(Poco::Timespan(1, 0));
  params->setKeepAlive(true);
  params->setTimeout(Poco::Timespan(opts.timeout_seconds, 0));
  // An idle keep-alive connection holds a pool thread; dashboards that poll every few seconds
  // would otherwise keep every thread. Short idle time, bounded reuse.
  params->setKeepAliveTimeout(Poco::Timespan(std::min(opts.timeout_seconds, 3), 0));
  params->setMaxKeepAliveRequests(1000);
}

StreamTakeOver HttpServer::Impl::serve(Poco::Net::HTTPServerRequest& raw,
                                       Poco::Net::HTTPServerResponse& out, std::string& head) {
  const auto started = std::chrono::steady_clock::now();
  Request request;
  request.method = raw.getMethod();
  request.client = raw.clientAddress().host().toString();
  bool drop_connection = false;
  Response response;
  try {
    response = respond(raw, request, drop_connection);
  } catch (...) {
    response = faultResponse(request);
  }
  if (drop_connection) out.setKeepAlive(false);  // an unread body is still on the wire
  // Connections wait for a thread: hand this one back rather than keep it for this client.
  if (server && server->queuedConnections() > 0) out.setKeepAlive(false);
  if (response.take_over) {
    head = streamHead(out, response);
  } else {
    send(out, response);
  }
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
  log.information("%s %s %d %.3fms client=%s identity=%s", request.method,
                  request.path.empty() ? std::string("-") : request.path, response.status,
                  static_cast<double>(micros) / 1000.0, request.client,
                  request.identity.empty() ? std::string("-") : request.identity);
  return std::move(response.take_over);
}

Response HttpServer::Impl::respond(Poco::Net::HTTPServerRequest& raw, Request& request,
                                   bool& drop_connection) {
  for (const auto& [name, value] : raw) request.headers.emplace_back(name, value);
  try {
    Poco::URI uri(raw.getURI());
    request.path = uri.getPath();
    request.query = uri.getQueryParameters();
    if (request.path.empty() || request.path.front() != '/') {
      request.transport_error = errorResponse(400, "Malformed request URI");
    }
  } catch (const Poco::SyntaxException& e) {
    request.transport_error = errorResponse(400, "Malformed request URI: " + e.message());
  }
  const std::string too_large =
      "Request body is larger than " + std::to_string(options.max_body_bytes) + " bytes";
  // Without a length or chunking a request has no body (RFC 9112 6.3); Poco would read to EOF.
  const bool has_body = raw.hasContentLength() || raw.getChunkedTransferEncoding();
  // Poco ends a chunked body without a word at a malformed chunk-size line; whatever followed
  // must not be read as the next request.
  if (raw.getChunkedTransferEncoding()) drop_connection = true;
  if (request.transport_error) {
    drop_connection = has_body;
  } else if (raw.hasContentLength() &&
             raw.getContentLength64() > static_cast<Poco::Int64>(options.max_body_bytes)) {
    drop_connection = true;
    request.transport_error = errorResponse(413, too_large);
  } else if (has_body) {
    switch (readBody(raw, options.max_body_bytes, request.body)) {
      case BodyRead::kWhole: break;
      case BodyRead::kTooLarge:
        drop_connection = true;
        request.transport_error = errorResponse(413, too_large);
        break;
      case BodyRead::kCutShort:
        drop_connection = true;
        request.transport_error = errorResponse(
            408, "Request timed out: the client sent nothing for " +
                     std::to_string(options.timeout_seconds) + " s");
        break;
    }
  }
  return service.handle(request);
}

HttpServer::HttpServer(const ServerOptions& options, const ApiService& service)
    : impl_(std::make_unique<Impl>(options, service)) {
  impl_->server = std::make_unique<Acceptor>(
      new ApiConnectionFactory(*impl_), impl_->pool, impl_->socket, impl_->params);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  impl_->server->start();
  impl_->running = true;
}

void HttpServer::stop() {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->stopped = true;
  impl_->server->stop();  // no new connections
  {
    // Idle keep-alive connections would otherwise hold their threads until the timeout;
    // requests being answered still get their response.
    std::lock_guard lock(impl_->connections_mutex);
    for (Poco::Net::StreamSocket* socket : impl_->connections) {
      try {
        socket->shutdownReceive();
      } catch (const Poco::Exception& e) {
        impl_->log.debug("shutting down a connection: %s", e.displayText());
      }
    }
  }
  impl_->pool.joinAll();
}

int HttpServer::port() const { return impl_->socket.address().port(); }

}  // namespace collectord::http
