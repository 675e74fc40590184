# collector-progress.sh: report a collector's progress to collectord from POSIX sh.
#
# Source it, then call the three functions:
#
#   . /path/to/sdk/shell/collector-progress.sh
#   collector_progress 40 "Fetched alerts page 2/5"   # PERCENT [MESSAGE]
#   collector_complete "Synced 45 alerts"               # [MESSAGE]: status completed, progress 100
#   collector_fail "API returned 401"                   # [ERROR]: status failed
#
# Each call writes one protocol line, a JSON object, to the descriptor in COLLECTOR_PROGRESS_FD
# (3 when unset), which collectord reads:
#
#   {"progress": 40, "message": "Fetched alerts page 2/5"}
#   {"status": "completed", "progress": 100, "message": "Synced 45 alerts"}
#   {"status": "failed", "error": "API returned 401"}
#
# PERCENT is a whole or decimal number from 0 to 100 (collectord rounds decimals down), or
# `null` for not known. MESSAGE and ERROR may hold anything a shell argument can: quotes,
# backslashes, line breaks, tabs and other control characters are escaped for JSON; UTF-8 passes
# through as it is, and bytes that are not UTF-8 become U+FFFD, so collectord never rejects the
# line. Without MESSAGE the job keeps its last message; an empty MESSAGE sets an empty one. A
# text too long for collectord's 64 KiB line is cut and ends with "...".
#
# Run by hand, without COLLECTOR_PROGRESS_FD and with descriptor 3 not open, the lines go to
# stderr so that the script still runs; `3>&1` or `3>progress.txt` shows them as collectord sees
# them. When COLLECTOR_PROGRESS_FD is set, its descriptor must be open for writing.
#
# Each function returns 0 once the line is written, 2 for a bad argument or descriptor (with a
# message on stderr, nothing written), and non-zero when the write itself failed (but a script
# that ignores SIGPIPE may not hear of it: busybox awk does not report it). The line is written
# by a child process (awk), so a progress pipe whose reader has gone cannot kill the script
# with SIGPIPE. A line of up to PIPE_BUF (4096) bytes is written whole in one write(2),
# so lines from several processes of the script never mix. Like any write to a pipe, it waits
# while the pipe is full (collectord reads it continuously).
#
# Needs only sh (dash, bash, busybox ash), printf and awk (mawk, gawk, busybox). All names this
# file defines start with collector_ or _collector_.

# The JSON escaper: reads the text (with a "." appended, so trailing line breaks survive) and
# prints HEAD, then `, "KEY": "TEXT"}` (or just `}` when has_text is 0) and a newline, in one
# printf: some awks (busybox) write every printf at once, so the line is built first. awk runs
# with LC_ALL=C so that it sees bytes, which it checks as UTF-8 itself.
# shellcheck disable=SC2016  # an awk program: its $ are awk's
_collector_awk_program='
function put(unit) {
  if (stop) return
  if (limit >= 0 && used + length(unit) > limit) { stop = 1; return }
  used += length(unit)
  if (!emitting) return
  # Appending to a short piece, and the piece to the line now and then, keeps a long text from
  # being copied once per character.
  piece = piece unit
  if (length(piece) >= 1024) { out = out piece; piece = "" }
}
function escape(s,    i, n, c, b, len, lo, hi, k, ok, next_byte) {
  n = length(s)
  for (i = 1; i <= n && !stop; ) {
    c = substr(s, i, 1)
    b = ord[c]
    if (b < 128) {
      if (c == "\"") put("\\\"")
      else if (c == "\\") put("\\\\")
      else if (b >= 32) put(c)
      else if (b == 8) put("\\b")
      else if (b == 9) put("\\t")
      else if (b == 10) put("\\n")
      else if (b == 12) put("\\f")
      else if (b == 13) put("\\r")
      else put(sprintf("\\u%04x", b))
      i++
      continue
    }
    # RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
    len = 0
    if (b >= 194 && b <= 223) { len = 2; lo = 128; hi = 191 }
    else if (b == 224) { len = 3; lo = 160; hi = 191 }
    else if (b == 237) { len = 3; lo = 128; hi = 159 }
    else if (b >= 225 && b <= 239) { len = 3; lo = 128; hi = 191 }
    else if (b == 240) { len = 4; lo = 144; hi = 191 }
    else if (b >= 241 && b <= 243) { len = 4; lo = 128; hi = 191 }
    else if (b == 244) { len = 4; lo = 128; hi = 143 }
    ok = len > 0 && i + len - 1 <= n
    if (ok) { next_byte = ord[substr(s, i + 1, 1)]; ok = next_byte >= lo && next_byte <= hi }
    for (k = 2; ok && k < len; k++) {
      next_byte = ord[substr(s, i + k, 1)]
      ok = next_byte >= 128 && next_byte <= 191
    }
    if (ok) { put(substr(s, i, len)); i += len }
    else { put("\357\277\275"); i++ }
  }
}
function text(    r) {
  for (r = 1; r <= NR && !stop; r++) {
    if (r > 1) put("\\n")
    escape(line[r])
  }
}
BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i }
{ line[NR] = $0 }
END {
  if (!has_text) { printf "%s}\n", head; exit }
  line[NR] = substr(line[NR], 1, length(line[NR]) - 1)
  open = head ", \"" key "\": \""
  budget = 65536 - length(open) - 2
  emitting = 0; limit = -1; used = 0; stop = 0
  text()
  emitting = 1; limit = used <= budget ? -1 : budget - 3; used = 0; stop = 0
  out = open; piece = ""
  text()
  out = out piece
  if (stop) out = out "\342\200\246"
  printf "%s\"}\n", out
}'

