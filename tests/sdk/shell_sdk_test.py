#!/usr/bin/env python3
"""Tests the shell SDK (sdk/shell/collector-progress.sh) in the shells and awks of this machine.

Awkward messages (quotes, backslashes, line breaks, tabs, every control character, UTF-8,
invalid UTF-8, empty, very long) go through collector_progress, collector_complete and
collector_fail into a real pipe; each line must be valid UTF-8 and JSON, and give back exactly
the message. Also: percent values, descriptor handling, a reader that has gone, concurrent
writers. With --daemon, the same messages go through a collector run by a real collectord, and
each must show up unchanged in GET /api/collectors/runs/job/{id} (collectord's strict parser).

Shells: dash (required), bash, busybox sh when present. awks: the default awk, and gawk, mawk,
original-awk and busybox awk when present.

Usage: shell_sdk_test.py [--daemon PATH/TO/collectord] [--sdk sdk/shell/collector-progress.sh]

Prints "N passed, M failed" last and exits 1 when anything failed.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))
MAX_LINE = 64 * 1024
ELLIPSIS = "\u2026"

# (argument bytes, expected text or None for "the bytes as UTF-8")
MESSAGES = [
    (b"plain message", None),
    (b"", None),
    (b'He said "hi"', None),
    (b'"', None),
    (b"\\", None),
    (b"back\\slash and trailing backslash\\", None),
    (b'\\"\\\\"', None),
    (b"\\n is not a line break, \\u0041 not an A", None),
    (b"line 1\nline 2", None),
    (b"\n", None),
    (b"\n\n\n", None),
    (b"trailing line break\n", None),
    (b"\nleading line break", None),
    (b"tab\there\t", None),
    (b"\r\n windows \r", None),
    (bytes(range(1, 32)) + b"\x7f", None),
    (b"\x1b[31mred\x1b[0m \x07bell \x08backspace \x0cformfeed \x0bvtab", None),
    ("é ü ß 中文 ✓ 😀 \u2028 \u2029 \ufeff".encode(), None),
    (b"%s %d %% %b \\c", None),
    (b"$HOME `id` $(id) ${x:-y} *", None),
    (b"-n", None),
    (b"-e", None),
    (b"--", None),
    (b"single ' quote", None),
    (b"a" * 10000, None),
    (b"\xff", "\ufffd"),
    (b"latin-1 caf\xe9!", "latin-1 caf\ufffd!"),
    (b"overlong \xc0\x80 slash \xc0\xaf", "overlong \ufffd\ufffd slash \ufffd\ufffd"),
    (b"surrogate \xed\xa0\x80", "surrogate \ufffd\ufffd\ufffd"),
    (b"truncated \xe2\x82", "truncated \ufffd\ufffd"),
    (b"above U+10FFFF \xf4\x90\x80\x80", "above U+10FFFF \ufffd\ufffd\ufffd\ufffd"),
    (b"max \xf4\x8f\xbf\xbf ok", None),
]
# Each longer than one line may be: cut, on a whole character or escape, ending with an ellipsis.
LONG_MESSAGES = [b"a" * 100000, "é".encode() * 40000, b"\x01" * 20000,
                 "😀".encode() * 20000, b"\\" * 40000]


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, what, detail=""):
        if condition:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}\n      {detail}".replace("\n", "\n      ")[:3000])
        return condition


class Run:
    """One script run under `shell`, with the pipe's write end at descriptor `fd`."""

    def __init__(self, shell, script, args=(), fd=3, env=None, awk_dir=None, close_reader=False,
                 timeout=60):
        read_end, write_end = os.pipe()
        base = {"PATH": (awk_dir + ":" if awk_dir else "") + os.environ.get("PATH", "/usr/bin:/bin"),
                "SDK": ARGS.sdk, "LANG": "C.UTF-8"}
        base.update(env or {})
        base = {k: v for k, v in base.items() if v is not None}
        if close_reader:
            os.close(read_end)
        chunks = []
        reader = None
        if not close_reader:
            def read():
                while True:
                    chunk = os.read(read_end, 1 << 16)
                    if not chunk:
                        return
                    chunks.append(chunk)
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
        # bash puts the pipe at the wanted number (dash cannot name descriptors above 9), then
        # becomes the shell under test.
        wrapper = f'exec {fd}>&{write_end}; [ {fd} = {write_end} ] || exec {write_end}>&-; exec "$@"'
        if fd is None:
            wrapper = f'exec {write_end}>&-; exec "$@"'
        try:
            self.process = subprocess.run(
                ["bash", "-c", wrapper, "wrapper", *shell, "-c", script, "script", *args],
                pass_fds=[write_end], env=base, capture_output=True, timeout=timeout)
        finally:
            os.close(write_end)
        if reader:
            reader.join(10)
            os.close(read_end)
        self.output = b"".join(chunks)
        self.lines = self.output.split(b"\n")
        if self.lines and self.lines[-1] == b"":
            self.lines.pop()
        self.stdout = self.process.stdout.decode("utf-8", "replace")
        self.stderr = self.process.stderr.decode("utf-8", "replace")
        self.code = self.process.returncode

    def show(self):
        return (f"exit {self.code}\nstdout: {self.stdout[-1000:]}\nstderr: {self.stderr[-1000:]}\n"
                f"pipe: {self.output[:1500]!r}")


