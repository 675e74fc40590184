#pragma once

// Checks of the REST API's documented shapes (seed document + CONTRACT.md), so that every test
// asserts every field of every response it receives: presence, JSON type, null-ness, format and
// the relations between fields (terminal <=> ended_at, duration_seconds = ended_at - started_at,
// the batch roll-up...). Each check lists every problem it finds, naming the field.

#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_harness.h"

namespace collectord::test {

// The value of `key` rendered so that one string comparison checks type and value:
// "<missing>", "null", "true", 42 as "42", 4.5 as "4.5" (a double always shows a '.', so 100.0
// is "100.0", never "100"), strings JSON-quoted ("\"queued\""), arrays and objects as JSON.
std::string jsonOf(const Poco::JSON::Object& object, const std::string& key);
// `text` JSON-quoted: what jsonOf renders for a string field holding `text`.
std::string jsonString(std::string_view text);

// The objects of array field `key` (throws std::runtime_error when it is not an array of objects).
std::vector<Poco::JSON::Object::Ptr> objectsOf(const Poco::JSON::Object& object,
                                               const std::string& key);

// HTTP `status`, Content-Type application/json, and a JSON object body.
::testing::AssertionResult IsJsonResponse(const HttpResponse& response, int status);
// HTTP `status`, Content-Type application/json, and exactly {"error": message}.
::testing::AssertionResult IsErrorResponse(const HttpResponse& response, int status,
                                           const std::string& message);
// As IsErrorResponse, for messages with a free-form tail: the message starts with `prefix` and
// goes on past it.
::testing::AssertionResult IsErrorResponseStartingWith(const HttpResponse& response, int status,
                                                       const std::string& prefix);

// POST /api/collectors/run answer: batch_id, and one queued job per collector in request order,
// with the given job names and ids starting with each collector's first two letters, lowercased.
::testing::AssertionResult HasTriggerShape(const Poco::JSON::Object& body,
                                           const std::vector<std::string>& collectors,
                                           const std::vector<std::string>& job_names);
// GET batch: every field, every collectors[] item, and the roll-up rules of the contract
// (status, progress mean, message, error, ended_at, estimated_completion, duration_seconds).
::testing::AssertionResult HasBatchShape(const Poco::JSON::Object& batch);
// One collectors[] item of a batch.
::testing::AssertionResult HasBatchJobShape(const Poco::JSON::Object& job);
// GET job (also each latest_runs[] item): the job fields plus batch_status,
// batch_progress_percent, estimated_completion and batch_message.
::testing::AssertionResult HasJobStatusShape(const Poco::JSON::Object& job);
// One collection_history[] item, with duration and the extras batch_id and error.
::testing::AssertionResult HasHistoryItemShape(const Poco::JSON::Object& item);
// {"<list_key>": [...], "total_runs": size of the list, "generated_at": timestamp}.
::testing::AssertionResult HasListEnvelope(const Poco::JSON::Object& body,
                                           const std::string& list_key);

// The durations the API renders: "45s", "1m 20s", "2h 3m 4s"; nullopt when malformed.
std::optional<long> parseDuration(std::string_view text);

// True when the job's (or batch's) "message" is exactly `message`.
bool hasMessage(const Poco::JSON::Object& job, const std::string& message);

// A well-formed ID that differs from `id` in its last digit, so it names nothing.
std::string otherId(std::string id);

// The job IDs of the listing `list_key` ("latest_runs", "collection_history") of `response`,
// after checking the status, the envelope and each item with `item_shape`.
std::vector<std::string> listedJobIds(
    const HttpResponse& response, const std::string& list_key,
    ::testing::AssertionResult (*item_shape)(const Poco::JSON::Object&));

}  // namespace collectord::test
