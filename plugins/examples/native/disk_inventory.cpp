// disk_inventory: a native collector that walks a directory tree and counts its regular files
// and their bytes by extension. One progress step per top-level folder; cancellation is
// checked every few hundred entries; the totals go to the job's message and log, and the whole
// inventory, as JSON, to env.OUTPUT when it is set.
//
// Settings (env.* in the collector file):
//   ROOT    the folder to walk; /usr/share/doc by default, else the folder of this plugin
//   OUTPUT  where to write the JSON report (written whole, then renamed into place)
#include <dlfcn.h>

#include <collectord/collector.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kCancelCheckEvery = 256;  // entries between two looks at cancelled()

struct Tally {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

struct Inventory {
  std::map<std::string, Tally> by_extension;  // ".gz", ".html", "(none)"
  Tally total;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;    // not followed: a link can point anywhere, or in a circle
  std::uint64_t unreadable = 0;  // entries or folders we could not read
};

// The length of the well-formed UTF-8 character at text[i] (1-4), or 0 when there is none
// (stray continuation bytes, overlong forms, surrogates, code points past U+10FFFF).
std::size_t utf8Length(const std::string& text, std::size_t i) {
  const auto at = [&](std::size_t k) {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
  };
  const auto cont = [&](std::size_t k) { return (at(k) & 0xC0u) == 0x80u; };
  const unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if ((c == 0xE0 && at(1) < 0xA0) || (c == 0xED && at(1) >= 0xA0)) return 0;
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if ((c == 0xF0 && at(1) < 0x90) || (c == 0xF4 && at(1) >= 0x90)) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// A JSON string literal of `text`. File names are bytes, not necessarily UTF-8: bytes that do
// not form UTF-8 become U+FFFD so the report stays valid JSON.
std::string jsonString(const std::string& text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = utf8Length(text, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out.append(text, i, len);
    }
    i += len;
  }
  return out + "\"";
}

std::string extensionOf(const fs::path& path) {
  std::string ext = path.extension().string();
  if (ext.empty()) return "(none)";
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

std::string humanBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

// The folder this plugin was loaded from (the fallback ROOT), found through one of its own
// addresses.
fs::path pluginFolder() {
  static const char kHere = 0;
  Dl_info info{};
  if (::dladdr(&kHere, &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  const fs::path path = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path(info.dli_fname).parent_path() : path.parent_path();
}

class DiskInventory : public collectord::Collector {
 public:
  void run(collectord::Context& ctx) override {
    const fs::path root = chooseRoot(ctx);
    const std::string job = ctx.job_id().empty() ? "" : " for job " + std::string(ctx.job_id());
    ctx.log("disk_inventory: walking " + root.string() + job);

    // Files directly under the root count at once; each folder under it is one step.
    std::vector<fs::path> folders;
    std::error_code ec;
    fs::directory_iterator top(root, ec);
    if (ec) throw std::runtime_error("cannot read " + root.string() + ": " + ec.message());
    for (const fs::directory_entry& entry : top) {
      if (entry.is_directory(ec) && !entry.is_symlink(ec)) {
        folders.push_back(entry.path());
        ++inventory_.directories;
      } else {
        count(entry);
      }
    }
    std::sort(folders.begin(), folders.end());

    {
      collectord::Progress steps(ctx, folders.size(), 0, 95);
      for (std::size_t i = 0; i < folders.size(); ++i) {
        stopIfCancelled(ctx);
        steps.next("Scanning " + folders[i].filename().string() + " (" + std::to_string(i + 1) +
                   "/" + std::to_string(folders.size()) + ")");
        walk(ctx, folders[i]);
      }
    }

    const std::string summary = std::to_string(inventory_.total.files) + " files, " +
                                humanBytes(inventory_.total.bytes) + " in " +
                                std::to_string(inventory_.by_extension.size()) +
                                " extensions under " + root.string();
    if (const auto output = ctx.config("OUTPUT"); output && !output->empty()) {
      ctx.progress(95, "Writing " + *output);
      writeReport(ctx, root, *output);
    }
    ctx.log("disk_inventory: " + summary + "; " + std::to_string(inventory_.unreadable) +
            " unreadable, " + std::to_string(inventory_.symlinks) + " symlinks not followed");
    ctx.progress(100, summary);
  }

 private:
  static fs::path chooseRoot(const collectord::Context& ctx) {
    if (const auto root = ctx.config("ROOT"); root && !root->empty()) {
      std::error_code ec;
      if (!fs::is_directory(*root, ec)) throw std::runtime_error("ROOT " + *root + " is not a folder");
      return *root;
    }
    std::error_code ec;
    if (fs::is_directory("/usr/share/doc", ec)) return "/usr/share/doc";
    const fs::path own = pluginFolder();
    if (own.empty()) throw std::runtime_error("no ROOT set, no /usr/share/doc, and no plugin folder");
    return own;
  }

  void stopIfCancelled(const collectord::Context& ctx) const {
    if (!ctx.cancelled()) return;
    ctx.log("disk_inventory: cancelled after " + std::to_string(inventory_.total.files) +
            " files; no report written");
    throw collectord::Cancelled();
  }

  void walk(const collectord::Context& ctx, const fs::path& folder) {
    std::error_code ec;
    fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      ++inventory_.unreadable;
      return;
    }
    int since_check = 0;
    for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
      if (ec) {  // a folder vanished or became unreadable mid-walk: count it and go on
        ++inventory_.unreadable;
        ec.clear();
        continue;
      }
      if (++since_check == kCancelCheckEvery) {
        since_check = 0;
        stopIfCancelled(ctx);
      }
      const fs::directory_entry& entry = *it;
      if (entry.is_symlink(ec)) {
        ++inventory_.symlinks;
      } else if (entry.is_directory(ec)) {
        ++inventory_.directories;
      } else {
        count(entry);
      }
    }
  }

  void count(const fs::directory_entry& entry) {
    std::error_code ec;
    if (entry.is_symlink(ec)) {
      ++inventory_.symlinks;
      return;
    }
    if (!entry.is_regular_file(ec)) return;  // devices, sockets, fifos hold no bytes of their own
    const std::uintmax_t size = entry.file_size(ec);
    if (ec) {
      ++inventory_.unreadable;
      return;
    }
    Tally& tally = inventory_.by_extension[extensionOf(entry.path())];
    ++tally.files;
    tally.bytes += size;
    ++inventory_.total.files;
    inventory_.total.bytes += size;
  }

  void writeReport(const collectord::Context& ctx, const fs::path& root,
                   const std::string& output) const {
    std::vector<std::pair<std::string, Tally>> rows(inventory_.by_extension.begin(),
                                                    inventory_.by_extension.end());
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char generated[32];
    std::tm utc{};
    std::strftime(generated, sizeof generated, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &utc));

    std::string json = "{\n  \"root\": " + jsonString(root.string()) +
                       ",\n  \"job_id\": " + jsonString(std::string(ctx.job_id())) +
                       ",\n  \"generated_at\": \"" + generated + "\"" +
                       ",\n  \"files\": " + std::to_string(inventory_.total.files) +
                       ",\n  \"bytes\": " + std::to_string(inventory_.total.bytes) +
                       ",\n  \"directories\": " + std::to_string(inventory_.directories) +
                       ",\n  \"symlinks\": " + std::to_string(inventory_.symlinks) +
                       ",\n  \"unreadable\": " + std::to_string(inventory_.unreadable) +
                       ",\n  \"extensions\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      json += std::string(i == 0 ? "\n" : ",\n") + "    {\"extension\": " +
              jsonString(rows[i].first) + ", \"files\": " + std::to_string(rows[i].second.files) +
              ", \"bytes\": " + std::to_string(rows[i].second.bytes) + "}";
    }
    json += rows.empty() ? "]\n}\n" : "\n  ]\n}\n";

    // Written beside the target and renamed over it: a reader never sees half a report.
    const std::string partial = output + ".partial";
    {
      std::ofstream out(partial, std::ios::binary | std::ios::trunc);
      if (!(out << json) || !out.flush()) {
        throw std::runtime_error("cannot write " + partial + ": " + std::strerror(errno));
      }
    }
    std::error_code ec;
    fs::rename(partial, output, ec);
    if (ec) throw std::runtime_error("cannot rename " + partial + " to " + output + ": " + ec.message());
  }

  Inventory inventory_;
};

}  // namespace

COLLECTORD_PLUGIN(DiskInventory);
