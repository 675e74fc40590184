#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "router.h"

namespace collectord::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 8080;  // 0: let the system pick one; port() tells which
  int threads = 16;
  std::size_t max_body_bytes = 1024 * 1024;
};

// The REST API's listener: Poco's HTTPServer with a thread pool, every request dispatched
// through `router`. Internal faults become 500 JSON; store faults 503 JSON.
class HttpServer {
 public:
  // Binds the socket at once; throws Poco::Exception when it cannot.
  HttpServer(const ServerOptions& options, const Router& router);
  ~HttpServer();

  void start();
  // Stops accepting, lets requests in flight finish. Idempotent.
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace collectord::http
