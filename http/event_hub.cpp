#include "event_hub.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <string_view>

#include "json_views.h"
#include "time_format.h"

namespace collectord::http {
namespace {

// Changes waiting for the hub's thread beyond this are merged into the last one.
constexpr std::size_t kMaxQueuedChanges = 4096;
// Ended batches kept in memory (with their jobs' records), for streams opened on them and for
// resuming; older ones are read from the store again when asked for.
constexpr std::size_t kKeepEnded = 256;

// Replaces each record of `from` in `into` (the same ID), or appends it.
template <class Record, class Id>
void mergeRecords(std::vector<Record>& into, const std::vector<Record>& from, Id id) {
  for (const Record& record : from) {
    const auto same = std::find_if(into.begin(), into.end(),
                                   [&](const Record& r) { return id(r) == id(record); });
    if (same != into.end()) {
      *same = record;
    } else {
      into.push_back(record);
    }
  }
}

std::string eventText(std::uint64_t id, std::string_view name, const std::string& json) {
  std::string text;
  text.reserve(json.size() + 64);
  text += "id: ";
  text += std::to_string(id);
  text += "\nevent: ";
  text += name;
  text += "\ndata: ";
  text += json;  // one line: the JSON writers escape every control character
  text += "\n\n";
  return text;
}

JobRecord* findJob(std::vector<JobRecord>& jobs, const std::string& job_id) {
  const auto it = std::find_if(jobs.begin(), jobs.end(),
                               [&](const JobRecord& j) { return j.job_id == job_id; });
  return it == jobs.end() ? nullptr : &*it;
}

}  // namespace

EventHub::EventHub(JobStore& store, EventOptions options, Metrics& metrics)
    : store_(store),
      options_(options),
      metrics_(metrics),
      streamer_({options.heartbeat, options.client_buffer_bytes}, metrics),
      last_id_(static_cast<std::uint64_t>(nowMicros())),
      replayable_after_(last_id_) {}

EventHub::~EventHub() { stop(); }

void EventHub::start() {
  streamer_.start();
  thread_ = std::thread([this] { run(); });
}

void EventHub::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Long enough for a reading client to get the final states of a shutdown; a stalled one
  // does not hold the daemon up for longer.
  streamer_.stop(std::chrono::seconds(1));
}

void EventHub::publish(const StateChange& change) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (changes_.size() < kMaxQueuedChanges) {
      changes_.push_back(change);
    } else {
      StateChange& last = changes_.back();
      mergeRecords(last.jobs, change.jobs, [](const JobRecord& j) { return j.job_id; });
      mergeRecords(last.batches, change.batches, [](const BatchRecord& b) { return b.batch_id; });
    }
  }
  wake_.notify_one();
}

std::shared_ptr<void> EventHub::reserveStream() {
  if (streams_.fetch_add(1) >= options_.max_streams) {
    streams_.fetch_sub(1);
    return nullptr;
  }
  return std::shared_ptr<void>(static_cast<void*>(this), [this](void*) { streams_.fetch_sub(1); });
}

void EventHub::stream(std::unique_ptr<StreamConnection> connection, std::string head, Topic topic,
                      std::optional<std::uint64_t> last_event_id, std::shared_ptr<void> slot) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // the connection closes: the daemon is going away
    subscriptions_.push_back(Subscription{std::move(connection), std::move(head), std::move(topic),
                                          last_event_id, std::move(slot)});
  }
  wake_.notify_one();
}

bool EventHub::endedBy(const Topic& topic, std::uint64_t last_event_id) const {
  std::lock_guard lock(cache_mutex_);
  std::string batch_id = topic.id;
  if (topic.kind == Topic::Kind::kJob) {
    const auto job = job_batch_.find(topic.id);
    if (job == job_batch_.end()) return false;
    batch_id = job->second;
  }
  const auto it = batches_.find(batch_id);
  if (it == batches_.end()) return false;
  const Batch& batch = it->second;
  switch (topic.kind) {
    case Topic::Kind::kBatch:
      return batch.ended_event != 0 && batch.ended_event <= last_event_id;
    case Topic::Kind::kJob: {
      const auto ended = batch.jobs_ended.find(topic.id);
      return ended != batch.jobs_ended.end() && ended->second <= last_event_id;
    }
    case Topic::Kind::kAll:
      break;
  }
  return false;
}

