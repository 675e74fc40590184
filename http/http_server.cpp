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

// One function maps what went wrong inside a handler to what the client is told.
Response faultResponse(Poco::Logger& log, const Request& request) {
  try {
    throw;
  } catch (const ShuttingDownError& e) {
    return errorResponse(503, "collectord is shutting down; try again later");
  } catch (const StoreError& e) {
    log.error("%s %s: store unavailable: %s", request.method, request.path, std::string(e.what()));
    return errorResponse(503, "The job store is unavailable; try again shortly");
  } catch (const Poco::Exception& e) {
    log.error("%s %s: %s", request.method, request.path, e.displayText());
  } catch (const std::exception& e) {
    log.error("%s %s: %s", request.method, request.path, std::string(e.what()));
  }
  return errorResponse(500, "Internal server error");
}

class ApiRequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  ApiRequestHandler(const Router& router, const ServerOptions& options, Poco::Logger& log)
      : router_(router), options_(options), log_(log) {}

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
      response = faultResponse(log_, request);
    }
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
    out.setContentType(response.content_type);
    for (const auto& [name, value] : response.headers) out.set(name, value);
    out.setContentLength(static_cast<std::streamsize>(response.body.size()));
    out.send().write(response.body.data(), static_cast<std::streamsize>(response.body.size()));
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    log_.information("%s %s %d %.3fms client=%s", request.method,
                     request.path.empty() ? raw.getURI() : request.path, response.status,
                     static_cast<double>(micros) / 1000.0, request.client);
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
    if (raw.hasContentLength() &&
        raw.getContentLength64() > static_cast<Poco::Int64>(options_.max_body_bytes)) {
      return errorResponse(413, "Request body is larger than " +
                                    std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (!readBody(raw.stream(), options_.max_body_bytes, request.body)) {
      return errorResponse(413, "Request body is larger than " +
                                    std::to_string(options_.max_body_bytes) + " bytes");
    }
    return router_.dispatch(request);
  }

  const Router& router_;
  const ServerOptions& options_;
  Poco::Logger& log_;
};

class ApiHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  ApiHandlerFactory(const Router& router, const ServerOptions& options)
      : router_(router), options_(options), log_(Poco::Logger::get("collectord.http")) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ApiRequestHandler(router_, options_, log_);
  }

 private:
  const Router& router_;
  const ServerOptions& options_;
  Poco::Logger& log_;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Poco::ThreadPool pool;
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  bool running = false;

  Impl(const ServerOptions& opts)
      : options(opts),
        pool("http", 2, std::max(2, opts.threads)),
        socket(Poco::Net::SocketAddress(opts.address, static_cast<Poco::UInt16>(opts.port))) {}
};

HttpServer::HttpServer(const ServerOptions& options, const Router& router)
    : impl_(std::make_unique<Impl>(options)) {
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(std::max(1, options.threads));
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setTimeout(Poco::Timespan(30, 0));
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(
      new ApiHandlerFactory(router, impl_->options), impl_->pool, impl_->socket, params);
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
