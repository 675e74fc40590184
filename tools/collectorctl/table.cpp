#include "table.h"

#include <algorithm>

namespace collectorctl {

Table::Table(std::vector<std::string> headers, std::string indent)
    : headers_(std::move(headers)), indent_(std::move(indent)) {}

void Table::add(std::vector<Cell> row) { rows_.push_back(std::move(row)); }

void Table::print(std::ostream& out, const TextStyle& style, std::size_t width) const {
  std::size_t columns = headers_.size();
  for (const auto& row : rows_) columns = std::max(columns, row.size());
  std::vector<std::size_t> widths(columns, 0);
  for (std::size_t c = 0; c < headers_.size(); ++c) widths[c] = displayWidth(headers_[c]);
  for (const auto& row : rows_) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], displayWidth(row[c].text));
    }
  }
  const auto line = [&](const std::vector<Cell>& cells, bool heading) {
    std::string text = indent_;
    std::size_t used = displayWidth(indent_);
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const bool last = c + 1 == cells.size();
      std::string cell = cells[c].text;
      if (last && width > 0) {
        const std::size_t room = width - 1 > used ? width - 1 - used : 0;
        cell = truncateToWidth(cell, room, style);
      }
      const std::string padded = last ? cell : padRight(cell, widths[c]) + "  ";
      used += displayWidth(padded);
      text += style.paint(padded, heading ? Colour::kBold : cells[c].colour);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  if (!headers_.empty()) {
    std::vector<Cell> heading;
    for (const auto& h : headers_) heading.push_back({h});
    line(heading, true);
  }
  for (const auto& row : rows_) line(row, false);
}

}  // namespace collectorctl
