#pragma once

// Terminal facts and text that is safe and fits on one: whether a stream is a terminal, its
// width, colours, and server text (collector messages) made printable and truncated to a number
// of columns.

#include <cstddef>
#include <string>
#include <string_view>

namespace collectorctl {

// True when `fd` is a terminal.
bool isTerminal(int fd);

// The width of the terminal on `fd` in columns; else $COLUMNS when it is a number; else 80.
int terminalWidth(int fd);

// The height of the terminal on `fd` in lines; else $LINES when it is a number; else 24.
int terminalHeight(int fd);

// Colours of statuses and emphasis on a terminal.
enum class Colour { kNone, kRed, kGreen, kYellow, kBlue, kCyan, kDim, kBold };

// How text is decorated: ANSI colours on or off, Unicode (block bars, an ellipsis) or ASCII.
struct TextStyle {
  bool colour = false;
  bool unicode = false;

  // `text` wrapped in the colour's ANSI sequence and a reset, or `text` as is without colour.
  std::string paint(std::string_view text, Colour colour) const;
  // "…" or "...".
  std::string_view ellipsis() const { return unicode ? "\u2026" : "..."; }
};

// The style for stdout: colour when it is a terminal, $TERM is not "dumb", $NO_COLOR is unset
// and `no_colour_flag` is false; Unicode when the locale's character set is UTF-8.
TextStyle styleFor(int fd, bool no_colour_flag);

// The colour of a run status: green completed, red failed, yellow cancelled, cyan running,
// dim queued.
Colour statusColour(std::string_view status);

// `text` with every control character (C0, DEL, C1: what could move the cursor or reprogram the
// terminal) and every invalid UTF-8 byte replaced by '?', tabs and newlines by a space.
std::string printable(std::string_view text);

// The columns valid UTF-8 `text` takes on a terminal (wide characters count two when the
// locale knows them).
std::size_t displayWidth(std::string_view text);

// `text` (printable, UTF-8) cut to at most `columns` columns, ending with the style's ellipsis
// when something was cut.
std::string truncateToWidth(std::string_view text, std::size_t columns, const TextStyle& style);

// `text` followed by spaces up to `columns` columns (unchanged when already as wide).
std::string padRight(std::string_view text, std::size_t columns);
// Spaces, then `text`, up to `columns` columns.
std::string padLeft(std::string_view text, std::size_t columns);

}  // namespace collectorctl
