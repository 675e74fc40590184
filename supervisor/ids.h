#pragma once

#include <mutex>
#include <random>
#include <string>
#include <string_view>

namespace collectord {

// Makes the public IDs: "bc_12345678" for batches, "ni_87654321" for jobs of "ninja".
// Thread-safe. IDs are random, so callers must still handle a (rare) collision on insert.
class IdGenerator {
 public:
  IdGenerator();
  std::string batchId();
  std::string jobId(std::string_view collector);

 private:
  std::string digits();

  std::mutex mutex_;
  std::mt19937_64 rng_;  // guarded by mutex_
};

// The two-character prefix of a collector's job IDs: its first two letters or digits,
// lowercased, padded with 'x'.
std::string jobIdPrefix(std::string_view collector);

bool isBatchId(std::string_view id);
bool isJobId(std::string_view id);

}  // namespace collectord
