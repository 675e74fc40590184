#include <Poco/String.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dashboard_assets.h"
#include "service_routes.h"

namespace collectord::http {
namespace {

// The page loads only its own files and talks only to its own origin: no inline script or
// style, no framing (clickjacking of the cancel buttons), no form posts elsewhere.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
  std::string_view bytes;
  std::string content_type;
  std::string etag;
};

// A strong validator from the bytes (64-bit FNV-1a): it changes with every build that changes
// the file, so "no-cache" costs a 304 and never serves an old page after an upgrade.
std::string etagOf(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  std::ostringstream out;
  out << '"' << std::hex << hash << '"';
  return out.str();
}

// RFC 9110 13.1.2: If-None-Match matches by weak comparison, "*" matches any current file.
bool notModified(const Request& request, const std::string& etag) {
  const std::string* header = request.header("If-None-Match");
  if (!header) return false;
  std::istringstream list(*header);
  std::string tag;
  while (std::getline(list, tag, ',')) {
    tag = Poco::trim(tag);
    if (tag.rfind("W/", 0) == 0) tag.erase(0, 2);
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> pageHeaders() {
  return {{"Content-Security-Policy", kContentSecurityPolicy},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-cache"}};
}

Response serve(const Asset& asset, const Request& request) {
  Response response{200, std::string(asset.bytes), asset.content_type, pageHeaders()};
  response.headers.emplace_back("ETag", asset.etag);
  if (notModified(request, asset.etag)) {
    response.status = 304;
    response.body.clear();
    response.content_type.clear();
  }
  return response;
}

// Relative, so that the page also opens behind a proxy that serves collectord under a prefix.
Response redirectToPage(const std::string& location) {
  Response response{302,
                    "<!doctype html><title>collectord</title><a href=\"" + location +
                        "\">collectord dashboard</a>\n",
                    "text/html; charset=utf-8", pageHeaders()};
  response.headers.emplace_back("Location", location);
  return response;
}

}  // namespace

void addDashboardRoutes(Router& router) {
  const Asset page{dashboard::indexHtml(), "text/html; charset=utf-8",
                   etagOf(dashboard::indexHtml())};
  const std::vector<std::pair<std::string, Asset>> files = {
      {"app.js",
       {dashboard::appJs(), "text/javascript; charset=utf-8", etagOf(dashboard::appJs())}},
      {"app.css", {dashboard::appCss(), "text/css; charset=utf-8", etagOf(dashboard::appCss())}},
      {"favicon.svg", {dashboard::faviconSvg(), "image/svg+xml", etagOf(dashboard::faviconSvg())}},
  };
  router.add("GET", "/", {Access::kPublic, false},
             [](const Request&) { return redirectToPage("dashboard/"); });
  router.add("GET", "/dashboard", {Access::kPublic, false},
             [](const Request&) { return redirectToPage("dashboard/"); });
  router.add("GET", "/dashboard/", {Access::kPublic, false},
             [page](const Request& request) { return serve(page, request); });
  router.add("GET", "/dashboard/{asset}", {Access::kPublic, false},
             [files](const Request& request) {
               const std::string& name = request.params.at("asset");
               for (const auto& [file, asset] : files) {
                 if (file == name) return serve(asset, request);
               }
               return errorResponse(404, "Not found: " + request.path);
             });
}

}  // namespace collectord::http