def parse(line):
    """The JSON object of a protocol line, or an error string."""
    try:
        return json.loads(line.decode("utf-8"))  # strict UTF-8 first, then JSON
    except (UnicodeDecodeError, ValueError) as error:
        return f"not a valid line ({error}): {line[:200]!r}"


LOOP = '''. "$SDK" || exit 100
kind=$1
shift
for m in "$@"; do
  case $kind in
    progress) collector_progress 50 "$m" ;;
    complete) collector_complete "$m" ;;
    fail) collector_fail "$m" ;;
  esac || exit $?
done
'''


def check_round_trip(results, shell, awk_dir, label):
    args = [m for m, _ in MESSAGES]
    expected = [e if e is not None else m.decode("utf-8") for m, e in MESSAGES]
    for kind, field, head in (("progress", "message", {"progress": 50}),
                              ("complete", "message", {"status": "completed", "progress": 100}),
                              ("fail", "error", {"status": "failed"})):
        run = Run(shell, LOOP, [kind] + args, awk_dir=awk_dir)
        if not results.check(run.code == 0 and len(run.lines) == len(args),
                             f"{label}: collector_{kind} writes one line per message",
                             f"{len(run.lines)} lines for {len(args)} messages\n{run.show()}"):
            continue
        bad = []
        for (arg, _), want, line in zip(MESSAGES, expected, run.lines):
            got = parse(line)
            if got != dict(head, **{field: want}):
                bad.append(f"{arg[:60]!r} -> {line[:200]!r}")
        results.check(not bad, f"{label}: collector_{kind}: {len(args)} awkward messages "
                      "round-trip exactly", "\n".join(bad))

    run = Run(shell, LOOP, ["fail"] + LONG_MESSAGES, awk_dir=awk_dir)
    bad = []
    for arg, line in zip(LONG_MESSAGES, run.lines):
        got = parse(line)
        if isinstance(got, str):
            bad.append(got)
            continue
        error = got.get("error", "")
        if not (len(line) <= MAX_LINE and len(line) > MAX_LINE - 16 and error.endswith(ELLIPSIS)
                and arg.decode("utf-8").startswith(error[:-1])):
            bad.append(f"{arg[:20]!r}...: a line of {len(line)} bytes: {line[:80]!r}...{line[-40:]!r}")
    results.check(run.code == 0 and len(run.lines) == len(LONG_MESSAGES) and not bad,
                  f"{label}: messages too long for a line are cut to fit, whole characters only",
                  "\n".join(bad) + "\n" + run.show()[:1500])

    # A line of exactly 64 KiB is not cut; one byte more is.
    room = MAX_LINE - len(b'{"progress": 50, "message": ""}')
    run = Run(shell, LOOP, ["progress", b"b" * room, b"b" * (room + 1)], awk_dir=awk_dir)
    ok = len(run.lines) == 2
    if ok:
        first, second = parse(run.lines[0]), parse(run.lines[1])
        ok = (len(run.lines[0]) == MAX_LINE and isinstance(first, dict)
              and first["message"] == "b" * room and isinstance(second, dict)
              and second["message"].endswith(ELLIPSIS) and len(run.lines[1]) <= MAX_LINE)
    results.check(ok, f"{label}: a line of exactly 64 KiB is kept whole, one byte more is cut",
                  run.show()[:500])


