#!/bin/sh
# Example exec collector in POSIX sh, using the collectord shell SDK
# (sdk/shell/collector-progress.sh, found relative to this file).
#
# It "verifies" five backup sets (no network, no files touched), reports its progress after
# each, and ends with collector_complete or, when a set fails, with collector_fail. Read it with
# docs/plugin-guide.md ("Shell").
#
# Environment (env.* in etc/collectors.d/shell-example.ini):
#   EXAMPLE_STEP_DELAY  seconds per backup set (default 1; whole numbers are portable)
#   EXAMPLE_FAIL_SET    the name of a set whose check fails, to watch a failed run
#
# Try it by hand, with the progress lines on the terminal as collectord would read them:
#   COLLECTOR_PROGRESS_FD=3 EXAMPLE_STEP_DELAY=0 plugins/examples/shell_collector.sh 3>&1
#
# Exit codes: 0 verified, 1 a set failed or the settings are wrong, 143 stopped by SIGTERM.

script_dir=$(cd "$(dirname "$0")" && pwd) || exit 1
# shellcheck source-path=SCRIPTDIR source=../../sdk/shell/collector-progress.sh
. "$script_dir/../../sdk/shell/collector-progress.sh" || exit 1

step_delay=${EXAMPLE_STEP_DELAY:-1}
sets='db-nightly files-weekly "mail" archive\2025 vm-images'
total=5

case $step_delay in
  '' | *[!0-9.]* | *.*.* | .)
    collector_fail "EXAMPLE_STEP_DELAY must be a number of seconds, not '$step_delay'"
    printf "shell-example: bad EXAMPLE_STEP_DELAY '%s'\n" "$step_delay" >&2
    exit 1 ;;
esac

# collectord stops a run (cancel, timeout) with SIGTERM to the process group, then SIGKILL after
# kill_grace. The signal reaches the whole group, the running sleep too, so the shell runs the
# trap at once: say so in the log and exit.
trap 'echo "shell-example: SIGTERM; stopping"; exit 143' TERM

collector_progress 0 "Verifying $total backup sets"
done_sets=0
for set in $sets; do
  sleep "$step_delay"
  if [ "$set" = "${EXAMPLE_FAIL_SET-}" ]; then
    # Any text is safe in a message: quotes, backslashes, tabs, line breaks, UTF-8.
    collector_fail "backup set $set: checksum mismatch in \"part 3\""
    printf 'shell-example: %s: checksum mismatch\n' "$set" >&2
    exit 1
  fi
  done_sets=$((done_sets + 1))
  printf 'shell-example: %s verified\n' "$set"  # not echo: dash's echo reads backslashes
  collector_progress $((done_sets * 100 / total)) "Verified $set ($done_sets/$total) ✓"
done

collector_complete "All $total backup sets verified"
exit 0
