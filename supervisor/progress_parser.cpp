// A strict JSON reader specialised for protocol lines. A general JSON library would build a
// tree of dynamic values for every line; collectors may write hundreds of thousands of lines a
// second, so this reads the flat object in one pass, allocating only for the strings it keeps.
// Nested values under unknown keys are validated and skipped with an explicit stack, never by
// recursion, so no line can exhaust the daemon's stack.
#include <charconv>
#include <cmath>
#include <vector>

#include "progress_update.h"

namespace collectord {
namespace {

class LineReader {
 public:
  explicit LineReader(std::string_view text) : s_(text) {}

  ParsedLine parse() {
    ProgressUpdate update;
    skipSpace();
    if (!consume('{')) return fail("not a JSON object");
    skipSpace();
    if (!consume('}')) {
      for (;;) {
        std::string key;
        skipSpace();
        if (peek() != '"') return fail("expected a quoted key");
        if (!readString(key)) return failed();
        skipSpace();
        if (!consume(':')) return fail("expected ':' after key \"" + key + "\"");
        skipSpace();
        if (!readField(key, update)) return failed();
        skipSpace();
        if (consume(',')) continue;
        if (consume('}')) break;
        return fail("expected ',' or '}'");
      }
    }
    skipSpace();
    if (pos_ != s_.size()) return fail("unexpected text after the JSON object");
    return update;
  }

 private:
  bool readField(const std::string& key, ProgressUpdate& update) {
    if (key == "progress") {
      update.has_progress = true;
      if (readLiteral("null")) {
        update.progress.reset();
        return true;
      }
      double value;
      if (!readNumber(value)) return error("\"progress\" must be a number from 0 to 100 or null");
      if (!(value >= 0 && value <= 100)) {
        return error("\"progress\" is out of range (0-100)");
      }
      update.progress = static_cast<int>(std::floor(value));
      return true;
    }
    if (key == "message" || key == "error") {
      std::optional<std::string>& target = key == "message" ? update.message : update.error;
      if (readLiteral("null")) {
        target.reset();
        return true;
      }
      if (peek() != '"') return error("\"" + key + "\" must be a string");
      std::string value;
      if (!readString(value)) return false;
      target = std::move(value);
      return true;
    }
    if (key == "status") {
      if (peek() != '"') return error("\"status\" must be a string");
      std::string value;
      if (!readString(value)) return false;
      if (value == "running") {
        update.status = ReportedStatus::kRunning;
      } else if (value == "completed") {
        update.status = ReportedStatus::kCompleted;
      } else if (value == "failed") {
        update.status = ReportedStatus::kFailed;
      } else {
        return error("\"status\" must be running, completed or failed, not \"" + value + "\"");
      }
      return true;
    }
    return skipValue();
  }

  // Validates and skips any JSON value, nesting tracked on an explicit stack.
  bool skipValue() {
    std::vector<char> stack;  // the closing bracket each open container expects
    std::string scratch;
    for (;;) {
      skipSpace();
      const char c = peek();
      if (c == '{' || c == '[') {
        ++pos_;
        stack.push_back(c == '{' ? '}' : ']');
        skipSpace();
        if (consume(stack.back())) {
          stack.pop_back();
        } else {
          if (stack.back() == '}' && !readKey(scratch)) return false;
          continue;
        }
      } else if (c == '"') {
        if (!readString(scratch)) return false;
      } else if (!readLiteral("true") && !readLiteral("false") && !readLiteral("null")) {
        double ignored;
        if (!readNumber(ignored)) return error("invalid JSON value");
      }
      // After a value: close containers or move to the next element.
      for (;;) {
        if (stack.empty()) return true;
        skipSpace();
        if (consume(stack.back())) {
          stack.pop_back();
          continue;
        }
        if (!consume(',')) return error("expected ',' or a closing bracket");
        if (stack.back() == '}' && !readKey(scratch)) return false;
        break;
      }
    }
  }

  bool readKey(std::string& key) {
    skipSpace();
    if (peek() != '"') return error("expected a quoted key");
    if (!readString(key)) return false;
    skipSpace();
    if (!consume(':')) return error("expected ':' after key");
    return true;
  }

