#include "ids.h"

#include <cctype>
#include <cstdio>

namespace collectord {
namespace {

bool allDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

IdGenerator::IdGenerator() : rng_(std::random_device{}()) {}

std::string IdGenerator::digits() {
  std::lock_guard lock(mutex_);
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08u", static_cast<unsigned>(rng_() % 100'000'000u));
  return buf;
}

std::string IdGenerator::batchId() { return "bc_" + digits(); }

std::string IdGenerator::jobId(std::string_view collector) {
  return jobIdPrefix(collector) + "_" + digits();
}

std::string jobIdPrefix(std::string_view collector) {
  std::string prefix;
  for (char c : collector) {
    if (prefix.size() == 2) break;
    if (std::isalnum(static_cast<unsigned char>(c))) {
      prefix += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (prefix.size() < 2) prefix += 'x';
  return prefix;
}

bool isBatchId(std::string_view id) {
  return id.size() == 11 && id.substr(0, 3) == "bc_" && allDigits(id.substr(3));
}

bool isJobId(std::string_view id) {
  if (id.size() != 11 || id[2] != '_') return false;
  for (char c : id.substr(0, 2)) {
    if (!std::islower(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)))
      return false;
  }
  return allDigits(id.substr(3));
}

}  // namespace collectord
