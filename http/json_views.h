#pragma once

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <optional>
#include <vector>

#include "job.h"

namespace collectord::http {

// The JSON shapes of the API reference, fields in the documented order.

// An element of POST /api/collectors/run's "collectors".
Poco::JSON::Object::Ptr triggeredJobView(const JobRecord& job);
// GET /api/collectors/runs/batch/{id}.
Poco::JSON::Object::Ptr batchView(const BatchRecord& batch, const std::vector<JobRecord>& jobs);
// The same bytes as toJson(batchView(batch, jobs)), written directly without building the tree:
// the batch status is the largest response dashboards poll, and the tree cost most of its time.
std::string batchJson(const BatchRecord& batch, const std::vector<JobRecord>& jobs);
// GET /api/collectors/runs/job/{id}, and each of latest's "latest_runs".
Poco::JSON::Object::Ptr jobStatusView(const JobRecord& job, const std::optional<BatchRecord>& batch);
// A job's earlier, retried attempts: GET /api/collectors/runs/job/{id}'s "previous_attempts".
Poco::JSON::Array::Ptr attemptsView(const std::vector<AttemptRecord>& attempts);
// The whole body of GET /api/collectors/runs/job/{id}: jobStatusView plus "previous_attempts".
// Also the data of the event streams' job events.
std::string jobJson(const JobRecord& job, const std::optional<BatchRecord>& batch,
                    const std::vector<AttemptRecord>& attempts);
// Each of history's "collection_history".
Poco::JSON::Object::Ptr historyItemView(const JobRecord& job);

// {"<name>": items, "<count_name>": N, "generated_at": now}: the envelope of every listing.
std::string listingJson(const std::string& name, const Poco::JSON::Array::Ptr& items,
                        const std::string& count_name);

// An empty object that keeps keys in insertion order.
Poco::JSON::Object::Ptr orderedObject();
std::string toJson(const Poco::JSON::Object::Ptr& object);

}  // namespace collectord::http
