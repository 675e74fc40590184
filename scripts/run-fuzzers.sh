#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (the `fuzz` preset: clang, ASan + UBSan) and runs each
# one for SECONDS over a copy of its seed corpus, a few at a time.
#
#   scripts/run-fuzzers.sh [SECONDS=60] [--jobs N] [--target NAME]...
#
# --jobs N       targets run at once (default 2: one per core of the CI machine)
# --target NAME  run only this target (repeatable); default: every target in fuzz/
# Environment:   BUILD_DIR (default build/fuzz), BUILD_JOBS (ninja -j, default 2),
#                RSS_LIMIT_MB (default 2048), UNIT_TIMEOUT (seconds per input, default 10)
#
# Prints one line per target (executions, coverage, result) and exits non-zero when any target
# crashed, leaked, ran out of memory or timed out; the input that did it is kept under
# BUILD_DIR/artifacts/ and its path printed. The repository's corpus is never written to: what
# the fuzzer finds goes to BUILD_DIR/corpus-run/, which each run starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
jobs=2
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --jobs=*) jobs="${1#--jobs=}"; shift ;;
    --target) targets+=("$2"); shift 2 ;;
    --target=*) targets+=("${1#--target=}"); shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    [0-9]*) seconds="$1"; shift ;;
    *) echo "run-fuzzers: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

build_dir="${BUILD_DIR:-build/fuzz}"
build_jobs="${BUILD_JOBS:-2}"
rss_limit="${RSS_LIMIT_MB:-2048}"
unit_timeout="${UNIT_TIMEOUT:-10}"
if [ ${#targets[@]} -eq 0 ]; then
  for dir in fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

echo "run-fuzzers: building ${targets[*]} in $build_dir"
mkdir -p "$build_dir"
cmake --preset fuzz -B "$build_dir" >"$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log"; exit 1; }
ninja -C "$build_dir" -j "$build_jobs" "${targets[@]}" >/dev/null ||
  { ninja -C "$build_dir" -j 1 "${targets[@]}"; exit 1; }

logs="$build_dir/fuzz-logs"
artifacts="$build_dir/artifacts"
runs="$build_dir/corpus-run"
mkdir -p "$logs" "$artifacts"
rm -rf "$runs"

# Leaks count as failures; a UBSan report already aborts (-fno-sanitize-recover=all).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

run_one() {
  local target="$1" corpus="$runs/$1"
  mkdir -p "$corpus"
  cp -r "fuzz/corpus/$target/." "$corpus/"
  local dict=()
  if [ -f "fuzz/$target.dict" ]; then dict=(-dict="fuzz/$target.dict"); fi
  local rc=0
  "$build_dir/bin/$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" \
    -rss_limit_mb="$rss_limit" -timeout="$unit_timeout" -print_final_stats=1 \
    -artifact_prefix="$artifacts/$target-" >"$logs/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$logs/$target.rc"
}

# At most $jobs targets at once.
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  rc="$(cat "$logs/$target.rc")"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')"
  artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
  result="ok"
  if [ "$rc" != 0 ] || [ -n "$artifact" ]; then
    failed=1
    case "$(basename "${artifact:-none}")" in
      "$target-leak-"*) result="LEAK" ;;
      "$target-timeout-"*) result="TIMEOUT" ;;
      "$target-oom-"*) result="OUT OF MEMORY" ;;
      "$target-crash-"*) result="CRASH" ;;
      *) result="FAILED (exit $rc)" ;;
    esac
    if grep -q "invariant violated" "$log"; then
      result="$result: $(grep -m1 -o 'invariant violated: [^(]*' "$log")"
    fi
  fi
  printf '%-20s execs=%-10s cov=%-6s %s\n' "$target" "${execs:-?}" "${cov:-?}" "$result"
  if [ -n "$artifact" ]; then
    echo "    artifact: $artifact"
    echo "    reproduce: $build_dir/bin/$target $artifact"
    echo "    log: $log"
  fi
done
exit "$failed"
