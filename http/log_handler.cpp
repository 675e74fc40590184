#include "collector_routes.h"
#include "ids.h"
#include "job_log.h"

namespace collectord::http {
namespace {

constexpr std::uint64_t kDefaultLimit = 64 * 1024;
constexpr std::uint64_t kMaxLimit = 1024 * 1024;
constexpr std::uint64_t kMaxTail = 10'000;

// A whole number written in plain digits, at most `max`.
std::optional<std::uint64_t> parseCount(const std::string& text, std::uint64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > max) return std::nullopt;
  return n;
}

Response jobLog(ApiContext& context, const Request& request) {
  const std::string& id = request.params.at("job_id");
  if (!isJobId(id) || !context.store().findJob(id)) return errorResponse(404, "Job not found");

  const std::string* tail = request.queryParam("tail");
  const std::string* offset_param = request.queryParam("offset");
  const std::string* limit_param = request.queryParam("limit");
  if (tail && (offset_param || limit_param)) {
    return errorResponse(400, "Use either 'tail' or 'offset'/'limit', not both");
  }
  const std::string path = context.config()->logs_directory + "/" + id + ".log";
  std::optional<LogSlice> slice;
  if (tail) {
    const auto lines = parseCount(*tail, kMaxTail);
    if (!lines) return errorResponse(400, "'tail' must be an integer from 0 to 10000");
    slice = tailJobLog(path, static_cast<std::size_t>(*lines));
  } else {
    std::uint64_t offset = 0, limit = kDefaultLimit;
    if (offset_param) {
      const auto parsed = parseCount(*offset_param, UINT64_MAX / 2);
      if (!parsed) return errorResponse(400, "'offset' must be a non-negative integer");
      offset = *parsed;
    }
    if (limit_param) {
      const auto parsed = parseCount(*limit_param, kMaxLimit);
      if (!parsed || *parsed == 0) return errorResponse(400, "'limit' must be an integer from 1 to 1048576");
      limit = *parsed;
    }
    slice = readJobLog(path, offset, limit);
  }
  if (!slice) slice = LogSlice{};  // queued, never started: nothing written yet
  Response response{200, slice->text, "text/plain; charset=utf-8", {}};
  response.headers = {{"X-Log-Offset", std::to_string(slice->offset)},
                      {"X-Log-Next-Offset", std::to_string(slice->next_offset)},
                      {"X-Log-Size", std::to_string(slice->size)},
                      {"X-Log-Dropped", std::to_string(slice->dropped)}};
  return response;
}

}  // namespace

void addLogRoutes(Router& router, ApiContext& context) {
  router.add("GET", "/api/collectors/runs/job/{job_id}/log", {Access::kRead, true},
             [&context](const Request& r) { return jobLog(context, r); });
}

}  // namespace collectord::http