void EventHub::run() {
  Poco::Logger& log = Poco::Logger::get("collectord.http");
  std::vector<StateChange> changes;
  std::vector<Subscription> subscriptions;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock,
                 [this] { return stopping_ || !changes_.empty() || !subscriptions_.empty(); });
      changes.swap(changes_);
      subscriptions.swap(subscriptions_);
      if (stopping_ && changes.empty() && subscriptions.empty()) break;
    }
    for (const StateChange& change : changes) {
      try {
        apply(change);
      } catch (const std::exception& e) {
        // The store could not be read: these events are lost to live streams, and a client
        // that reconnects gets the current state.
        log.error("event streams: cannot publish a change: %s", std::string(e.what()));
      }
    }
    for (Subscription& subscription : subscriptions) {
      try {
        serve(subscription);
      } catch (const std::exception& e) {
        log.error("event streams: cannot open a stream for %s: %s",
                  subscription.connection ? subscription.connection->peer() : std::string("-"),
                  std::string(e.what()));
      }
    }
    changes.clear();
    subscriptions.clear();  // a stream that could not be served closes here
  }
}

EventHub::Batch* EventHub::findBatch(const std::string& batch_id) {
  if (const auto it = batches_.find(batch_id); it != batches_.end()) return &it->second;
  // A batch the hub has not seen since it started: the store has its state, and no change to
  // it can be waiting, since changes are applied in order.
  auto stored = store_.batchWithJobs(batch_id);  // one snapshot
  if (!stored) return nullptr;
  Batch& batch = batches_[batch_id];
  batch.record = std::move(stored->first);
  batch.jobs = std::move(stored->second);
  for (const JobRecord& job : batch.jobs) job_batch_[job.job_id] = batch_id;
  if (isTerminal(batch.record.status)) {
    batch.in_ended = true;
    ended_.push_back(batch_id);
  }
  return &batch;
}

EventHub::Batch* EventHub::findBatchOfJob(const std::string& job_id) {
  if (const auto it = job_batch_.find(job_id); it != job_batch_.end()) {
    return findBatch(it->second);
  }
  const auto job = store_.findJob(job_id);
  return job ? findBatch(job->batch_id) : nullptr;
}

EventPtr EventHub::jobEvent(const Batch& batch, const JobRecord& job) {
  static const std::vector<AttemptRecord> kNone;
  const std::vector<AttemptRecord>* attempts = &kNone;
  if (job.attempt > 1) {
    Attempts& cached = attempts_[job.job_id];
    if (cached.before != job.attempt) {
      cached.records = store_.attemptsOf(job.job_id);
      // The store may be ahead of this change already: show the attempts before this one.
      std::erase_if(cached.records,
                    [&](const AttemptRecord& a) { return a.attempt >= job.attempt; });
      cached.before = job.attempt;
    }
    attempts = &cached.records;
  }
  auto event = std::make_shared<StreamEvent>();
  event->id = ++last_id_;
  event->kind = StreamEvent::Kind::kJob;
  event->batch_id = job.batch_id;
  event->job_id = job.job_id;
  event->terminal = isTerminal(job.status);
  event->text = eventText(event->id, "job", jobJson(job, batch.record, *attempts));
  return event;
}

EventPtr EventHub::batchEvent(const Batch& batch) {
  auto event = std::make_shared<StreamEvent>();
  event->id = ++last_id_;
  event->kind = StreamEvent::Kind::kBatch;
  event->batch_id = batch.record.batch_id;
  event->terminal = isTerminal(batch.record.status);
  event->text = eventText(event->id, "batch", batchJson(batch.record, batch.jobs));
  return event;
}

void EventHub::remember(const EventPtr& event) {
  ring_.push_back(event);
  ring_bytes_ += event->text.size();
  while (ring_bytes_ > options_.replay_bytes && ring_.size() > 1) {
    replayable_after_ = ring_.front()->id;
    ring_bytes_ -= ring_.front()->text.size();
    ring_.pop_front();
  }
}

