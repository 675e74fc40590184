// mount_usage: an exec collector (type = exec) that reports the space used on each mounted
// filesystem. The table goes to stdout, which collectord keeps in the job's log; progress goes
// through collectord::ProgressReporter to the descriptor in COLLECTOR_PROGRESS_FD, or to stderr
// when run by hand:
//
//   $ ./mount_usage                                          # protocol lines on stderr
//   $ COLLECTOR_PROGRESS_FD=3 ./mount_usage 3>progress.txt   # as collectord runs it
#include <mntent.h>
#include <sys/statvfs.h>

#include <collectord/collector.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Mount {
  std::string point;
  std::string type;
};

// Filesystems that hold data on a device; pseudo filesystems (proc, sysfs, cgroup...) report
// no blocks of their own.
std::vector<Mount> realMounts(std::string& error) {
  std::vector<Mount> mounts;
  FILE* table = ::setmntent("/proc/self/mounts", "r");
  if (table == nullptr) {
    error = std::string("cannot read /proc/self/mounts: ") + std::strerror(errno);
    return mounts;
  }
  mntent entry{};
  char buffer[4096];
  while (::getmntent_r(table, &entry, buffer, sizeof buffer) != nullptr) {
    if (std::strncmp(entry.mnt_fsname, "/dev/", 5) == 0) mounts.push_back({entry.mnt_dir, entry.mnt_type});
  }
  ::endmntent(table);
  return mounts;
}

}  // namespace

int main() {
  collectord::ProgressReporter progress;
  progress.report(0, "Reading the mount table");
  std::string error;
  const std::vector<Mount> mounts = realMounts(error);
  if (!error.empty()) {
    progress.fail(error);
    return 1;
  }

  std::printf("%-32s %-8s %12s %12s %5s\n", "mounted on", "type", "size MiB", "used MiB", "use%");
  int worst = -1;
  std::string worst_point;
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    const Mount& m = mounts[i];
    progress.report(static_cast<int>(i * 100 / mounts.size()), "Checking " + m.point);
    struct statvfs fs {};
    if (::statvfs(m.point.c_str(), &fs) != 0 || fs.f_blocks == 0) {
      std::printf("%-32s %-8s %12s %12s %5s\n", m.point.c_str(), m.type.c_str(), "-", "-", "-");
      continue;
    }
    const std::uint64_t size = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
    const std::uint64_t used = static_cast<std::uint64_t>(fs.f_blocks - fs.f_bfree) * fs.f_frsize;
    // As df: the share of what non-root users can have, which is what runs out.
    const std::uint64_t usable = used + static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    const int percent = usable == 0 ? 0 : static_cast<int>((used * 100 + usable - 1) / usable);
    std::printf("%-32s %-8s %12llu %12llu %4d%%\n", m.point.c_str(), m.type.c_str(),
                static_cast<unsigned long long>(size >> 20),
                static_cast<unsigned long long>(used >> 20), percent);
    if (percent > worst) {
      worst = percent;
      worst_point = m.point;
    }
  }
  std::fflush(stdout);

  if (worst < 0) {
    progress.complete("No disk-backed filesystems mounted");
  } else {
    progress.complete(std::to_string(mounts.size()) + (mounts.size() == 1 ? " filesystem" : " filesystems") + "; fullest: " + worst_point +
                      " at " + std::to_string(worst) + "%");
  }
  return 0;
}
