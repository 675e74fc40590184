#pragma once

#include <memory>
#include <string>

#include "job_store.h"
#include "unique_fd.h"

namespace Poco::Data {
class SessionPool;
}

namespace collectord {

// JobStore on a SQLite file through Poco::Data, in WAL mode so readers (HTTP threads) never
// wait for the writer (the supervisor thread).
class SqliteJobStore final : public JobStore {
 public:
  // Opens or creates the database at `path` and applies pending migrations. `owner` names
  // this daemon instance in the rows it writes. Holds an exclusive lock on PATH.lock for its
  // lifetime: a second collectord on the same file would resolve the first one's running jobs
  // as left over from a crash. Throws StoreError when the file is locked by another process
  // or cannot be opened or migrated.
  explicit SqliteJobStore(const std::string& path, std::string owner = "");
  ~SqliteJobStore() override;

  bool insertBatch(const BatchRecord& batch, const std::vector<JobRecord>& jobs) override;
  void save(const std::vector<JobRecord>& jobs, const std::vector<BatchRecord>& batches,
            const std::vector<std::pair<std::string, AttemptRecord>>& attempts = {}) override;
  std::vector<AttemptRecord> attemptsOf(const std::string& job_id) override;
  std::optional<BatchRecord> findBatch(const std::string& batch_id) override;
  std::vector<JobRecord> jobsOfBatch(const std::string& batch_id) override;
  std::optional<JobRecord> findJob(const std::string& job_id) override;
  std::optional<JobRecord> latestRun(const std::string& collector) override;
  std::optional<JobRecord> lastFinishedRun(const std::string& collector) override;
  std::vector<JobRecord> history(int limit) override;
  std::vector<JobRecord> activeJobs() override;
  void ping() override;
  std::optional<Micros> lastScheduledRun(const std::string& collector) override;
  void recordScheduledRun(const std::string& collector, Micros at) override;

  // The highest applied migration version.
  int schemaVersion();

 private:
  void migrate();
  std::vector<JobRecord> queryJobs(const std::string& where_and_order, const std::string& arg,
                                   int limit);
  std::optional<JobRecord> firstJob(const std::string& where_and_order, const std::string& arg);

  std::string path_;
  std::string owner_;
  UniqueFd lock_;
  std::unique_ptr<Poco::Data::SessionPool> pool_;
};

}  // namespace collectord
