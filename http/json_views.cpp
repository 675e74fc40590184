#include "json_views.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>

#include <charconv>
#include <sstream>

#include "time_format.h"

namespace collectord::http {
namespace {

using Poco::Dynamic::Var;

Var orNull(const std::optional<std::string>& v) { return v ? Var(*v) : Var(); }
Var orNull(const std::optional<int>& v) { return v ? Var(*v) : Var(); }
Var orNull(const std::optional<double>& v) { return v ? Var(*v) : Var(); }
Var timestampOrNull(const std::optional<Micros>& t) {
  return t ? Var(formatTimestamp(*t)) : Var();
}
Var estimateOrNull(const std::optional<Micros>& t) {
  return t ? Var(formatTimestampSeconds(*t)) : Var();
}

// The fields a job has in both the batch's "collectors" and the job-status shape, in the
// seed's order, after the identifying fields.
void setRunFields(Poco::JSON::Object& o, const JobRecord& job) {
  o.set("started_at", formatTimestamp(job.started_at));
  o.set("updated_at", formatTimestamp(job.updated_at));
  o.set("ended_at", timestampOrNull(job.ended_at));
  o.set("progress_percent", orNull(job.progress_percent));
  o.set("message", orNull(job.message));
  o.set("error", orNull(job.error));
  o.set("duration_seconds", orNull(durationSeconds(job.started_at, job.ended_at)));
}

// Appends `text` as a JSON string, escaped as Poco's stringifier does (so both renderings give
// the same bytes): quote, backslash and control characters; UTF-8 and '/' as they are. Runs of
// characters that need no escape are appended at once.
void appendString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += '"';
  std::size_t plain_from = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + plain_from, i - plain_from);
    plain_from = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text.data() + plain_from, text.size() - plain_from);
  out += '"';
}

// One JSON object written straight into a string, fields in call order.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
  void close() { out_ += '}'; }

  // Writes the key; the caller writes the value.
  std::string& key(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    appendString(out_, name);
    out_ += ':';
    return out_;
  }
  ObjectWriter& string(std::string_view name, std::string_view value) {
    appendString(key(name), value);
    return *this;
  }
  ObjectWriter& string(std::string_view name, const std::string& value) {
    return string(name, std::string_view(value));
  }
  ObjectWriter& string(std::string_view name, const std::optional<std::string>& value) {
    return value ? string(name, *value) : null(name);
  }
  ObjectWriter& null(std::string_view name) {
    key(name) += "null";
    return *this;
  }
  ObjectWriter& number(std::string_view name, int value) {
    char digits[16];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    key(name).append(digits, end);
    return *this;
  }
  ObjectWriter& number(std::string_view name, const std::optional<int>& value) {
    return value ? number(name, *value) : null(name);
  }
  // The shortest fixed notation that reads back as the same double, as Poco writes doubles.
  ObjectWriter& number(std::string_view name, const std::optional<double>& value) {
    if (!value) return null(name);
    char digits[400];
    const auto end =
        std::to_chars(digits, digits + sizeof digits, *value, std::chars_format::fixed).ptr;
    key(name).append(digits, end);
    return *this;
  }
  ObjectWriter& timestamp(std::string_view name, const std::optional<Micros>& t) {
    return t ? string(name, formatTimestamp(*t)) : null(name);
  }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

std::string batchJson(const BatchRecord& batch, const std::vector<JobRecord>& jobs) {
  std::string out;
  out.reserve(512 + 320 * jobs.size());
  ObjectWriter o(out);
  o.string("batch_id", batch.batch_id)
      .string("status", toString(batch.status))
      .number("progress_percent", batch.progress_percent);
  if (batch.estimated_completion) {
    o.string("estimated_completion", formatTimestampSeconds(*batch.estimated_completion));
  } else {
    o.null("estimated_completion");
  }
  o.timestamp("started_at", batch.started_at)
      .timestamp("updated_at", batch.updated_at)
      .timestamp("ended_at", batch.ended_at)
      .string("message", batch.message)
      .string("error", batch.error);
  o.key("collectors") += '[';
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobRecord& job = jobs[i];
    if (i > 0) out += ',';
    ObjectWriter j(out);
    j.string("job_name", job.job_name)
        .string("job_id", job.job_id)
        .string("status", toString(job.status))
        .timestamp("started_at", job.started_at)
        .timestamp("updated_at", job.updated_at)
        .timestamp("ended_at", job.ended_at)
        .number("progress_percent", job.progress_percent)
        .string("message", job.message)
        .string("error", job.error)
        .number("duration_seconds", durationSeconds(job.started_at, job.ended_at));
    j.close();
  }
  out += ']';
  o.number("duration_seconds", durationSeconds(batch.started_at, batch.ended_at))
      .string("priority", toString(batch.priority));
  o.close();
  return out;
}

