#!/usr/bin/env python3
"""Sample exec collector: pages through fake NinjaOne devices and reports progress.

Nothing here touches the network. The devices are generated from their index, so every run
returns the same 250 devices. The protocol helpers are written inline on purpose: the Python
SDK comes in a later release, and this file shows that a collector needs nothing but the
standard library to speak the pipe protocol.

Environment:
  COLLECTOR_PROGRESS_FD  descriptor for protocol lines (default 3); when it is not open, as when
                         run by hand, the lines go to stderr instead
  NINJA_PAGE_DELAY       seconds to pause per page, to look like a slow API (default 1.0)
  NINJA_OUTPUT           when set, the collected devices are written there as JSON
  COLLECTOR_JOB_ID, COLLECTOR_BATCH_ID
                         set by collectord; copied into the output file when present
"""

import json
import math
import os
import sys
import time

PAGES = 10
PAGE_SIZE = 25
OPERATING_SYSTEMS = (
    "Windows 11 Pro",
    "Windows 10 Pro",
    "Windows Server 2022",
    "Ubuntu 22.04",
    "macOS 14",
)
ORGANIZATIONS = ("Enersystems HQ", "Enersystems Field", "Enersystems Lab")


class ProgressChannel:
    """Writes one JSON object per line to the collectord progress pipe, or to stderr."""

    def __init__(self):
        self._fd = None
        raw = os.environ.get("COLLECTOR_PROGRESS_FD", "3")
        try:
            fd = int(raw)
            os.fstat(fd)
            self._fd = fd
        except (ValueError, OSError):
            # Run by hand: there is no pipe, so show the protocol lines to the person instead.
            self._fd = None

    def send(self, **fields):
        line = json.dumps(fields, ensure_ascii=False) + "\n"
        if self._fd is None:
            sys.stderr.write(line)
            sys.stderr.flush()
            return
        data = line.encode("utf-8")
        try:
            # One write per line: lines below PIPE_BUF reach the reader whole.
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError as exc:
            # The reader has gone away; the collection itself can still finish.
            sys.stderr.write(f"ninja: progress pipe closed ({exc}); reporting to stderr\n")
            sys.stderr.write(line)
            sys.stderr.flush()
            self._fd = None


def page_delay():
    raw = os.environ.get("NINJA_PAGE_DELAY", "1.0")
    try:
        delay = float(raw)
    except ValueError:
        raise ValueError(f"NINJA_PAGE_DELAY must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"NINJA_PAGE_DELAY must be a number of seconds >= 0, got {raw!r}")
    return delay


def make_device(index):
    """The device at position `index` (0-based); the same index always gives the same device."""
    return {
        "id": 10000 + index,
        "hostname": f"ENS-WS-{index + 1:04d}",
        "organization": ORGANIZATIONS[index % len(ORGANIZATIONS)],
        "os": OPERATING_SYSTEMS[(index * 7) % len(OPERATING_SYSTEMS)],
        "online": (index * 13) % 10 < 8,
        "last_contact": f"2025-10-06T{index % 24:02d}:{(index * 17) % 60:02d}:00Z",
    }


def fetch_page(page, delay):
    """Page `page` (1-based) of the fake device list, after a pause that stands in for the API."""
    time.sleep(delay)
    start = (page - 1) * PAGE_SIZE
    return [make_device(i) for i in range(start, start + PAGE_SIZE)]


def write_output(path, result):
    """Writes `result` to `path` whole or not at all (temp file + rename)."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def collect(progress):
    delay = page_delay()
    progress.send(status="running", progress=0, message="Connecting to NinjaOne API (simulated)")

    devices = []
    for page in range(1, PAGES + 1):
        devices.extend(fetch_page(page, delay))
        progress.send(progress=page * 100 // PAGES, message=f"Processing page {page}/{PAGES}")

    online = sum(1 for d in devices if d["online"])
    by_os = {}
    for device in devices:
        by_os[device["os"]] = by_os.get(device["os"], 0) + 1

    print(f"ninja: collected {len(devices)} devices from {PAGES} pages "
          f"({online} online, {len(devices) - online} offline)")
    for name in sorted(by_os):
        print(f"ninja:   {name}: {by_os[name]}")

    output = os.environ.get("NINJA_OUTPUT")
    if output:
        write_output(output, {
            "collector": "ninja",
            "job_id": os.environ.get("COLLECTOR_JOB_ID"),
            "batch_id": os.environ.get("COLLECTOR_BATCH_ID"),
            "device_count": len(devices),
            "online_count": online,
            "devices": devices,
        })
        print(f"ninja: wrote {output}")
    sys.stdout.flush()

    progress.send(status="completed", progress=100, message="Collection completed")


def main():
    progress = ProgressChannel()
    try:
        collect(progress)
    except Exception as exc:  # report every failure, then let the exit code say so too
        import traceback

        traceback.print_exc()
        progress.send(status="failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