  bool readNumber(double& value) {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (isDigit(peek())) {
      while (isDigit(peek())) ++pos_;
    } else {
      pos_ = start;
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (!isDigit(peek())) return false;
      while (isDigit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!isDigit(peek())) return false;
      while (isDigit(peek())) ++pos_;
    }
    const auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, value);
    if (ec == std::errc::result_out_of_range) {
      value = HUGE_VAL;  // still a valid JSON number, just far out of any range we accept
      return true;
    }
    return ec == std::errc() && end == s_.data() + pos_;
  }

  bool readLiteral(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Reads a JSON string at pos_ (which is a '"'), decoding escapes, checking UTF-8.
  bool readString(std::string& out) {
    out.clear();
    ++pos_;  // the opening quote
    for (;;) {
      // Plain printable ASCII, most of any message, is copied a run at a time.
      std::size_t run = pos_;
      while (run < s_.size() && isPlain(static_cast<unsigned char>(s_[run]))) ++run;
      out.append(s_.data() + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= s_.size()) return error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        if (!readEscape(out)) return false;
        continue;
      }
      if (c < 0x20) return error("control character in a string");
      const std::size_t len = utf8SequenceLength(pos_);
      if (len == 0) return error("invalid UTF-8");
      out.append(s_.data() + pos_, len);
      pos_ += len;
    }
  }

  bool readEscape(std::string& out) {
    ++pos_;  // the backslash
    if (pos_ >= s_.size()) return error("unterminated string");
    const char e = s_[pos_++];
    switch (e) {
      case '"': out += '"'; return true;
      case '\\': out += '\\'; return true;
      case '/': out += '/'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'u': break;
      default: return error("invalid escape in a string");
    }
    unsigned cp;
    if (!readHex4(cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned low;
      if (s_.substr(pos_, 2) != "\\u") return error("unpaired surrogate in a string");
      pos_ += 2;
      if (!readHex4(low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return error("unpaired surrogate in a string");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return error("unpaired surrogate in a string");
    }
    appendUtf8(out, cp);
    return true;
  }

  bool readHex4(unsigned& cp) {
    if (pos_ + 4 > s_.size()) return error("invalid \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
      else return error("invalid \\u escape");
    }
    return true;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Length of the well-formed UTF-8 sequence at `at` (RFC 3629: no overlongs, no surrogates,
  // nothing above U+10FFFF), or 0 when it is malformed.
  std::size_t utf8SequenceLength(std::size_t at) const {
    auto byte = [&](std::size_t i) -> unsigned {
      return at + i < s_.size() ? static_cast<unsigned char>(s_[at + i]) : 0u;
    };
    auto cont = [&](std::size_t i) { return (byte(i) & 0xC0) == 0x80; };
    const unsigned b0 = byte(0);
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
      const unsigned b1 = byte(1);
      if (b0 == 0xE0 && b1 < 0xA0) return 0;
      if (b0 == 0xED && b1 >= 0xA0) return 0;
      return cont(1) && cont(2) ? 3 : 0;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
      const unsigned b1 = byte(1);
      if (b0 == 0xF0 && b1 < 0x90) return 0;
      if (b0 == 0xF4 && b1 >= 0x90) return 0;
      return cont(1) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
  }

  static bool isDigit(char c) { return c >= '0' && c <= '9'; }
  // A byte a string holds as it is: not a quote, a backslash, a control character or UTF-8.
  static bool isPlain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool consume(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void skipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }

  bool error(std::string reason) {
    if (reason_.empty()) reason_ = std::move(reason);
    return false;
  }
  ParsedLine fail(std::string reason) {
    error(std::move(reason));
    return failed();
  }
  ParsedLine failed() {
    return ProtocolError{reason_.empty() ? "invalid JSON" : reason_ + " at byte " +
                                                               std::to_string(pos_ + 1)};
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string reason_;
};

}  // namespace

ParsedLine parseProgressLine(std::string_view line) {
  if (line.size() > kMaxProtocolLine) {
    return ProtocolError{"line longer than " + std::to_string(kMaxProtocolLine) + " bytes"};
  }
  return LineReader(line).parse();
}

}  // namespace collectord