# _collector_send HEAD [KEY TEXT]: writes HEAD (a JSON object without its closing brace), with
# KEY set to TEXT when given, to the progress descriptor.
_collector_send() {
  if [ -n "${COLLECTOR_PROGRESS_FD-}" ]; then
    _collector_fd=$COLLECTOR_PROGRESS_FD
  else
    _collector_fd=3
    # By hand: no collectord, so no descriptor 3 unless the person opened one.
    if ! { true >&3; } 2>/dev/null; then _collector_fd=2; fi
  fi
  case $_collector_fd in
    '' | *[!0-9]*)
      printf '%s\n' "collector-progress: COLLECTOR_PROGRESS_FD='$_collector_fd' is not a descriptor number" >&2
      return 2 ;;
  esac
  _collector_has_text=0
  [ $# -ge 3 ] && _collector_has_text=1
  if [ ${#_collector_fd} -eq 1 ]; then
    if ! { true >&"$_collector_fd"; } 2>/dev/null; then
      printf '%s\n' "collector-progress: descriptor $_collector_fd (COLLECTOR_PROGRESS_FD) is not open; run by hand: $_collector_fd>&1" >&2
      return 2
    fi
    printf '%s.' "${3-}" | LC_ALL=C awk -v head="$1" -v key="${2-}" \
      -v has_text="$_collector_has_text" "$_collector_awk_program" >&"$_collector_fd"
  else
    # dash redirects only descriptors 0-9 by number; a larger one is reached through /dev/fd.
    if [ ! -w "/dev/fd/$_collector_fd" ]; then
      printf '%s\n' "collector-progress: descriptor $_collector_fd (COLLECTOR_PROGRESS_FD) is not open for writing" >&2
      return 2
    fi
    printf '%s.' "${3-}" | LC_ALL=C awk -v head="$1" -v key="${2-}" \
      -v has_text="$_collector_has_text" "$_collector_awk_program" >>"/dev/fd/$_collector_fd"
  fi
}

# collector_progress PERCENT [MESSAGE]: the job's progress_percent (0-100, or null) and message.
collector_progress() {
  if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    printf '%s\n' 'usage: collector_progress PERCENT [MESSAGE]' >&2
    return 2
  fi
  case $1 in
    null) _collector_percent=null ;;
    '' | *[!0-9.]* | .* | *. | *.*.*)
      printf '%s\n' "collector_progress: PERCENT must be a number from 0 to 100 or null, not '$1'" >&2
      return 2 ;;
    *)
      _collector_whole=${1%%.*}
      _collector_fraction=
      case $1 in *.*) _collector_fraction=.${1#*.} ;; esac
      # JSON numbers have no leading zeros: 007 is 7.
      while :; do
        case $_collector_whole in
          0?*) _collector_whole=${_collector_whole#0} ;;
          *) break ;;
        esac
      done
      case $_collector_whole in
        ? | ??) ;;
        100)
          case $_collector_fraction in
            *[1-9]*)
              printf '%s\n' "collector_progress: PERCENT must be from 0 to 100, not '$1'" >&2
              return 2 ;;
          esac ;;
        *)
          printf '%s\n' "collector_progress: PERCENT must be from 0 to 100, not '$1'" >&2
          return 2 ;;
      esac
      _collector_percent=$_collector_whole$_collector_fraction ;;
  esac
  if [ $# -ge 2 ]; then
    _collector_send "{\"progress\": $_collector_percent" message "$2"
  else
    _collector_send "{\"progress\": $_collector_percent"
  fi
}

# collector_complete [MESSAGE]: the work is done. The job ends completed when the script then
# exits 0 (a non-zero exit still fails it).
collector_complete() {
  if [ $# -gt 1 ]; then
    printf '%s\n' 'usage: collector_complete [MESSAGE]' >&2
    return 2
  fi
  if [ $# -ge 1 ]; then
    _collector_send '{"status": "completed", "progress": 100' message "$1"
  else
    _collector_send '{"status": "completed", "progress": 100'
  fi
}

# collector_fail [ERROR]: the run failed. The job ends failed with ERROR (or "collector reported
# failure") when the script exits, whatever its exit code; exit non-zero anyway.
collector_fail() {
  if [ $# -gt 1 ]; then
    printf '%s\n' 'usage: collector_fail [ERROR]' >&2
    return 2
  fi
  if [ $# -ge 1 ]; then
    _collector_send '{"status": "failed"' error "$1"
  else
    _collector_send '{"status": "failed"'
  fi
}