def check_percent(results, shell, awk_dir, label):
    good = {"0": 0, "7": 7, "007": 7, "0.5": 0.5, "50": 50, "99.99": 99.99, "100": 100,
            "100.0": 100.0, "100.000": 100.0, "062.9": 62.9, "null": None}
    script = '. "$SDK"; for p in "$@"; do collector_progress "$p" || exit $?; done'
    run = Run(shell, script, list(good), awk_dir=awk_dir)
    got = [parse(line) for line in run.lines]
    want = [{"progress": v} for v in good.values()]
    results.check(run.code == 0 and got == want, f"{label}: percents are written as JSON numbers",
                  f"{got}\n{run.show()}")
    for bad in ("", "-1", "101", "100.5", "1e2", "5.", ".5", "1.2.3", "abc", "50%", " 50",
                "0x10", "１０"):
        run = Run(shell, '. "$SDK"; collector_progress "$1" msg', [bad], awk_dir=awk_dir)
        results.check(run.code == 2 and run.output == b"" and "PERCENT" in run.stderr,
                      f"{label}: percent {bad!r} is refused, nothing written", run.show())


def check_descriptors(results, shell, awk_dir, label):
    line = {"progress": 1, "message": "m"}
    run = Run(shell, '. "$SDK"; collector_progress 1 m', fd=3,
              env={"COLLECTOR_PROGRESS_FD": None}, awk_dir=awk_dir)
    results.check(run.lines and parse(run.lines[0]) == line,
                  f"{label}: without COLLECTOR_PROGRESS_FD it writes to descriptor 3", run.show())
    for fd in (7, 12):
        run = Run(shell, '. "$SDK"; collector_progress 1 m', fd=fd,
                  env={"COLLECTOR_PROGRESS_FD": str(fd)}, awk_dir=awk_dir)
        results.check(run.code == 0 and len(run.lines) == 1 and parse(run.lines[0]) == line,
                      f"{label}: COLLECTOR_PROGRESS_FD={fd}", run.show())
    run = Run(shell, '. "$SDK"; collector_progress 1 m; echo "rc=$?"; echo alive', fd=3,
              env={"COLLECTOR_PROGRESS_FD": "5"}, awk_dir=awk_dir)
    results.check(run.stdout == "rc=2\nalive\n" and "descriptor 5" in run.stderr
                  and run.output == b"",
                  f"{label}: a descriptor that is not open: status 2, a message, the script goes on",
                  run.show())
    run = Run(shell, '. "$SDK"; collector_progress 1 m; echo "rc=$?"', fd=3,
              env={"COLLECTOR_PROGRESS_FD": "three"}, awk_dir=awk_dir)
    results.check(run.stdout == "rc=2\n" and "not a descriptor number" in run.stderr,
                  f"{label}: COLLECTOR_PROGRESS_FD that is not a number", run.show())
    run = Run(shell, '. "$SDK"; collector_progress 1 m; echo "rc=$?"', fd=None,
              env={"COLLECTOR_PROGRESS_FD": None}, awk_dir=awk_dir)
    results.check(run.stdout == "rc=0\n" and parse(run.stderr.rstrip("\n").encode()) == line,
                  f"{label}: by hand (no variable, no descriptor 3) the line goes to stderr",
                  run.show())
    run = Run(shell, 'trap "" PIPE 2>/dev/null; . "$SDK"; collector_progress 1 m; '
              'echo "rc=$?"; echo alive', fd=3, close_reader=True, awk_dir=awk_dir)
    run_default = Run(shell, '. "$SDK"; collector_progress 1 m; echo "rc=$?"; echo alive', fd=3,
                      close_reader=True, awk_dir=awk_dir)
    # Ignoring SIGPIPE, busybox awk does not report the failed write: only survival counts there.
    results.check(run.stdout.endswith("alive\n") and run_default.stdout.endswith("alive\n")
                  and not run_default.stdout.startswith("rc=0"),
                  f"{label}: a reader that has gone fails the call, not the script",
                  run.show() + "\n" + run_default.show())
    run = Run(shell, 'set -eu; . "$SDK"; collector_progress 5; collector_complete; '
              'collector_fail; echo done', awk_dir=awk_dir)
    results.check(run.stdout == "done\n" and [parse(l) for l in run.lines] == [
                  {"progress": 5}, {"status": "completed", "progress": 100},
                  {"status": "failed"}],
                  f"{label}: under set -eu, and without the optional texts", run.show())
    run = Run(shell, '. "$SDK"; collector_progress; a=$?; collector_progress 1 2 3; b=$?; '
              'collector_complete a b; c=$?; collector_fail a b; echo "$a$b$c$?"',
              awk_dir=awk_dir)
    results.check(run.stdout == "2222\n" and run.output == b"" and "usage" in run.stderr,
                  f"{label}: wrong argument counts are refused", run.show())


