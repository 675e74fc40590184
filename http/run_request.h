#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "job.h"

namespace collectord::http {

// A valid body of POST /api/collectors/run.
struct RunRequest {
  std::vector<std::string> collectors;  // non-empty, no duplicates, each one known
  Priority priority = Priority::kNormal;
};

// Why a body was refused: the message of the 400 response.
struct RunRequestError {
  std::string message;
};

// Parses and validates a POST /api/collectors/run body: a JSON object with "collectors" (a
// non-empty list of distinct names for which `is_known` is true) and an optional "priority"
// (high, normal, low). Checks in that order and reports the first failure; unknown names are
// reported before duplicates. Pure: no I/O, never throws, nesting deeper than 32 is refused
// rather than recursed into.
std::variant<RunRequest, RunRequestError> parseRunRequest(
    std::string_view body, const std::function<bool(const std::string&)>& is_known);

}  // namespace collectord::http
