// /api/docs and /api/docs/NAME.md on the real daemon: the index and its links, documents served
// byte for byte as text/markdown, and nothing else of the file system, whatever the encoding.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "api_checks.h"
#include "daemon_harness.h"

namespace collectord::test {
namespace {

using namespace std::string_literals;

const std::string kSecret = "TOP SECRET: this file is outside the docs directory\n";
const std::string kApiDoc = "# Collector Run Tracking API\n\nPOST /api/collectors/run\n";
// CRLF line endings, UTF-8 beyond ASCII, a title that is not on the first line, no final newline.
const std::string kPromptDoc =
    "<!-- generated -->\r\n# Quick start \xe2\x80\x94 d\xc3\xa9j\xc3\xa0 vu \xf0\x9f\x9a\x80\r\n"
    "\r\n| a | b |\r\n|---|---|\r\n| \xc3\xa9 | \xe2\x82\xac |";
const std::string kNotesDoc = "no title here\n## not a level-one heading\n";
const std::string kLongName = std::string(200, 'n') + ".md";

// A docs folder with three documents and everything that must not be served: a file outside it
// reached through a symlink, a non-.md file, a dotfile, a folder named like a document, a
// document in a subfolder, a name too long and a name with a space.
class Docs : public ::testing::Test {
 protected:
  Docs() {
    namespace fs = std::filesystem;
    writeFile(dir_.file("docs/COLLECTOR_RUN_TRACKING_API.md"), kApiDoc);
    writeFile(dir_.file("docs/DASHBOARD_AI_PROMPT.md"), kPromptDoc);
    writeFile(dir_.file("docs/notes-v2.md"), kNotesDoc);
    writeFile(dir_.file("outside/secret.md"), kSecret);
    writeFile(dir_.file("secret.md"), kSecret);
    fs::create_symlink("../outside/secret.md", dir_.file("docs/escape.md"));
    fs::create_symlink("/etc/passwd", dir_.file("docs/passwd.md"));
    writeFile(dir_.file("docs/secret.txt"), kSecret);
    writeFile(dir_.file("docs/.hidden.md"), kSecret);
    writeFile(dir_.file("docs/sub/inner.md"), kSecret);
    writeFile(dir_.file("docs/bad name.md"), kSecret);
    writeFile(dir_.file("docs/" + kLongName), kSecret);
    fs::create_directories(dir_.file("docs/folder.md"));
    config_.appendToMain("[docs]\ndirectory = docs\n");
    daemon_ = std::make_unique<Daemon>(config_);
  }

  TempDir dir_;
  DaemonConfig config_{dir_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Docs, TheIndexListsTheDocumentsWithTitlesAndLinks) {
  auto index = daemon_->client().get("/api/docs");
  ASSERT_TRUE(IsJsonResponse(index, 200));
  auto documents = objectsOf(*index.object(), "documents");
  ASSERT_EQ(documents.size(), 3u) << index.body;
  const std::vector<std::vector<std::string>> expected = {
      {"COLLECTOR_RUN_TRACKING_API.md", "Collector Run Tracking API"},
      {"DASHBOARD_AI_PROMPT.md", "Quick start \xe2\x80\x94 d\xc3\xa9j\xc3\xa0 vu \xf0\x9f\x9a\x80"},
      {"notes-v2.md", "notes-v2"},  // no "# " heading: the name without .md
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i][0]);
    EXPECT_EQ(jsonOf(*documents[i], "name"), jsonString(expected[i][0]));
    // A CRLF file's title has no trailing carriage return.
    EXPECT_EQ(jsonOf(*documents[i], "title"), jsonString(expected[i][1]));
    EXPECT_EQ(jsonOf(*documents[i], "url"), jsonString("/api/docs/" + expected[i][0]));
    EXPECT_EQ(documents[i]->size(), 3u);
  }
  EXPECT_EQ(index.body.find("TOP SECRET"), std::string::npos);
  for (const char* hidden : {"escape", "passwd", "secret", "hidden", "inner", "bad name", "folder"}) {
    EXPECT_EQ(index.body.find(hidden), std::string::npos) << hidden << " is listed: " << index.body;
  }
}

TEST_F(Docs, EveryLinkOfTheIndexResolves) {
  auto index = daemon_->client().get("/api/docs");
  ASSERT_TRUE(IsJsonResponse(index, 200));
  std::vector<std::string> links;
  for (const auto& document : objectsOf(*index.object(), "documents")) {
    links.push_back(stringField(*document, "url"));
  }
  if (index.object()->has("openapi")) links.push_back(stringField(*index.object(), "openapi"));
  ASSERT_FALSE(links.empty());
  for (const std::string& link : links) {
    auto response = daemon_->client().get(link);
    EXPECT_EQ(response.status, 200) << "the index links to " << link << ": " << response.describe();
  }
}

TEST_F(Docs, DocumentsAreServedAsMarkdownByteForByte) {
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"COLLECTOR_RUN_TRACKING_API.md", kApiDoc},
           {"DASHBOARD_AI_PROMPT.md", kPromptDoc},
           {"notes-v2.md", kNotesDoc}}) {
    auto response = daemon_->client().get("/api/docs/" + name);
    EXPECT_EQ(response.status, 200) << name;
    EXPECT_EQ(response.header("Content-Type"), "text/markdown; charset=utf-8") << name;
    EXPECT_EQ(response.body, text) << name;
    EXPECT_EQ(response.header("Content-Length"), std::to_string(text.size())) << name;
  }
  // Percent-encoding of ordinary characters changes nothing.
  auto encoded = daemon_->client().get("/api/docs/notes%2Dv2%2Emd");
  EXPECT_EQ(encoded.status, 200);
  EXPECT_EQ(encoded.body, kNotesDoc);
}

