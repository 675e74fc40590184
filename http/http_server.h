#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "api_service.h"

namespace collectord::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 8080;  // 0: let the system pick one; port() tells which
  int threads = 16;
  std::size_t max_body_bytes = 1024 * 1024;
  int timeout_seconds = 30;    // idle keep-alive and slow-client limit
  std::string tls_cert_file;   // both set: HTTPS
  std::string tls_key_file;
};

// The REST API's listener: Poco's HTTPServer (HTTPS with NetSSL when a certificate is set)
// with a thread pool; every request goes through `service`, and gets one access-log line.
class HttpServer {
 public:
  // Binds the socket at once; throws Poco::Exception when it cannot.
  HttpServer(const ServerOptions& options, const ApiService& service);
  ~HttpServer();

  void start();
  // Stops accepting, lets requests in flight finish. Idempotent.
  void stop();
  int port() const;

  struct Impl;  // shared with the connection classes in http_server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace collectord::http
