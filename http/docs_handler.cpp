#include <Poco/JSON/Array.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "json_views.h"
#include "service_routes.h"

namespace collectord::http {
namespace {

namespace fs = std::filesystem;

// A document name: letters, digits, '_', '-', '.', ending in ".md", not starting with '.'.
bool isDocumentName(const std::string& name) {
  if (name.size() < 4 || name.size() > 128 || name.front() == '.') return false;
  if (name.compare(name.size() - 3, 3, ".md") != 0) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// The document's real path when it is a regular file inside `root` (after resolving every
// symlink); nullopt otherwise.
std::optional<fs::path> locate(const fs::path& root, const std::string& name) {
  if (!isDocumentName(name)) return std::nullopt;
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path real = fs::canonical(real_root / name, ec);
  if (ec || real.parent_path() != real_root || !fs::is_regular_file(real, ec)) return std::nullopt;
  return real;
}

std::string titleOf(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (line.rfind("# ", 0) == 0) return line.substr(2);
  }
  return file.stem().string();
}

}  // namespace

void addDocsRoutes(Router& router, const std::string& directory, Access access) {
  router.add("GET", "/api/docs", {access, false}, [directory](const Request&) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
      const std::string name = entry.path().filename().string();
      if (locate(directory, name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    Poco::JSON::Array::Ptr documents = new Poco::JSON::Array;
    for (const std::string& name : names) {
      auto doc = orderedObject();
      doc->set("name", name);
      doc->set("title", titleOf(fs::path(directory) / name));
      doc->set("url", "/api/docs/" + name);
      documents->add(doc);
    }
    auto out = orderedObject();
    out->set("documents", documents);
    out->set("openapi", "/api/openapi.json");
    return Response{200, toJson(out), "application/json", {}};
  });
  router.add("GET", "/api/docs/{name}", {access, false}, [directory](const Request& request) {
    const std::string& name = request.params.at("name");
    const auto file = locate(directory, name);
    if (!file) return errorResponse(404, "Document not found: " + name);
    std::ifstream in(*file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return Response{200, text.str(), "text/markdown; charset=utf-8", {}};
  });
}

}  // namespace collectord::http