TEST_F(Docs, NothingOutsideTheDocumentsIsServed) {
  struct Row {
    std::string what;
    std::string target;  // after /api/docs/, sent as is
    int status;
    std::string error;
  };
  // A '/' decoded from %2F splits the path, so those requests match no route at all (the
  // router's "Not found: PATH"); the others reach the documents route and are refused by name
  // or by location ("Document not found: NAME").
  const std::vector<Row> rows = {
      {"..%2F", "..%2Foutside%2Fsecret.md", 404, "Not found: /api/docs/../outside/secret.md"},
      {"lower-case %2e%2e%2f", "%2e%2e%2fsecret.md", 404, "Not found: /api/docs/../secret.md"},
      {"upper-case %2E%2E/", "%2E%2E/secret.md", 404, "Not found: /api/docs/../secret.md"},
      {"deep ..%2F", "..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", 404,
       "Not found: /api/docs/../../../../../etc/passwd"},
      {"double-encoded ..%252f", "..%252fsecret.md", 404, "Document not found: ..%2fsecret.md"},
      {"double-encoded dots", "%252e%252e%252fsecret.md", 404,
       "Document not found: %2e%2e%2fsecret.md"},
      {"absolute path, encoded", "%2Fetc%2Fpasswd", 404, "Not found: /api/docs//etc/passwd"},
      {"absolute path as a .md, encoded", "%2Fetc%2Fpasswd.md", 404,
       "Not found: /api/docs//etc/passwd.md"},
      {"....//", "....//secret.md", 404, "Not found: /api/docs/....//secret.md"},
      {"encoded backslashes", "..%5C..%5Csecret.md", 404, "Document not found: ..\\..\\secret.md"},
      {"raw backslashes", "..\\..\\secret.md", 404, "Document not found: ..\\..\\secret.md"},
      {"NUL before .md", "secret.txt%00.md", 404, "Document not found: secret.txt\0.md"s},
      {"NUL after .md", "escape.md%00", 404, "Document not found: escape.md\0"s},
      {"symlink to a file outside", "escape.md", 404, "Document not found: escape.md"},
      {"symlink to /etc/passwd", "passwd.md", 404, "Document not found: passwd.md"},
      {"not a .md file", "secret.txt", 404, "Document not found: secret.txt"},
      {"a dotfile", ".hidden.md", 404, "Document not found: .hidden.md"},
      {"a folder named .md", "folder.md", 404, "Document not found: folder.md"},
      {"a subfolder", "sub%2Finner.md", 404, "Not found: /api/docs/sub/inner.md"},
      {"a name with a space", "bad%20name.md", 404, "Document not found: bad name.md"},
      {"an over-long name", kLongName, 404, "Document not found: " + kLongName},
      {"only dots", "%2e%2e", 404, "Document not found: .."},
      {"a missing document", "MISSING.md", 404, "Document not found: MISSING.md"},
      // Refused with 400 by the URI parser before any route is looked at: a '%' not followed
      // by two hex digits. The message goes on with Poco's wording, so only its start is fixed.
      {"a truncated escape", "%2e%2e%2", 400, "Malformed request URI: "},
      {"a non-hex escape", "%2e%2e%zzsecret.md", 400, "Malformed request URI: "},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what + ": /api/docs/" + row.target);
    auto response = daemon_->client().get("/api/docs/" + row.target);
    if (row.status == 400) {
      EXPECT_TRUE(IsErrorResponseStartingWith(response, row.status, row.error));
    } else {
      EXPECT_TRUE(IsErrorResponse(response, row.status, row.error));
    }
    EXPECT_EQ(response.body.find("TOP SECRET"), std::string::npos);
    EXPECT_EQ(response.body.find("root:"), std::string::npos);
  }
  // The same requests over a raw socket, in case a client library tidied the path.
  for (const Row& row : rows) {
    RawExchange raw = daemon_->client().raw("GET /api/docs/" + row.target +
                                            " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(raw.response) << row.what << ": " << raw.received;
    EXPECT_EQ(raw.response->status, row.status) << row.what;
    EXPECT_EQ(raw.received.find("TOP SECRET"), std::string::npos) << row.what;
  }
  EXPECT_EQ(daemon_->client().get("/healthz").status, 200);
}

TEST(DocsConfig, AMissingDocsDirectoryServesAnEmptyIndex) {
  TempDir dir;
  DaemonConfig config(dir);
  config.appendToMain("[docs]\ndirectory = no-such-folder\n");
  Daemon daemon(config);
  auto index = daemon.client().get("/api/docs");
  ASSERT_TRUE(IsJsonResponse(index, 200));
  EXPECT_EQ(jsonOf(*index.object(), "documents"), "[]");
  EXPECT_TRUE(IsErrorResponse(daemon.client().get("/api/docs/GUIDE.md"), 404,
                              "Document not found: GUIDE.md"));
}

}  // namespace
}  // namespace collectord::test
