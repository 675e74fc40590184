#include "run_state.h"

#include <Poco/JSON/Array.h>

#include <algorithm>
#include <ctime>

namespace collectorctl {
namespace {

// Copies the fields shown for a job from a batch's collectors[] item or a job document.
// Returns whether any of them changed.
bool updateJob(JobProgress& job, const Poco::JSON::Object& item) {
  const std::int64_t updated = parseTimestamp(stringField(item, "updated_at")).value_or(0);
  if (updated < job.updated_at_us) return false;
  job.updated_at_us = updated;
  const JobProgress before = job;
  job.status = stringField(item, "status");
  if (const auto name = stringField(item, "job_name"); !name.empty()) job.job_name = name;
  const auto progress = intField(item, "progress_percent");
  job.progress = progress ? std::optional<int>(static_cast<int>(*progress)) : std::nullopt;
  job.message = stringField(item, "message");
  job.error = stringField(item, "error");
  job.duration_seconds = numberField(item, "duration_seconds");
  if (auto started = parseTimestamp(stringField(item, "started_at"))) job.started_at_us = started;
  return job.status != before.status || job.progress != before.progress ||
         job.message != before.message || job.error != before.error ||
         job.job_name != before.job_name;
}

}  // namespace

bool isTerminalStatus(std::string_view status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

void RunState::addJob(JobProgress job) {
  addBatch(job.batch_id);
  jobs_.push_back(std::move(job));
}

void RunState::addBatch(const std::string& batch_id) {
  const bool known = std::any_of(batches_.begin(), batches_.end(),
                                 [&](const BatchProgress& b) { return b.batch_id == batch_id; });
  if (!known) batches_.push_back(BatchProgress{batch_id});
}

bool RunState::applyBatch(const Poco::JSON::Object& batch, const std::string& json) {
  const std::string id = stringField(batch, "batch_id");
  auto it = std::find_if(batches_.begin(), batches_.end(),
                         [&](const BatchProgress& b) { return b.batch_id == id; });
  if (it == batches_.end()) return false;
  BatchProgress& b = *it;
  const std::int64_t updated = parseTimestamp(stringField(batch, "updated_at")).value_or(0);
  if (updated < b.updated_at_us) return false;
  b.updated_at_us = updated;
  const BatchProgress before = b;
  b.status = stringField(batch, "status");
  b.progress = static_cast<int>(intField(batch, "progress_percent").value_or(0));
  b.message = stringField(batch, "message");
  b.error = stringField(batch, "error");
  b.estimated_completion = stringField(batch, "estimated_completion");
  b.started_at_us = parseTimestamp(stringField(batch, "started_at"));
  b.duration_seconds = numberField(batch, "duration_seconds");
  b.json = json;
  bool changed = b.status != before.status || b.progress != before.progress ||
                 b.message != before.message || b.error != before.error;
  if (const auto items = batch.getArray("collectors")) {
    b.job_count = items->size();
    for (std::size_t i = 0; i < items->size(); ++i) {
      const auto item = items->getObject(static_cast<unsigned>(i));
      if (!item) continue;
      const std::string job_id = stringField(*item, "job_id");
      for (JobProgress& job : jobs_) {
        if (job.job_id == job_id && updateJob(job, *item)) changed = true;
      }
    }
  }
  return changed;
}

bool RunState::applyJob(const Poco::JSON::Object& document) {
  const std::string job_id = stringField(document, "job_id");
  bool changed = false;
  for (JobProgress& job : jobs_) {
    if (job.job_id == job_id && updateJob(job, document)) changed = true;
  }
  return changed;
}

bool RunState::finished() const {
  for (const JobProgress& job : jobs_) {
    if (!isTerminalStatus(job.status)) return false;
  }
  for (const BatchProgress& batch : batches_) {
    const auto followed = static_cast<std::size_t>(
        std::count_if(jobs_.begin(), jobs_.end(),
                      [&](const JobProgress& j) { return j.batch_id == batch.batch_id; }));
    const bool all_followed = batch.job_count == 0 || followed >= batch.job_count;
    if (all_followed && !isTerminalStatus(batch.status)) return false;
  }
  return true;
}

bool RunState::allCompleted() const {
  return std::all_of(jobs_.begin(), jobs_.end(),
                     [](const JobProgress& job) { return job.status == "completed"; });
}

std::optional<std::int64_t> parseTimestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.f...]Z
  if (text.size() < 20 || text.back() != 'Z') return std::nullopt;
  const auto digits = [&](std::size_t at, std::size_t count) -> std::optional<int> {
    int value = 0;
    for (std::size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  if (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  const auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  std::int64_t micros = 0;
  const std::size_t end = text.size() - 1;
  if (end > 19) {
    if (text[19] != '.' || end - 20 > 9 || end == 20) return std::nullopt;
    const auto fraction = digits(20, end - 20);
    if (!fraction) return std::nullopt;
    micros = *fraction;
    for (std::size_t n = end - 20; n < 6; ++n) micros *= 10;
    for (std::size_t n = end - 20; n > 6; --n) micros /= 10;
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  const std::time_t seconds = ::timegm(&tm);
  return static_cast<std::int64_t>(seconds) * 1'000'000 + micros;
}

std::string stringField(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key)) return "";
  const Poco::Dynamic::Var value = object.get(key);
  return value.isString() ? value.extract<std::string>() : "";
}

std::optional<std::int64_t> intField(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key)) return std::nullopt;
  const Poco::Dynamic::Var value = object.get(key);
  if (value.isEmpty() || !value.isNumeric()) return std::nullopt;
  return value.convert<std::int64_t>();
}

std::optional<double> numberField(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key)) return std::nullopt;
  const Poco::Dynamic::Var value = object.get(key);
  if (value.isEmpty() || !value.isNumeric()) return std::nullopt;
  return value.convert<double>();
}

}  // namespace collectorctl
