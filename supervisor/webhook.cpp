#include "webhook.h"

#include <Poco/DigestEngine.h>
#include <Poco/HMACEngine.h>
#include <Poco/SHA2Engine.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace collectord {
namespace {

constexpr std::array<std::string_view, kWebhookEventTypeCount> kEventNames = {
    "batch.completed", "batch.failed", "batch.cancelled",
    "job.completed",   "job.failed",   "job.cancelled"};

// SHA-256 with the block and digest sizes HMACEngine asks of its engine, which this Poco's
// SHA2Engine (1.11) does not declare.
class Sha256Engine : public Poco::SHA2Engine {
 public:
  enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
  Sha256Engine() : Poco::SHA2Engine(Poco::SHA2Engine::SHA_256) {}
};

std::optional<WebhookEventType> terminalEvent(JobStatus status, bool batch) {
  switch (status) {
    case JobStatus::kCompleted:
      return batch ? WebhookEventType::kBatchCompleted : WebhookEventType::kJobCompleted;
    case JobStatus::kFailed:
      return batch ? WebhookEventType::kBatchFailed : WebhookEventType::kJobFailed;
    case JobStatus::kCancelled:
      return batch ? WebhookEventType::kBatchCancelled : WebhookEventType::kJobCancelled;
    case JobStatus::kQueued:
    case JobStatus::kRunning:
      break;
  }
  return std::nullopt;
}

}  // namespace

std::string_view toString(WebhookEventType type) { return kEventNames[static_cast<int>(type)]; }

std::optional<WebhookEventType> parseWebhookEventType(std::string_view name) {
  for (int i = 0; i < kWebhookEventTypeCount; ++i) {
    if (kEventNames[i] == name) return static_cast<WebhookEventType>(i);
  }
  return std::nullopt;
}

std::chrono::milliseconds webhookRetryDelay(const WebhookSettings& settings, int failed_attempts) {
  auto delay = settings.retry_backoff;
  for (int i = 1; i < failed_attempts && delay < settings.retry_backoff_max; ++i) delay *= 2;
  return std::min(delay, settings.retry_backoff_max);
}

std::string webhookEventId(WebhookEventType type, const std::string& subject_id) {
  return std::string(toString(type)) + ":" + subject_id;
}

std::optional<WebhookEvent> batchEvent(const BatchRecord& batch, std::vector<JobRecord> jobs) {
  const auto type = terminalEvent(batch.status, true);
  if (!type) return std::nullopt;
  return WebhookEvent{*type, webhookEventId(*type, batch.batch_id), batch, std::move(jobs),
                      batch.ended_at.value_or(batch.updated_at)};
}

std::optional<WebhookEvent> jobEvent(const JobRecord& job, const BatchRecord& batch) {
  const auto type = terminalEvent(job.status, false);
  if (!type) return std::nullopt;
  return WebhookEvent{*type,
                      webhookEventId(*type, job.job_id),
                      batch,
                      {job},
                      job.ended_at.value_or(job.updated_at)};
}

std::vector<WebhookOutboxRow> webhookOutboxRows(const std::vector<WebhookEvent>& events,
                                                const WebhookSettings& settings,
                                                const WebhookPayloadRenderer& render, Micros now) {
  std::vector<WebhookOutboxRow> rows;
  if (!render) return rows;
  for (const WebhookEvent& event : events) {
    std::string body;  // rendered once, whatever the number of endpoints
    for (const WebhookEndpoint& endpoint : settings.endpoints) {
      if (!endpoint.wants(event.type)) continue;
      if (body.empty()) body = render(event);
      rows.push_back({event.id, endpoint.name, std::string(toString(event.type)), body, now});
    }
  }
  return rows;
}

std::string webhookSignature(std::string_view secret, std::string_view message) {
  Poco::HMACEngine<Sha256Engine> hmac(secret.data(), secret.size());
  hmac.update(message.data(), message.size());
  return "sha256=" + Poco::DigestEngine::digestToHex(hmac.digest());
}

std::optional<std::string> resolveWebhookSecret(const std::string& written, std::string& error) {
  if (written.rfind("@file:", 0) != 0) return written;
  const std::string path = written.substr(6);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read the secret from " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = "cannot read the secret from " + path;
    return std::nullopt;
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    error = "the secret file " + path + " is empty";
    return std::nullopt;
  }
  return secret;
}

}  // namespace collectord
