#pragma once

// Plain-text tables for people: columns padded to their widest cell, two spaces apart, the
// last column cut to the terminal's width.

#include <ostream>
#include <string>
#include <vector>

#include "terminal.h"

namespace collectorctl {

struct Cell {
  std::string text;  // printable text (see printable())
  Colour colour = Colour::kNone;
};

class Table {
 public:
  // A table with these column headings (none printed when `headers` is empty).
  explicit Table(std::vector<std::string> headers, std::string indent = "");

  void add(std::vector<Cell> row);
  bool empty() const { return rows_.empty(); }

  // Writes the table. With `width` > 0 (a terminal), the last column is cut so that no line
  // is wider than `width` - 1.
  void print(std::ostream& out, const TextStyle& style, std::size_t width) const;

 private:
  std::vector<std::string> headers_;
  std::string indent_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace collectorctl
