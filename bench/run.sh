#!/usr/bin/env bash
# collectord's benchmark suite, the one command: installs the tools (Debian packages), builds
# the release preset, runs every scenario with its same-run baseline, and writes the report.
#
#   bench/run.sh           full suite (about 15 minutes): writes docs/performance.md
#   bench/run.sh --quick   every scenario scaled down (under 2 minutes once built): writes
#                          build/bench-quick.md. Exits non-zero only if a scenario errors,
#                          never because a figure misses its target.
#
# Environment: BENCH_JOBS (parallel build jobs, default 2), BENCH_SOAK_BINARY (the API soak
# test to run as one more scenario; skipped with a note when absent).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$arg' (use --quick)" >&2; exit 64 ;;
  esac
done

# wrk and nginx: the load generator and the static-file baseline; time: /usr/bin/time;
# Flask and gunicorn: the Python peer (bench/peers/).
scripts/install-deps.sh wrk nginx time python3-flask gunicorn

cmake --preset release >/dev/null
cmake --build build/release -j "${BENCH_JOBS:-2}" --target collectord collector-host \
  spawn_baseline progress_writer http_pipeline_bench

# Thousands of live jobs need thousands of descriptors: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
exec /usr/bin/python3 bench/bench.py --build-dir build/release "${quick[@]}"
