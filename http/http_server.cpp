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
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

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

void send(Poco::Net::HTTPServerResponse& out, const Response& response) {
  out.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
  if (!response.content_type.empty()) out.setContentType(response.content_type);
  for (const auto& [name, value] : response.headers) out.add(name, value);
  out.setContentLength(static_cast<std::streamsize>(response.body.size()));
  out.send().write(response.body.data(), static_cast<std::streamsize>(response.body.size()));
}

}  // namespace

// What every connection of one server shares.
struct HttpServer::Impl {
  ServerOptions options;
  const ApiService& service;
  Poco::Logger& log = Poco::Logger::get("collectord.http");
  Poco::Net::HTTPServerParams::Ptr params;
  Poco::ThreadPool pool;
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::Net::TCPServer> server;
  std::atomic<bool> stopped{false};
  bool running = false;
  std::mutex connections_mutex;
  std::set<Poco::Net::StreamSocket*> connections;  // guarded by connections_mutex

  Impl(const ServerOptions& opts, const ApiService& api);
  // Turns one parsed request into its response and writes the access-log line.
  void serve(Poco::Net::HTTPServerRequest& raw, Poco::Net::HTTPServerResponse& out);
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
    HTTPServerSession session(socket(), server_.params);
    while (!server_.stopped && session.hasMoreRequests()) {
      try {
        HTTPServerResponseImpl response(session);
        HTTPServerRequestImpl request(response, session, server_.params);
        response.setDate(Poco::Timestamp());
        response.setVersion(request.getVersion());
        response.setKeepAlive(server_.params->getKeepAlive() && request.getKeepAlive() &&
                              session.canKeepAlive());
        if (request.getExpectContinue()) response.sendContinue();
        server_.serve(request, response);
        session.setKeepAlive(server_.params->getKeepAlive() && response.getKeepAlive() &&
                             session.canKeepAlive());
      } catch (const Poco::Net::NoMessageException&) {
        break;  // the client closed the connection between requests
      } catch (const Poco::Net::MessageException& e) {
        refuse(session, framingError(e.message()));
        break;
      } catch (const Poco::TimeoutException&) {
        refuse(session, errorResponse(408, "Request timed out: the client sent nothing for " +
                                               std::to_string(server_.options.timeout_seconds) + " s"));
        break;
      } catch (const Poco::Exception& e) {
        server_.log.debug("connection from %s ended: %s", socket().peerAddress().toString(),
                          e.displayText());
        break;
      }
    }
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

// Binds the listening socket: plain TCP, or TLS 1.2+ when a certificate is configured.
Poco::Net::ServerSocket listen(const ServerOptions& options) {
  const Poco::Net::SocketAddress address(options.address, static_cast<Poco::UInt16>(options.port));
  if (options.tls_cert_file.empty()) return Poco::Net::ServerSocket(address);
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_SERVER_USE, options.tls_key_file, options.tls_cert_file, "",
      Poco::Net::Context::VERIFY_NONE);
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
  return Poco::Net::SecureServerSocket(address, 64, context);
}

}  // namespace

HttpServer::Impl::Impl(const ServerOptions& opts, const ApiService& api)
    : options(opts),
      service(api),
      params(new Poco::Net::HTTPServerParams),
      pool("http", 2, std::max(2, opts.threads)),
      socket(listen(opts)) {
  params->setMaxThreads(std::max(1, opts.threads));
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setTimeout(Poco::Timespan(opts.timeout_seconds, 0));
  // An idle keep-alive connection holds a pool thread; dashboards that poll every few seconds
  // would otherwise keep every thread. Short idle time, bounded reuse.
  params->setKeepAliveTimeout(Poco::Timespan(std::min(opts.timeout_seconds, 3), 0));
  params->setMaxKeepAliveRequests(1000);
}

void HttpServer::Impl::serve(Poco::Net::HTTPServerRequest& raw, Poco::Net::HTTPServerResponse& out) {
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
  send(out, response);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
  log.information("%s %s %d %.3fms client=%s identity=%s", request.method,
                  request.path.empty() ? std::string("-") : request.path, response.status,
                  static_cast<double>(micros) / 1000.0, request.client,
                  request.identity.empty() ? std::string("-") : request.identity);
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
  impl_->server = std::make_unique<Poco::Net::TCPServer>(
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
