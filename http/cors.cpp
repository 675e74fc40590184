#include "cors.h"

#include <algorithm>

namespace collectord::http {

bool CorsPolicy::allows(const std::string& origin) const {
  return std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

void CorsPolicy::decorate(const std::string* origin, Response& response) const {
  response.headers.emplace_back("Vary", "Origin");
  if (!origin || !allows(*origin)) return;
  response.headers.emplace_back("Access-Control-Allow-Origin", *origin);
  response.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  response.headers.emplace_back(
      "Access-Control-Expose-Headers",
      "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After");
}

Response CorsPolicy::preflight(const std::string* origin, const std::string& allow) const {
  Response response{204, "", "", {}};
  response.headers.emplace_back("Allow", allow + ", OPTIONS");
  if (origin && allows(*origin)) {
    response.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    response.headers.emplace_back(
        "Access-Control-Allow-Headers",
        "Content-Type, Authorization, X-Requested-With, X-API-Key, Cache-Control, Pragma, "
        "Last-Event-ID");
    response.headers.emplace_back("Access-Control-Max-Age", "86400");
  }
  return response;
}

}  // namespace collectord::http
