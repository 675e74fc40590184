// HTTPS on the real daemon: a self-signed certificate made here with the openssl CLI, requests
// over TLS (trusting nothing, then trusting exactly that certificate), and plain HTTP on the TLS
// port refused without harming the server.

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace std::chrono_literals;

struct TlsResult {
  int status = 0;
  std::string body;
  std::string content_type;
};

TlsResult httpsGet(int port, const std::string& path, Poco::Net::Context::Ptr context) {
  Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port), context);
  session.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  TlsResult result;
  result.status = static_cast<int>(response.getStatus());
  result.content_type = response.getContentType();
  Poco::StreamCopier::copyToString(in, result.body);
  return result;
}

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Poco::Net::initializeSSL(); }
  static void TearDownTestSuite() { Poco::Net::uninitializeSSL(); }

  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "the openssl command is not installed";
    }
    const std::string command =
        "timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1"
        " -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        " -keyout " + dir_.file("key.pem") + " -out " + dir_.file("cert.pem") +
        " >" + dir_.file("openssl.log") + " 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << readFile(dir_.file("openssl.log")).value_or("");
    config_.addCollector("ninja", "exit 0\n");
    config_.appendToMain("[http]\ntls_cert_file = cert.pem\ntls_key_file = key.pem\n");
    daemon_ = std::make_unique<Daemon>(config_);
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Tls, RequestsSucceedOverHttpsWithoutVerification) {
  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_CLIENT_USE, "", "", "", Poco::Net::Context::VERIFY_NONE);
  auto health = httpsGet(daemon_->port(), "/healthz", context);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  auto latest = httpsGet(daemon_->port(), "/api/collectors/runs/latest", context);
  EXPECT_EQ(latest.status, 200);
  EXPECT_EQ(latest.content_type, "application/json");
  EXPECT_NE(latest.body.find("\"latest_runs\""), std::string::npos) << latest.body;
}

TEST_F(Tls, RequestsSucceedWhenTrustingExactlyTheGeneratedCertificate) {
  // VERIFY_RELAXED with the certificate as the only CA: the chain is checked (Poco skips the host
  // name check for 127.0.0.1, which the certificate names anyway).
  Poco::Net::Context::Ptr context =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", dir_.file("cert.pem"),
                             Poco::Net::Context::VERIFY_RELAXED, 9, false);
  auto health = httpsGet(daemon_->port(), "/healthz", context);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
}

TEST_F(Tls, PlainHttpOnTheTlsPortFailsAndTheServerGoesOn) {
  // Through the harness's ordinary HTTP client: no HTTP answer comes back.
  bool plain_failed = false;
  try {
    auto response = daemon_->client().get("/healthz");
    plain_failed = response.status != 200;
  } catch (const Poco::Exception&) {
    plain_failed = true;
  }
  EXPECT_TRUE(plain_failed) << "plain HTTP was answered on the TLS port";

  // Over a raw socket: the connection ends, promptly, without any HTTP response.
  RawExchange raw = daemon_->client().raw(
      "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  EXPECT_FALSE(raw.response) << raw.received;
  EXPECT_TRUE(raw.closed) << "the server kept a plain-HTTP connection open";
  EXPECT_EQ(raw.received.find("HTTP/1."), std::string::npos) << raw.received;

  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_CLIENT_USE, "", "", "", Poco::Net::Context::VERIFY_NONE);
  EXPECT_EQ(httpsGet(daemon_->port(), "/healthz", context).status, 200);
  EXPECT_TRUE(processAlive(daemon_->pid()));
}

// The event streams write TLS records from their own thread, without blocking.
TEST_F(Tls, EventStreamsWorkOverHttps) {
  Poco::Net::Context::Ptr context = new Poco::Net::Context(
      Poco::Net::Context::TLS_CLIENT_USE, "", "", "", Poco::Net::Context::VERIFY_NONE);
  Poco::Net::HTTPSClientSession events("127.0.0.1", static_cast<Poco::UInt16>(daemon_->port()),
                                       context);
  events.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest open(Poco::Net::HTTPRequest::HTTP_GET, "/api/events",
                              Poco::Net::HTTPMessage::HTTP_1_1);
  events.sendRequest(open);
  Poco::Net::HTTPResponse head;
  std::istream& stream = events.receiveResponse(head);
  ASSERT_EQ(head.getStatus(), Poco::Net::HTTPResponse::HTTP_OK);
  EXPECT_EQ(head.getContentType(), "text/event-stream");

  Poco::Net::HTTPSClientSession trigger("127.0.0.1", static_cast<Poco::UInt16>(daemon_->port()),
                                        context);
  const std::string body = R"({"collectors": ["ninja"]})";
  Poco::Net::HTTPRequest run(Poco::Net::HTTPRequest::HTTP_POST, "/api/collectors/run",
                             Poco::Net::HTTPMessage::HTTP_1_1);
  run.setContentType("application/json");
  run.setContentLength(static_cast<std::streamsize>(body.size()));
  trigger.sendRequest(run) << body;
  Poco::Net::HTTPResponse created;
  std::string answer;
  Poco::StreamCopier::copyToString(trigger.receiveResponse(created), answer);
  ASSERT_EQ(created.getStatus(), Poco::Net::HTTPResponse::HTTP_CREATED) << answer;
  const std::string batch_id = answer.substr(answer.find("bc_"), 11);

  // Live: every event of the run, up to the batch's end.
  std::string line, last_batch;
  while (std::getline(stream, line)) {
    if (line.rfind("data: {\"batch_id\"", 0) == 0) last_batch = line;
    if (last_batch.find("\"status\":\"completed\"") != std::string::npos) break;
  }
  EXPECT_NE(last_batch.find(batch_id), std::string::npos) << last_batch;
  EXPECT_NE(last_batch.find("\"status\":\"completed\""), std::string::npos) << last_batch;

  // An ended batch's stream: its state, then the server closes with TLS's close_notify.
  auto ended = httpsGet(daemon_->port(), "/api/collectors/runs/batch/" + batch_id + "/events",
                        context);
  EXPECT_EQ(ended.status, 200);
  EXPECT_EQ(ended.content_type, "text/event-stream");
  EXPECT_NE(ended.body.find("event: job\n"), std::string::npos) << ended.body;
  EXPECT_NE(ended.body.find("event: batch\ndata: {\"batch_id\":\"" + batch_id), std::string::npos)
      << ended.body;
}

}  // namespace
}  // namespace collectord::test