def check_concurrent_writers(results, shell, awk_dir, label):
    script = '''. "$SDK"
for w in 1 2 3 4; do
  (i=0; while [ $i -lt 150 ]; do
     i=$((i + 1))
     collector_progress $((i % 101)) "writer $w line $i $(printf '%0300d' 0) \\"quoted\\""
   done) &
done
wait
'''
    run = Run(shell, script, awk_dir=awk_dir, timeout=120)
    parsed = [parse(line) for line in run.lines]
    bad = [p for p in parsed if not isinstance(p, dict)]
    results.check(run.code == 0 and len(parsed) == 600 and not bad,
                  f"{label}: 4 processes writing at once never mix their lines",
                  f"{len(parsed)} lines, {len(bad)} broken: {bad[:3]}\n{run.show()[:600]}")


def shells():
    found = [("dash", ["dash"])]
    if shutil.which("bash"):
        found.append(("bash --posix", ["bash", "--posix"]))
    if shutil.which("busybox"):
        found.append(("busybox sh", ["busybox", "sh"]))
    return found


def awks(root):
    """(label, folder to put first on PATH or None) for each awk to try."""
    found = [("default awk", None)]
    for name, command in (("gawk", ["gawk"]), ("mawk", ["mawk"]),
                          ("original-awk", ["original-awk"]), ("busybox awk", ["busybox", "awk"])):
        path = shutil.which(command[0])
        if not path or os.path.realpath(path) == os.path.realpath(shutil.which("awk") or ""):
            continue
        folder = os.path.join(root, name.replace(" ", "-"))
        os.makedirs(folder)
        with open(os.path.join(folder, "awk"), "w") as f:
            f.write(f'#!/bin/sh\nexec {" ".join(command)} "$@"\n')
        os.chmod(os.path.join(folder, "awk"), 0o755)
        found.append((name, folder))
    return found


# --- through a real collectord ------------------------------------------------------------

COLLECTOR = '''#!/bin/sh
# Reports each message file in turn, waiting for the test to read it back before the next.
. "$SDK" || exit 100
n=0
while [ -e "$MESSAGES/$n" ]; do
  m=$(cat "$MESSAGES/$n"; printf .)
  m=${m%.}
  collector_progress $((n % 101)) "$m" || exit 101
  i=0
  while [ ! -e "$MESSAGES/$n.seen" ]; do
    i=$((i + 1))
    [ "$i" -gt 400 ] && exit 102
    sleep 0.05
  done
  n=$((n + 1))
done
collector_complete "all messages sent"
exit 0
'''


