#include "api_client.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <istream>
#include <ostream>

#include "version.h"

namespace collectorctl {
namespace {

constexpr std::size_t kMaxBody = 64 * 1024 * 1024;
constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr auto kReceiveTimeout = std::chrono::seconds(20);

Poco::Timespan timespan(std::chrono::seconds s) { return Poco::Timespan(s.count(), 0); }

void readBody(std::istream& in, std::string& body) {
  char buffer[16 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    body.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (body.size() > kMaxBody) throw Poco::Net::MessageException("response body too large");
  }
}

void parseJson(ApiResponse& response) {
  if (response.body.empty()) return;
  const auto type = response.header("Content-Type");
  if (!type || type->find("json") == std::string::npos) return;
  try {
    Poco::JSON::Parser parser;
    response.json = parser.parse(response.body);
  } catch (const Poco::Exception&) {
    response.json.clear();  // not JSON after all: problem() falls back to the status line
  }
}

// Failures on a kept-alive connection that a fresh one may not have: the server closed it
// between two requests.
// (NoMessageException, ConnectionResetException and the other network errors are IOExceptions;
// a timeout is not, and is not retried.)
bool staleConnection(const Poco::Exception& e) {
  return dynamic_cast<const Poco::IOException*>(&e) != nullptr;
}

}  // namespace

std::optional<std::string> ApiResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (Poco::icompare(key, std::string(name)) == 0) return value;
  }
  return std::nullopt;
}

Poco::JSON::Object::Ptr ApiResponse::object() const {
  if (json.isEmpty() || json.type() != typeid(Poco::JSON::Object::Ptr)) return nullptr;
  return json.extract<Poco::JSON::Object::Ptr>();
}

std::string ApiResponse::problem() const {
  if (!answered()) return transport_error;
  if (const auto body_object = object(); body_object && body_object->has("error")) {
    const Poco::Dynamic::Var error = body_object->get("error");
    if (error.isString()) return error.extract<std::string>() + " (" + std::to_string(status) + ")";
  }
  return "HTTP " + std::to_string(status) + " " +
         Poco::Net::HTTPResponse::getReasonForStatus(
             static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
}

bool ApiResponse::transient() const {
  return !answered() || status == 408 || status == 502 || status == 503 || status == 504;
}

ApiClient::ApiClient(const Settings& settings) : url_(settings.url), api_key_(settings.api_key) {
  const Poco::URI uri(settings.url);
  scheme_ = uri.getScheme();
  host_ = uri.getHost();
  port_ = uri.getPort();
  base_path_ = uri.getPath();
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (scheme_ == "https") {
    // Relaxed: the chain must verify (against the CA file, or the system's CAs without one);
    // Poco checks the host name against the certificate as well.
    tls_context_ =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", settings.ca_file,
                               Poco::Net::Context::VERIFY_RELAXED, 9, settings.ca_file.empty());
  }
}

ApiClient::~ApiClient() = default;

std::unique_ptr<Poco::Net::HTTPClientSession> ApiClient::newSession(
    std::chrono::seconds receive_timeout) const {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (tls_context_) {
    session = std::make_unique<Poco::Net::HTTPSClientSession>(host_, port_, tls_context_);
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(host_, port_);
  }
  session->setTimeout(timespan(kConnectTimeout), timespan(kReceiveTimeout),
                      timespan(receive_timeout));
  return session;
}

Poco::Net::HTTPRequest ApiClient::newRequest(const std::string& method,
                                             const std::string& path) const {
  Poco::Net::HTTPRequest request(method, base_path_ + path, Poco::Net::HTTPMessage::HTTP_1_1);
  request.set("User-Agent", std::string("collectorctl/") + kVersion);
  request.set("Accept", "application/json");
  if (!api_key_.empty()) request.set("X-API-Key", api_key_);
  return request;
}

std::string ApiClient::describeFailure(const std::exception& error) const {
  const auto* poco = dynamic_cast<const Poco::Exception*>(&error);
  const std::string detail = poco ? poco->displayText() : error.what();
  if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&error)) {
    return "cannot connect to " + url_ + ": connection refused (is collectord running there?)";
  }
  if (dynamic_cast<const Poco::Net::HostNotFoundException*>(&error) ||
      dynamic_cast<const Poco::Net::NoAddressFoundException*>(&error) ||
      dynamic_cast<const Poco::Net::DNSException*>(&error)) {
    return "cannot connect to " + url_ + ": unknown host " + host_;
  }
  if (dynamic_cast<const Poco::TimeoutException*>(&error)) {
    return "no answer from " + url_ + " in time (" + detail + ")";
  }
  if (dynamic_cast<const Poco::Net::SSLException*>(&error)) {
    std::string hint;
    if (detail.find("certificate verify failed") != std::string::npos) {
      hint = " (trust the server's certificate with --ca-file FILE, COLLECTORD_CA_FILE or ca_file)";
    } else if (detail.find("wrong version number") != std::string::npos) {
      hint = " (is it a plain http:// server?)";
    }
    return "TLS failure talking to " + url_ + ": " + detail + hint;
  }
  // An https server drops a plain HTTP request without an answer.
  const std::string https_hint = scheme_ == "http" ? " (does it expect https://?)" : "";
  if (dynamic_cast<const Poco::Net::NoMessageException*>(&error)) {
    return url_ + " closed the connection without answering" + https_hint;
  }
  if (dynamic_cast<const Poco::Net::ConnectionResetException*>(&error)) {
    return url_ + " reset the connection without answering" + https_hint;
  }
  return "request to " + url_ + " failed: " + detail;
}

ApiResponse ApiClient::exchange(const std::string& method, const std::string& path,
                                const std::optional<std::string>& body, bool may_retry) {
  ApiResponse result;
  try {
    if (!session_) {
      session_ = newSession(kReceiveTimeout);
      session_used_ = false;
    }
    Poco::Net::HTTPRequest request = newRequest(method, path);
    request.setKeepAlive(true);
    if (body) {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body->size()));
    } else if (method != "GET") {
      request.setContentLength(0);
    }
    std::ostream& out = session_->sendRequest(request);
    if (body) out << *body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session_->receiveResponse(response);
    readBody(in, result.body);
    session_used_ = true;
    result.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) result.headers.emplace_back(name, value);
    parseJson(result);
    return result;
  } catch (const Poco::Exception& e) {
    const bool was_used = session_used_;
    session_.reset();
    if (may_retry && was_used && staleConnection(e)) return exchange(method, path, body, false);
    result.transport_error = describeFailure(e);
  } catch (const std::exception& e) {
    session_.reset();
    result.transport_error = describeFailure(e);
  }
  return result;
}

ApiResponse ApiClient::get(const std::string& path) { return exchange("GET", path, {}, true); }

ApiResponse ApiClient::post(const std::string& path, const std::string& json_body) {
  return exchange("POST", path, json_body, false);
}

ApiResponse ApiClient::del(const std::string& path) {
  return exchange("DELETE", path, std::nullopt, false);
}

std::string encodeComponent(std::string_view text) {
  std::string encoded;
  Poco::URI::encode(std::string(text), "!#$&'()*+,/:;=?@[]%", encoded);
  return encoded;
}

}  // namespace collectorctl
