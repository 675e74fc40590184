#!/bin/sh
# Sample exec collector in POSIX sh: "syncs" ThreatLocker alerts in five steps.
#
# Nothing here touches the network. Progress goes as JSON lines to the descriptor named by
# COLLECTOR_PROGRESS_FD (default 3), or to stderr when that descriptor is not open (run by hand).
#
# Environment:
#   THREATLOCKER_STEP_DELAY  seconds to pause per step (default 1; whole numbers are portable,
#                            decimals need a sleep that takes them, as GNU sleep does)
#   THREATLOCKER_FAIL        when set (to anything, even empty), authentication "fails": the
#                            collector reports {"status":"failed","error":"API returned 401"}
#                            and exits 2
#
# Exit codes: 0 synced, 1 bad THREATLOCKER_STEP_DELAY, 2 authentication failed.

progress_fd=${COLLECTOR_PROGRESS_FD:-3}
step_delay=${THREATLOCKER_STEP_DELAY:-1}
steps=5
alerts_per_page="20 20 5"

# Where protocol lines go: the pipe when its descriptor is open, else stderr. The probe runs in
# a subshell so that a bad descriptor cannot end this shell.
case $progress_fd in
  [0-9]) if ! (printf '' >&"$progress_fd") 2>/dev/null; then progress_fd=2; fi ;;
  *) progress_fd=2 ;;
esac

# Prints $1 as the inside of a JSON string: backslash and double quote escaped, tab and carriage
# return as \t and \r, line breaks as \n, and other control characters dropped.
json_escape() {
  tab=$(printf '\t')
  cr=$(printf '\r')
  printf '%s\n' "$1" |
    tr -d '\000-\010\013\014\016-\037' |
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$tab/\\\\t/g" -e "s/$cr/\\\\r/g" |
    awk '{ printf "%s%s", sep, $0; sep = "\\n" }'
}

# emit PROGRESS MESSAGE [STATUS]: one protocol line.
emit() {
  if [ -n "${3:-}" ]; then
    printf '{"status": "%s", "progress": %s, "message": "%s"}\n' \
      "$3" "$1" "$(json_escape "$2")" >&"$progress_fd"
  else
    printf '{"progress": %s, "message": "%s"}\n' "$1" "$(json_escape "$2")" >&"$progress_fd"
  fi
}

# fail ERROR EXIT_CODE: reports the failure, says it in the job log too, and exits.
fail() {
  printf '{"status": "failed", "error": "%s"}\n' "$(json_escape "$1")" >&"$progress_fd"
  echo "threatlocker: $1" >&2
  exit "$2"
}

# percent N: how far along the sync is once N of the $steps steps are done.
percent() {
  echo $(($1 * 100 / steps))
}

case $step_delay in
  '' | *[!0-9.]* | *.*.* | .) fail "THREATLOCKER_STEP_DELAY must be a number of seconds, got '$step_delay'" 1 ;;
esac

emit 0 "Connecting to ThreatLocker portal (simulated)" running
sleep "$step_delay"
if [ -n "${THREATLOCKER_FAIL+set}" ]; then
  fail "API returned 401" 2
fi
done_steps=1
emit "$(percent $done_steps)" 'Authenticated as ENERSYS\svc-collectord'

page=0
total=0
pages=0
for count in $alerts_per_page; do pages=$((pages + 1)); done
for count in $alerts_per_page; do
  sleep "$step_delay"
  page=$((page + 1))
  total=$((total + count))
  done_steps=$((done_steps + 1))
  echo "threatlocker: page $page/$pages: $count alerts"
  emit "$(percent $done_steps)" "Fetched alerts page $page/$pages ($total so far)"
done

sleep "$step_delay"
done_steps=$((done_steps + 1))
echo "threatlocker: synced $total alerts"
emit "$(percent $done_steps)" "Synced $total alerts into \"threatlocker_alerts\"" completed
exit 0
