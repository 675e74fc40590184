// Fuzzes parseRunRequest, the parser of POST /api/collectors/run bodies, with a fixed set of
// known collectors. Beyond not crashing (or throwing), it checks that:
// - a refusal has a message;
// - an accepted request names at least one collector, each one known and none twice, with one
//   of the three priorities;
// - the same body gives the same answer twice (no hidden state between requests).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "run_request.h"

namespace {

using collectord::Priority;
using collectord::http::RunRequest;
using collectord::http::RunRequestError;

const std::set<std::string>& knownCollectors() {
  static const std::set<std::string> known = {"alpha", "beta", "gamma-1", "db_backup",
                                              "\xc3\xa9t\xc3\xa9"};
  return known;
}

bool isKnown(const std::string& name) { return knownCollectors().count(name) > 0; }

std::string describe(const std::variant<RunRequest, RunRequestError>& result) {
  if (const auto* error = std::get_if<RunRequestError>(&result)) return "error:" + error->message;
  const auto& request = std::get<RunRequest>(result);
  std::string out = "ok:" + std::to_string(static_cast<int>(request.priority));
  for (const std::string& name : request.collectors) out += "," + name;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::variant<RunRequest, RunRequestError> result;
  try {
    result = collectord::http::parseRunRequest(body, isKnown);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parseRunRequest threw: %s\n", e.what());
    FUZZ_CHECK(false, "parseRunRequest never throws");
  }
  if (const auto* error = std::get_if<RunRequestError>(&result)) {
    FUZZ_CHECK(!error->message.empty(), "a refusal says why");
  } else {
    const auto& request = std::get<RunRequest>(result);
    FUZZ_CHECK(!request.collectors.empty(), "an accepted request names a collector");
    std::set<std::string> seen;
    for (const std::string& name : request.collectors) {
      FUZZ_CHECK(isKnown(name), "an accepted request names only known collectors");
      FUZZ_CHECK(seen.insert(name).second, "an accepted request names each collector once");
    }
    FUZZ_CHECK(request.priority == Priority::kHigh || request.priority == Priority::kNormal ||
                   request.priority == Priority::kLow,
               "the priority is one of three");
  }
  FUZZ_CHECK(describe(result) == describe(collectord::http::parseRunRequest(body, isKnown)),
             "the same body gets the same answer");
  return 0;
}
