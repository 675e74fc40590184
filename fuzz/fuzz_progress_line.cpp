// Fuzzes parseProgressLine, the reader of every line a collector writes to its pipe and of every
// PUT /api/collectors/runs/job/{id} body. Beyond not crashing, it checks that:
// - a rejection has a reason, and a line over kMaxProtocolLine is always rejected;
// - an accepted update has progress in 0..100, only when "progress" was given, and strings
//   that are valid UTF-8 (they go to SQLite and into JSON responses as they are);
// - an accepted update, written back as JSON, parses to the same update (round trip);
// - what it accepts is valid JSON for an independent parser (Poco's), with the same values.
#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "progress_update.h"

namespace {

using collectord::ParsedLine;
using collectord::ProgressUpdate;
using collectord::ProtocolError;
using collectord::ReportedStatus;

// RFC 3629, written independently of the parser's own check.
bool isValidUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string quoted(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";  // the short forms keep the text no longer than the line it came from
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* statusName(ReportedStatus s) {
  switch (s) {
    case ReportedStatus::kRunning:
      return "running";
    case ReportedStatus::kCompleted:
      return "completed";
    case ReportedStatus::kFailed:
      return "failed";
  }
  return "?";
}

std::string toJson(const ProgressUpdate& u) {
  std::string out = "{";
  auto field = [&out](const char* key, const std::string& value) {
    if (out.size() > 1) out += ',';
    out += '"';
    out += key;
    out += "\":" + value;
  };
  if (u.has_progress) field("progress", u.progress ? std::to_string(*u.progress) : "null");
  if (u.message) field("message", quoted(*u.message));
  if (u.status) field("status", quoted(statusName(*u.status)));
  if (u.error) field("error", quoted(*u.error));
  return out + "}";
}

bool sameUpdate(const ProgressUpdate& a, const ProgressUpdate& b) {
  return a.has_progress == b.has_progress && a.progress == b.progress && a.message == b.message &&
         a.status == b.status && a.error == b.error;
}

// Poco's parser recurses per nesting level; deep inputs are left out of the comparison.
bool shallow(std::string_view text) {
  std::size_t open = 0;
  for (const char c : text) open += (c == '{' || c == '[') ? 1 : 0;
  return open < 100;
}

void compareWithPoco(std::string_view line, const ProgressUpdate& update) {
  if (!shallow(line)) return;
  // Poco's parser cuts keys and strings at an escaped NUL ("message\u0000" reads as
  // "message"); the protocol reader keeps the NUL, so such lines are not compared.
  if (line.find("\\u0000") != std::string_view::npos) return;
  Poco::JSON::Object::Ptr object;
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var parsed = parser.parse(std::string(line));
    FUZZ_CHECK(parsed.type() == typeid(Poco::JSON::Object::Ptr),
               "an accepted line is a JSON object for Poco too");
    object = parsed.extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    // RFC 8259 lets a parser limit the range of numbers: Poco refuses 1e400 ("Not a valid
    // floating-point number") and integers past 64 bits ("Not a valid unsigned integer"), which
    // the protocol reader accepts under an unknown key (and refuses as out of range as progress).
    const std::string why = e.displayText();
    if (why.find("number") != std::string::npos || why.find("integer") != std::string::npos) return;
    std::fprintf(stderr, "Poco refused an accepted line: %s\n", e.displayText().c_str());
    FUZZ_CHECK(false, "an accepted line is valid JSON for Poco too");
  }
  auto string_of = [&object](const char* key) -> std::optional<std::string> {
    if (!object->has(key) || object->isNull(key)) return std::nullopt;
    return object->getValue<std::string>(key);
  };
  FUZZ_CHECK(update.message == string_of("message"), "\"message\" decodes as Poco decodes it");
  FUZZ_CHECK(update.error == string_of("error"), "\"error\" decodes as Poco decodes it");
  if (update.status) {
    FUZZ_CHECK(string_of("status") == std::string(statusName(*update.status)),
               "\"status\" is what Poco reads");
  }
  FUZZ_CHECK(update.has_progress == object->has("progress"), "\"progress\" present for Poco too");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const ParsedLine parsed = collectord::parseProgressLine(line);
  if (const auto* error = std::get_if<ProtocolError>(&parsed)) {
    FUZZ_CHECK(!error->reason.empty(), "a rejection says why");
    return 0;
  }
  FUZZ_CHECK(size <= collectord::kMaxProtocolLine, "over-long lines are rejected");
  const auto& update = std::get<ProgressUpdate>(parsed);
  if (update.progress) {
    FUZZ_CHECK(*update.progress >= 0 && *update.progress <= 100, "progress is within 0..100");
    FUZZ_CHECK(update.has_progress, "a progress value comes from a \"progress\" key");
  }
  if (update.message) FUZZ_CHECK(isValidUtf8(*update.message), "message is valid UTF-8");
  if (update.error) FUZZ_CHECK(isValidUtf8(*update.error), "error is valid UTF-8");

  const std::string again = toJson(update);
  const ParsedLine reparsed = collectord::parseProgressLine(again);
  FUZZ_CHECK(std::holds_alternative<ProgressUpdate>(reparsed), "the update written back parses");
  FUZZ_CHECK(sameUpdate(update, std::get<ProgressUpdate>(reparsed)),
             "the update written back parses to the same update");

  compareWithPoco(line, update);
  return 0;
}