def check_through_daemon(results, binary, root):
    folder = os.path.join(root, "daemon")
    messages = os.path.join(folder, "messages")
    os.makedirs(messages)
    os.makedirs(os.path.join(folder, "collectors.d"))
    os.makedirs(os.path.join(folder, "logs"))
    cases = MESSAGES + [(m, None) for m in LONG_MESSAGES[:2]]
    for n, (arg, _) in enumerate(cases):
        with open(os.path.join(messages, str(n)), "wb") as f:
            f.write(arg)
    with open(os.path.join(folder, "collectord.ini"), "w") as f:
        f.write("[http]\naddress = 127.0.0.1\nport = 0\n[store]\nurl = sqlite:collectord.db\n"
                "[collectors]\ndirectory = collectors.d\n[logs]\ndirectory = logs\n"
                "[auth]\nrequired = false\n[ratelimit]\nrequests_per_minute = 1000000\n")
    with open(os.path.join(folder, "collectors.d", "awkward.ini"), "w") as f:
        f.write(f"[collector]\ncommand = ./awkward.sh\nenv.SDK = {ARGS.sdk}\n"
                f"env.MESSAGES = {messages}\nstall_timeout = 30s\n")
    with open(os.path.join(folder, "collectors.d", "awkward.sh"), "w") as f:
        f.write(COLLECTOR)
    os.chmod(os.path.join(folder, "collectors.d", "awkward.sh"), 0o755)
    output = open(os.path.join(folder, "daemon.out"), "ab")
    port_file = os.path.join(folder, "port")
    daemon = subprocess.Popen([binary, "--config=" + os.path.join(folder, "collectord.ini"),
                               "--port-file=" + port_file],
                              stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)

    def log():
        with open(os.path.join(folder, "daemon.out"), errors="replace") as f:
            return f.read()[-3000:]

    def request(method, target, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(method, target, body=body,
                               headers={"Content-Type": "application/json"} if body else {})
            response = connection.getresponse()
            return response.status, json.loads(response.read().decode("utf-8"))
        finally:
            connection.close()

    try:
        deadline = time.monotonic() + 20
        port = None
        while port is None:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"collectord did not start:\n{log()}")
            try:
                with open(port_file) as f:
                    text = f.read()
                port = int(text) if text.endswith("\n") else None
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        status, body = request("POST", "/api/collectors/run", '{"collectors": ["awkward"]}')
        if status != 201:
            raise RuntimeError(f"trigger: {status} {body}")
        job_id = body["collectors"][0]["job_id"]
        target = f"/api/collectors/runs/job/{job_id}"
        bad = []
        for n, (arg, want) in enumerate(cases):
            if want is None:
                want = arg.decode("utf-8")
            deadline = time.monotonic() + 10
            while True:
                status, job = request("GET", target)
                if job.get("progress_percent") == n % 101 and job.get("status") == "running":
                    break
                if job.get("status") != "running" and job.get("status") != "queued" \
                        or time.monotonic() > deadline:
                    raise RuntimeError(f"message {n} never arrived: {json.dumps(job)[:500]}")
                time.sleep(0.02)
            message = job["message"]
            if arg in LONG_MESSAGES:
                fine = message.endswith(ELLIPSIS) and want.startswith(message[:-1])
            else:
                fine = message == want
            if not fine:
                bad.append(f"{arg[:60]!r} -> {message[:100]!r}")
            with open(os.path.join(messages, f"{n}.seen"), "w"):
                pass
        results.check(not bad, f"through collectord: {len(cases)} awkward messages arrive "
                      "unchanged", "\n".join(bad))
        deadline = time.monotonic() + 20
        while True:
            status, job = request("GET", target)
            if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        results.check(job["status"] == "completed" and job["message"] == "all messages sent",
                      "through collectord: the collector completes", json.dumps(job)[:500])
        with open(os.path.join(folder, "logs", job_id + ".log"), errors="replace") as f:
            job_log = f.read()
        results.check("protocol warning" not in job_log,
                      "through collectord: no line was rejected", job_log[-2000:])
    except (RuntimeError, OSError, ValueError, KeyError) as error:
        results.check(False, "through collectord", f"{error}\n{log()}")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        output.close()
        results.check(daemon.returncode == 0, "through collectord: the daemon stops cleanly",
                      f"exit {daemon.returncode}\n{log()}")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", help="the collectord binary (for the end-to-end part)")
    parser.add_argument("--sdk", default=os.path.join(SOURCE_DIR, "sdk", "shell",
                                                      "collector-progress.sh"))
    ARGS = parser.parse_args()
    ARGS.sdk = os.path.abspath(ARGS.sdk)
    results = Results()
    root = tempfile.mkdtemp(prefix="collectord-shell-sdk-")
    try:
        if not shutil.which("dash"):
            results.check(False, "dash is installed", "the shell SDK is written for dash")
        for shell_label, shell in shells():
            for awk_label, awk_dir in awks(root) if shell_label == "dash" else [("default awk", None)]:
                label = f"{shell_label} + {awk_label}"
                try:
                    check_round_trip(results, shell, awk_dir, label)
                    check_percent(results, shell, awk_dir, label)
                    check_descriptors(results, shell, awk_dir, label)
                    check_concurrent_writers(results, shell, awk_dir, label)
                except (OSError, subprocess.SubprocessError) as error:
                    results.check(False, f"{label}: the checks ran", repr(error))
        if ARGS.daemon:
            check_through_daemon(results, ARGS.daemon, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{results.passed} passed, {results.failed} failed")
    return 1 if results.failed or results.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
