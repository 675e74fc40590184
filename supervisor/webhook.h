#pragma once

// Webhooks as the supervisor and the store see them: the events, the endpoints a configuration
// names, the outbox rows a state change produces, and how a body is signed. No I/O besides
// reading a secret from its file.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"

namespace collectord {

// What a webhook reports: a batch or a job that reached a terminal status.
enum class WebhookEventType {
  kBatchCompleted,
  kBatchFailed,
  kBatchCancelled,
  kJobCompleted,
  kJobFailed,
  kJobCancelled,
};
inline constexpr int kWebhookEventTypeCount = 6;

// "batch.completed", "job.failed", ...
std::string_view toString(WebhookEventType type);
// The type named `name`, or nullopt for anything else.
std::optional<WebhookEventType> parseWebhookEventType(std::string_view name);

// One receiver, from a [webhook.NAME] section.
struct WebhookEndpoint {
  std::string name;
  std::string url;      // http:// or https://
  std::string secret;   // as written: the secret itself, or @file:PATH (read at each delivery)
  unsigned events = 0;  // bit (1 << type) for each WebhookEventType delivered here
  std::chrono::milliseconds timeout{10'000};  // connect, send and receive, each
  std::string ca_file;  // https: trust these PEM certificates instead of the system's

  bool wants(WebhookEventType type) const { return (events >> static_cast<int>(type)) & 1u; }
  bool operator==(const WebhookEndpoint&) const = default;
};

// [webhooks] and every [webhook.NAME].
struct WebhookSettings {
  std::vector<WebhookEndpoint> endpoints;                // sorted by name
  std::chrono::milliseconds retry_backoff{5'000};        // after the first failed attempt
  std::chrono::milliseconds retry_backoff_max{600'000};  // the doubling stops here
  int max_attempts = 15;                                 // then the delivery ends failed
  int retention_days = 30;  // finished deliveries are deleted after this; 0 keeps them

  bool operator==(const WebhookSettings&) const = default;
};

// How long to wait after `failed_attempts` (1 or more) failed attempts: retry_backoff doubled
// for each attempt after the first, at most retry_backoff_max.
std::chrono::milliseconds webhookRetryDelay(const WebhookSettings& settings, int failed_attempts);

// A batch or job that has just become terminal, as the write that records it sees it.
struct WebhookEvent {
  WebhookEventType type;
  std::string id;  // stable: the same batch or job always gives the same ID (see webhookEventId)
  BatchRecord batch;
  // A batch event: every job of the batch in trigger order. A job event: that job alone.
  std::vector<JobRecord> jobs;
  Micros at = 0;  // when it ended
};

// "batch.completed:bc_12345678": the event type and the batch or job it is about. A terminal
// status never changes, so this names the event once and for all, across retries of a write
// and daemon restarts; receivers deduplicate on it.
std::string webhookEventId(WebhookEventType type, const std::string& subject_id);

// The event a terminal batch or job gives; nullopt while it is not terminal.
std::optional<WebhookEvent> batchEvent(const BatchRecord& batch, std::vector<JobRecord> jobs);
std::optional<WebhookEvent> jobEvent(const JobRecord& job, const BatchRecord& batch);

// The body a receiver gets for an event, exactly as it is signed. Set by main (the API's JSON).
using WebhookPayloadRenderer = std::function<std::string(const WebhookEvent&)>;

// One delivery to write to the outbox: an event for one endpoint.
struct WebhookOutboxRow {
  std::string event_id;
  std::string endpoint;
  std::string event_type;
  std::string body;
  Micros created_at = 0;
};

// A row per event and endpoint whose `events` include the event's type, events in order.
std::vector<WebhookOutboxRow> webhookOutboxRows(const std::vector<WebhookEvent>& events,
                                                const WebhookSettings& settings,
                                                const WebhookPayloadRenderer& render, Micros now);

// "sha256=" and the lowercase hex HMAC-SHA256 of `message` keyed with `secret`.
std::string webhookSignature(std::string_view secret, std::string_view message);

// The secret an endpoint's `secret` value stands for: the value itself, or for @file:PATH the
// file's content without trailing line breaks. Nullopt with `error` set when the file cannot be
// read or holds nothing.
std::optional<std::string> resolveWebhookSecret(const std::string& written, std::string& error);

}  // namespace collectord