void EventHub::apply(const StateChange& change) {
  std::vector<EventPtr> events;
  {
    std::lock_guard lock(cache_mutex_);
    // First the state, so that every event of this change shows all of it.
    for (const JobRecord& job : change.jobs) {
      Batch* batch = findBatch(job.batch_id);
      if (!batch) continue;
      if (JobRecord* known = findJob(batch->jobs, job.job_id)) {
        *known = job;
      } else {
        batch->jobs.push_back(job);
        job_batch_[job.job_id] = job.batch_id;
      }
    }
    for (const BatchRecord& record : change.batches) {
      if (Batch* batch = findBatch(record.batch_id)) batch->record = record;
    }
    // Then the events: each job before its batch, so a batch stream's last event is the batch's.
    for (const JobRecord& job : change.jobs) {
      const auto it = batches_.find(job.batch_id);
      if (it == batches_.end()) continue;
      Batch& batch = it->second;
      const EventPtr event = jobEvent(batch, job);
      if (event->terminal) batch.jobs_ended.emplace(job.job_id, event->id);
      batch.last_event = event->id;
      remember(event);
      events.push_back(event);
    }
    for (const BatchRecord& record : change.batches) {
      const auto it = batches_.find(record.batch_id);
      if (it == batches_.end()) continue;
      Batch& batch = it->second;
      const EventPtr event = batchEvent(batch);
      if (event->terminal && batch.ended_event == 0) batch.ended_event = event->id;
      if (event->terminal && !batch.in_ended) {
        batch.in_ended = true;
        ended_.push_back(record.batch_id);
      }
      batch.last_event = event->id;
      remember(event);
      events.push_back(event);
    }
    forgetEndedBatches();
  }
  metrics_.events_published += events.size();
  streamer_.publish(std::move(events));
}

void EventHub::snapshot(const Batch& batch, std::vector<EventPtr>& out) {
  for (const JobRecord& job : batch.jobs) out.push_back(jobEvent(batch, job));
  out.push_back(batchEvent(batch));
}

void EventHub::serve(Subscription& subscription) {
  const Topic& topic = subscription.topic;
  const std::optional<std::uint64_t> last = subscription.last_event_id;
  // Every event after `last` is still in the ring: replay those instead of the whole state.
  const bool resumable = last && *last >= replayable_after_ && *last <= last_id_;
  std::vector<EventPtr> first;
  bool ends = false;
  std::lock_guard lock(cache_mutex_);
  if (resumable) {
    const auto from =
        std::upper_bound(ring_.begin(), ring_.end(), *last,
                         [](std::uint64_t id, const EventPtr& e) { return id < e->id; });
    for (auto it = from; it != ring_.end(); ++it) {
      if (topic.covers(**it)) first.push_back(*it);
    }
  }
  switch (topic.kind) {
    case Topic::Kind::kAll: {
      if (resumable) break;
      // Runs still going, and (resuming from too far back) every run that changed since.
      std::vector<const Batch*> shown;
      for (const auto& [id, batch] : batches_) {
        if (!isTerminal(batch.record.status) || (last && batch.last_event > *last)) {
          shown.push_back(&batch);
        }
      }
      std::sort(shown.begin(), shown.end(), [](const Batch* a, const Batch* b) {
        return a->record.started_at < b->record.started_at;
      });
      for (const Batch* batch : shown) snapshot(*batch, first);
      break;
    }
    case Topic::Kind::kBatch: {
      Batch* batch = findBatch(topic.id);
      if (!batch) {
        ends = true;
        break;
      }
      ends = isTerminal(batch->record.status);
      if (resumable) break;
      snapshot(*batch, first);
      if (ends && batch->ended_event == 0) batch->ended_event = first.back()->id;
      break;
    }
    case Topic::Kind::kJob: {
      Batch* batch = findBatchOfJob(topic.id);
      const JobRecord* job = batch ? findJob(batch->jobs, topic.id) : nullptr;
      if (!job) {
        ends = true;
        break;
      }
      ends = isTerminal(job->status);
      if (resumable) break;
      first.push_back(jobEvent(*batch, *job));
      if (ends) batch->jobs_ended.emplace(job->job_id, first.back()->id);
      break;
    }
  }
  streamer_.add(std::move(subscription.connection), std::move(subscription.head), topic,
                std::move(first), ends, std::move(subscription.slot));
}

void EventHub::forgetEndedBatches() {
  while (ended_.size() > kKeepEnded) {
    const auto it = batches_.find(ended_.front());
    ended_.pop_front();
    if (it == batches_.end()) continue;
    for (const JobRecord& job : it->second.jobs) {
      job_batch_.erase(job.job_id);
      attempts_.erase(job.job_id);
    }
    batches_.erase(it);
  }
}

}  // namespace collectord::http