Poco::JSON::Object::Ptr orderedObject() {
  return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
}

std::string listingJson(const std::string& name, const Poco::JSON::Array::Ptr& items,
                        const std::string& count_name) {
  auto out = orderedObject();
  out->set(name, items);
  out->set(count_name, static_cast<int>(items->size()));
  out->set("generated_at", formatTimestamp(nowMicros()));
  return toJson(out);
}

std::string toJson(const Poco::JSON::Object::Ptr& object) {
  std::ostringstream out;
  object->stringify(out);
  return out.str();
}

Poco::JSON::Object::Ptr triggeredJobView(const JobRecord& job) {
  auto o = orderedObject();
  o->set("job_name", job.job_name);
  o->set("job_id", job.job_id);
  o->set("status", std::string(toString(job.status)));
  o->set("started_at", formatTimestamp(job.started_at));
  return o;
}

Poco::JSON::Object::Ptr batchView(const BatchRecord& batch, const std::vector<JobRecord>& jobs) {
  auto o = orderedObject();
  o->set("batch_id", batch.batch_id);
  o->set("status", std::string(toString(batch.status)));
  o->set("progress_percent", batch.progress_percent);
  o->set("estimated_completion", estimateOrNull(batch.estimated_completion));
  o->set("started_at", formatTimestamp(batch.started_at));
  o->set("updated_at", formatTimestamp(batch.updated_at));
  o->set("ended_at", timestampOrNull(batch.ended_at));
  o->set("message", orNull(batch.message));
  o->set("error", orNull(batch.error));
  Poco::JSON::Array::Ptr collectors = new Poco::JSON::Array;
  for (const JobRecord& job : jobs) {
    auto j = orderedObject();
    j->set("job_name", job.job_name);
    j->set("job_id", job.job_id);
    j->set("status", std::string(toString(job.status)));
    setRunFields(*j, job);
    collectors->add(j);
  }
  o->set("collectors", collectors);
  o->set("duration_seconds", orNull(durationSeconds(batch.started_at, batch.ended_at)));
  o->set("priority", std::string(toString(batch.priority)));
  return o;
}

Poco::JSON::Object::Ptr jobStatusView(const JobRecord& job,
                                      const std::optional<BatchRecord>& batch) {
  auto o = orderedObject();
  o->set("job_id", job.job_id);
  o->set("batch_id", job.batch_id);
  o->set("job_name", job.job_name);
  o->set("status", std::string(toString(job.status)));
  setRunFields(*o, job);
  o->set("batch_status", batch ? Var(std::string(toString(batch->status))) : Var());
  o->set("batch_progress_percent", batch ? Var(batch->progress_percent) : Var());
  o->set("estimated_completion", batch ? estimateOrNull(batch->estimated_completion) : Var());
  o->set("batch_message", batch ? orNull(batch->message) : Var());
  o->set("collector", job.collector);
  o->set("attempt", job.attempt);
  o->set("max_attempts", job.max_attempts);
  o->set("next_attempt_at", timestampOrNull(job.next_attempt_at));
  // Only a cluster's store sets it (empty while no node runs the job).
  if (job.node_id) o->set("node_id", job.node_id->empty() ? Var() : Var(*job.node_id));
  return o;
}

Poco::JSON::Array::Ptr attemptsView(const std::vector<AttemptRecord>& attempts) {
  Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
  for (const AttemptRecord& a : attempts) {
    auto o = orderedObject();
    o->set("attempt", a.attempt);
    o->set("started_at", timestampOrNull(a.started_at));
    o->set("ended_at", formatTimestamp(a.ended_at));
    o->set("error", a.error);
    list->add(o);
  }
  return list;
}

std::string jobJson(const JobRecord& job, const std::optional<BatchRecord>& batch,
                    const std::vector<AttemptRecord>& attempts) {
  auto view = jobStatusView(job, batch);
  view->set("previous_attempts", attemptsView(attempts));
  return toJson(view);
}

Poco::JSON::Object::Ptr historyItemView(const JobRecord& job) {
  const auto seconds = durationSeconds(job.started_at, job.ended_at);
  auto o = orderedObject();
  o->set("job_id", job.job_id);
  o->set("job_name", job.job_name);
  o->set("started_at", formatTimestamp(job.started_at));
  o->set("ended_at", timestampOrNull(job.ended_at));
  o->set("status", std::string(toString(job.status)));
  o->set("message", orNull(job.message));
  o->set("progress_percent", orNull(job.progress_percent));
  o->set("updated_at", formatTimestamp(job.updated_at));
  o->set("duration", seconds ? Var(formatDuration(*seconds)) : Var());
  o->set("duration_seconds", orNull(seconds));
  o->set("batch_id", job.batch_id);
  o->set("error", orNull(job.error));
  o->set("collector", job.collector);
  o->set("attempt", job.attempt);
  return o;
}

}  // namespace collectord::http
