#!/usr/bin/env bash
# Runs the test suite under the sanitizers:
#   asan  every test (unit, integration, e2e, SDK) built with AddressSanitizer and
#         UndefinedBehaviorSanitizer; any report fails the test that caused it.
#   tsan  the concurrency-heavy integration suites built with ThreadSanitizer.
# Usage: scripts/run-sanitizers.sh [asan|tsan|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
jobs=${COLLECTORD_BUILD_JOBS:-2}
root=$PWD

# Suites where several threads meet: the supervision thread, HTTP workers, timers, signals.
tsan_suites='^(Supervision[A-Za-z]*|SupervisorTest|RateLimit|CrashRecovery|LoadSoak|Restart|Shutdown|DaemonLifecycle|DiskTrouble|JobStatus|BatchStatus|EventStream|PostgresStore|PostgresDaemon|Cluster)\.'

run_asan() {
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  # halt_on_error: a UBSan report fails the test instead of scrolling by. detect_leaks: the
  # daemon's exit path is checked too.
  # Not the soak (label soak): it asserts throughput and flat memory, which ASan's slowdown
  # (about a third of the plain build's request rate) and its quarantine of freed memory
  # make meaningless. The plain build runs the soak in `make test`.
  (cd build/asan &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$root/scripts/sanitizers/lsan.supp:print_suppressions=0 \
      ctest --output-on-failure --timeout 600 -j2 -LE soak)
}

run_tsan() {
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan -j "$jobs" --target integration_tests collectord collector-host
  (cd build/tsan &&
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/sanitizers/tsan.supp" \
      ctest --output-on-failure --timeout 600 -j2 -R "$tsan_suites")
}

case "$which" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan && run_tsan ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
