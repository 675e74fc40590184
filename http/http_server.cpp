#include "http_server.h"

#include <Poco/Logger.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <chrono>

#include "job_store.h"
#include "supervisor.h"

namespace collectord::http {
namespace {

// Reads at most `limit` bytes of body; false when there is more.
bool readBody(std::istream& in, std::size_t limit, std::string& body) {
  char chunk[8192];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto n = static_cast<std::size_t>(in.gcount());
    if (body.size() + n > limit) return false;
    body.append(chunk, n);
  }
  return true;
}

class ApiRequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  ApiRequestHandler(const ApiService& service, const ServerOptions& options, Poco::Logger& log)
      : service_(service), options_(options), log_(log) {}

  void handleRequest(Poco::Net::HTTPServerRequest& raw,
                     Poco::Net::HTTPServerResponse& out) override {
    const auto started = std::chrono::steady_clock::now();
    Request request;
    request.method = raw.getMethod();
    request.client = raw.clientAddress().host().toString();
    Response response;
    try {
      response = handle(raw, request);
    } catch (...) {
      response = faultResponse(request);
    }
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
    out.setContentType(response.content_type);
    for (const auto& [name, value] : response.headers) out.set(name, value);
    out.setContentLength(static_cast<std::streamsize>(response.body.size()));
    out.send().write(response.body.data(), static_cast<std::streamsize>(response.body.size()));
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    log_.information("%s %s %d %.3fms client=%s identity=%s", request.method,
                     request.path.empty() ? std::string("-") : request.path, response.status,
                     static_cast<double>(micros) / 1000.0, request.client,
                     request.identity.empty() ? std::string("-") : request.identity);
  }

 private:
  Response handle(Poco::Net::HTTPServerRequest& raw, Request& request) {
    Poco::URI uri;
    try {
      uri = Poco::URI(raw.getURI());
      request.path = uri.getPath();
      request.query = uri.getQueryParameters();
    } catch (const Poco::SyntaxException& e) {
      return errorResponse(400, "Malformed request URI: " + e.message());
    }
    if (request.path.empty() || request.path.front() != '/') {
      return errorResponse(400, "Malformed request URI");
    }
    for (const auto& [name, value] : raw) request.headers.emplace_back(name, value);
    if (raw.hasContentLength() &&
        raw.getContentLength64() > static_cast<Poco::Int64>(options_.max_body_bytes)) {
      return errorResponse(413, "Request body is larger than " +
                                    std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (!readBody(raw.stream(), options_.max_body_bytes, request.body)) {
      return errorResponse(413, "Request body is larger than " +
                                    std::to_string(options_.max_body_bytes) + " bytes");
    }
    return service_.handle(request);
  }

  const ApiService& service_;
  const ServerOptions& options_;
  Poco::Logger& log_;
};

class ApiHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  ApiHandlerFactory(const ApiService& service, const ServerOptions& options)
      : service_(service), options_(options), log_(Poco::Logger::get("collectord.http")) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ApiRequestHandler(service_, options_, log_);
  }

 private:
  const ApiService& service_;
  const ServerOptions& options_;
  Poco::Logger& log_;
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

struct HttpServer::Impl {
  ServerOptions options;
  Poco::ThreadPool pool;
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  bool running = false;

  Impl(const ServerOptions& opts)
      : options(opts), pool("http", 2, std::max(2, opts.threads)), socket(listen(opts)) {}
};

HttpServer::HttpServer(const ServerOptions& options, const ApiService& service)
    : impl_(std::make_unique<Impl>(options)) {
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(std::max(1, options.threads));
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setTimeout(Poco::Timespan(options.timeout_seconds, 0));
  params->setKeepAliveTimeout(Poco::Timespan(options.timeout_seconds, 0));
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(
      new ApiHandlerFactory(service, impl_->options), impl_->pool, impl_->socket, params);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  impl_->server->start();
  impl_->running = true;
}

void HttpServer::stop() {
  if (!impl_->running) return;
  impl_->running = false;
  impl_->server->stopAll(true);
  impl_->pool.joinAll();
}

int HttpServer::port() const { return impl_->socket.address().port(); }

}  // namespace collectord::http
