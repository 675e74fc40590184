#!/usr/bin/env python3
"""Example exec collector in Python, using the collectord SDK (sdk/python).

It "audits" eight sites of a fictitious estate, one step each (no network), reports its progress
after each site, and ends with complete() or, when a site fails, with fail(). Read it with
docs/plugin-guide.md ("Python").

Run it from the repository without installing anything: it puts ../../sdk/python (relative to
this file) on sys.path. With the SDK installed (pip install sdk/python), that line is harmless.

Environment (env.* in etc/collectors.d/python-example.ini):
  EXAMPLE_STEP_DELAY  seconds per site (default 0.5)
  EXAMPLE_FAIL_SITE   the name of a site whose audit fails, to watch a failed run (default none)

Try it by hand, with the progress lines on the terminal as collectord would read them:
  COLLECTOR_PROGRESS_FD=3 EXAMPLE_STEP_DELAY=0 plugins/examples/python_collector.py 3>&1

Exit codes: 0 audited, 1 a site failed or the settings are wrong, 143 stopped by SIGTERM.
"""

import math
import os
import signal
import sys
import time

SDK = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "sdk", "python")
if os.path.isdir(SDK):
    sys.path.insert(0, os.path.normpath(SDK))

import progress_tracker  # noqa: E402  (needs the path above)

SITES = ("Lyon", "Zürich", "Montréal", "Kraków", "São Paulo", "Osaka", "Reykjavík", "Tromsø")

stop_requested = False


def on_sigterm(signum, frame):
    # collectord cancels or times out a run with SIGTERM to the process group, then SIGKILL
    # after the collector's kill_grace: note it and stop at the next safe point.
    global stop_requested
    stop_requested = True


warned = False


def tell(call, *args):
    """Sends one update; a failure to report is logged, never fatal to the collection."""
    global warned
    try:
        call(*args)
    except progress_tracker.ProgressError as error:
        if not warned:
            print(f"python-example: progress not reported: {error}", file=sys.stderr)
            warned = True


def step_delay():
    raw = os.environ.get("EXAMPLE_STEP_DELAY", "0.5")
    try:
        delay = float(raw)
    except ValueError:
        delay = -1.0
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"EXAMPLE_STEP_DELAY must be a number of seconds >= 0, not {raw!r}")
    return delay


def audit(site, delay):
    """The audit of one site: a pause standing in for the real work. Returns a finding count."""
    time.sleep(delay)
    if site == os.environ.get("EXAMPLE_FAIL_SITE"):
        raise RuntimeError(f'site "{site}" answered 503 Service Unavailable')
    return sum(map(ord, site)) % 7


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        delay = step_delay()
    except ValueError as error:
        tell(progress_tracker.fail, str(error))
        print(f"python-example: {error}", file=sys.stderr)
        return 1

    tell(progress_tracker.report, 0, f"Auditing {len(SITES)} sites")
    findings = 0
    for done, site in enumerate(SITES, start=1):
        if stop_requested:
            # The job ends "cancelled" or "timed out" whatever we report: just stop cleanly.
            print(f"python-example: SIGTERM after {done - 1} sites; stopping", flush=True)
            return 128 + signal.SIGTERM
        try:
            found = audit(site, delay)
        except Exception as error:  # one failed site fails the run, with the reason as error
            tell(progress_tracker.fail, error)
            print(f"python-example: {site}: {error}", file=sys.stderr)
            return 1
        findings += found
        print(f"python-example: {site}: {found} findings", flush=True)
        tell(progress_tracker.report, done * 100 // len(SITES), f"Audited {site} ({done}/{len(SITES)})")

    tell(progress_tracker.complete, f"Audited {len(SITES)} sites: {findings} findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
