#include "terminal.h"

#include <langinfo.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <cwchar>

namespace collectorctl {
namespace {

// One UTF-8 sequence at `text[i]`: its code point and length, or length 0 when it is invalid
// (overlong forms, surrogates and values past U+10FFFF included).
struct Decoded {
  char32_t code_point = 0;
  std::size_t length = 0;
};

Decoded decodeAt(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {lead, 1};
  std::size_t length = 0;
  char32_t cp = 0;
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, minimum = 0x10000;
  } else {
    return {};
  }
  if (i + length > text.size()) return {};
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {cp, length};
}

bool localeIsUtf8() {
  const char* codeset = ::nl_langinfo(CODESET);
  return codeset && (std::strcmp(codeset, "UTF-8") == 0 || std::strcmp(codeset, "utf8") == 0);
}

// Columns of one printable code point: wcwidth's answer when the locale is UTF-8 and knows
// it, else 1 (a terminal that cannot say shows one cell, or a replacement glyph).
std::size_t columnsOf(char32_t cp) {
  if (cp < 0x80) return 1;
  if (!localeIsUtf8()) return 1;
  const int width = ::wcwidth(static_cast<wchar_t>(cp));
  return width < 0 ? 1 : static_cast<std::size_t>(width);
}

}  // namespace

bool isTerminal(int fd) { return ::isatty(fd) == 1; }

namespace {

// A window-size field of the terminal on `fd`, else the environment variable's number, else
// `fallback`.
int windowSize(int fd, unsigned short winsize::*field, const char* variable, int fallback) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.*field > 0) return size.*field;
  if (const char* text = std::getenv(variable)) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value > 0 && value < 10000) return static_cast<int>(value);
  }
  return fallback;
}

}  // namespace

int terminalWidth(int fd) { return windowSize(fd, &winsize::ws_col, "COLUMNS", 80); }

int terminalHeight(int fd) { return windowSize(fd, &winsize::ws_row, "LINES", 24); }

std::string TextStyle::paint(std::string_view text, Colour c) const {
  if (!colour || c == Colour::kNone) return std::string(text);
  const char* code = "";
  switch (c) {
    case Colour::kRed:
      code = "31";
      break;
    case Colour::kGreen:
      code = "32";
      break;
    case Colour::kYellow:
      code = "33";
      break;
    case Colour::kBlue:
      code = "34";
      break;
    case Colour::kCyan:
      code = "36";
      break;
    case Colour::kDim:
      code = "2";
      break;
    case Colour::kBold:
      code = "1";
      break;
    case Colour::kNone:
      break;
  }
  return "\x1b[" + std::string(code) + "m" + std::string(text) + "\x1b[0m";
}

TextStyle styleFor(int fd, bool no_colour_flag) {
  TextStyle style;
  const char* term = std::getenv("TERM");
  const char* no_colour = std::getenv("NO_COLOR");  // https://no-color.org: any non-empty value
  style.colour = !no_colour_flag && isTerminal(fd) && !(term && std::strcmp(term, "dumb") == 0) &&
                 !(no_colour && *no_colour);
  style.unicode = localeIsUtf8();
  return style;
}

Colour statusColour(std::string_view status) {
  if (status == "completed") return Colour::kGreen;
  if (status == "failed") return Colour::kRed;
  if (status == "cancelled") return Colour::kYellow;
  if (status == "running") return Colour::kCyan;
  if (status == "queued") return Colour::kDim;
  return Colour::kNone;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decodeAt(text, i);
    if (d.length == 0) {
      out += '?';
      ++i;
      continue;
    }
    const char32_t cp = d.code_point;
    if (cp == '\t' || cp == '\n' || cp == '\r') {
      out += ' ';
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
      out += '?';
    } else {
      out.append(text.substr(i, d.length));
    }
    i += d.length;
  }
  return out;
}

std::size_t displayWidth(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    const Decoded d = decodeAt(text, i);
    if (d.length == 0) {
      ++width;
      ++i;
      continue;
    }
    width += columnsOf(d.code_point);
    i += d.length;
  }
  return width;
}

std::string truncateToWidth(std::string_view text, std::size_t columns, const TextStyle& style) {
  if (displayWidth(text) <= columns) return std::string(text);
  const std::string_view ellipsis = style.ellipsis();
  const std::size_t ellipsis_width = style.unicode ? 1 : 3;
  if (columns == 0) return "";
  if (columns <= ellipsis_width)
    return style.unicode ? std::string(ellipsis) : std::string(columns, '.');
  const std::size_t room = columns - ellipsis_width;
  std::size_t width = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const Decoded d = decodeAt(text, i);
    const std::size_t length = d.length == 0 ? 1 : d.length;
    const std::size_t w = d.length == 0 ? 1 : columnsOf(d.code_point);
    if (width + w > room) break;
    width += w;
    i += length;
  }
  return std::string(text.substr(0, i)) + std::string(ellipsis);
}

std::string padRight(std::string_view text, std::size_t columns) {
  const std::size_t width = displayWidth(text);
  std::string out(text);
  if (width < columns) out.append(columns - width, ' ');
  return out;
}

std::string padLeft(std::string_view text, std::size_t columns) {
  const std::size_t width = displayWidth(text);
  std::string out;
  if (width < columns) out.append(columns - width, ' ');
  out.append(text);
  return out;
}

}  // namespace collectorctl
