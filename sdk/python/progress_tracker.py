"""Progress reporting for collectord collectors. Standard library only.

A collector tells collectord how far it has got, and how it ended, with four calls:

    import progress_tracker

    progress_tracker.report(40, "Processing page 4/10")   # percent 0-100 (or None), message
    progress_tracker.complete("Synced 250 devices")        # status completed, progress 100
    progress_tracker.fail("API returned 401")              # status failed, with the error

or with the helper of the collectord API document, for any job ID:

    from api.progress_tracker import update_job_progress
    update_job_progress(job_id, "running", 50, "Processing devices...")

Transport. When the job is the current one (``COLLECTOR_JOB_ID``) and ``COLLECTOR_PROGRESS_FD``
is set, as it is for every process collectord starts, the update is one protocol line on that
descriptor: the pipe collectord reads. Otherwise it is ``PUT /api/collectors/runs/job/{job_id}``
with the same JSON object as its body, sent to ``COLLECTORD_URL``.

Environment:
  COLLECTOR_PROGRESS_FD  the progress pipe's descriptor (set by collectord)
  COLLECTOR_JOB_ID       the current job (set by collectord)
  COLLECTORD_URL         where the API is, default http://127.0.0.1:8080 (a path prefix is kept)
  COLLECTORD_API_KEY     sent as X-API-Key; the key needs the ``run`` scope
  COLLECTORD_TOKEN       a JWT sent as ``Authorization: Bearer`` when there is no API key
  COLLECTORD_TIMEOUT     seconds an update may take, pipe or HTTP (default 10)

Never blocking forever. collectord reads the pipe continuously, but a daemon that is stopped
(SIGSTOP, a debugger) leaves it full, and a plain write() on a full pipe waits for ever. Each
line is therefore written only once poll() says the pipe has room, in pieces of at most PIPE_BUF
bytes (so a piece never blocks once there is room; a line of at most PIPE_BUF bytes, nearly every
line, is still one atomic write), within COLLECTORD_TIMEOUT seconds. When time runs out the call
raises ProgressError; if part of the line had gone out, the next update starts with a newline so
that collectord drops the fragment (one protocol warning in the job's log) and reads the next
line whole. The descriptor's flags are never changed: the pipe's other writers (a shell script's
child processes) are not affected.

Errors: every failure to deliver an update raises ProgressError (with ``status`` and
``server_message`` when collectord answered with an error); invalid arguments raise
InvalidProgress, a ProgressError that is also a ValueError. Progress is information for
dashboards: a collector usually logs a ProgressError and goes on with its work.

Thread-safe: lines from several threads never interleave on the pipe.
"""

import http.client
import json
import math
import numbers
import os
import re
import select
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import fcntl
except ImportError:  # not a POSIX system: only the HTTP transport can work there
    fcntl = None

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "InvalidProgress",
    "MAX_LINE_BYTES",
    "ProgressError",
    "STATUSES",
    "complete",
    "current_job_id",
    "fail",
    "report",
    "update_job_progress",
]

STATUSES = ("running", "completed", "failed")
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 10.0
# collectord refuses a protocol line (and a PUT body) longer than this, newline excluded.
MAX_LINE_BYTES = 64 * 1024

_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ELLIPSIS = "\u2026"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ProgressError(Exception):
    """A progress update was not delivered.

    ``status`` is the HTTP status when collectord answered with an error (else None),
    ``server_message`` the ``error`` of its JSON answer, ``job_id`` the job concerned.
    """

    def __init__(self, message, status=None, server_message=None, job_id=None):
        super().__init__(message)
        self.status = status
        self.server_message = server_message
        self.job_id = job_id


class InvalidProgress(ProgressError, ValueError):
    """An argument is not something collectord would accept; nothing was sent."""


def current_job_id():
    """The job collectord started this process for (COLLECTOR_JOB_ID), or None."""
    return os.environ.get("COLLECTOR_JOB_ID") or None


def update_job_progress(job_id, status, percent, message):
    """Sets job `job_id`'s status, percentage and message, as the collectord API document shows.

    `status` is "running", "completed" or "failed". `percent` is a number from 0 to 100 (decimals
    are rounded down by collectord) or None: not known, sent as null, except with "failed", where
    None leaves the last percentage in place to show how far the run got. `message` is the
    job's message, or for "failed" its error; None leaves it as it is.

    "completed" and "failed" are the collector's verdict: the job ends when its process exits
    (a failure reported here fails the job whatever the exit code; "completed" followed by a
    non-zero exit still fails it).

    Returns the job as collectord now shows it (a dict) when the update went over HTTP, None
    when it went over the pipe. Raises InvalidProgress for a bad argument, ProgressError when the
    update could not be delivered.
    """
    if not isinstance(job_id, str) or not job_id:
        raise InvalidProgress(f"job_id must be a non-empty string, not {job_id!r}")
    if status not in STATUSES:
        raise InvalidProgress(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    fields = {"status": status}
    if status == "failed":
        if percent is not None:
            fields["progress"] = _percent(percent)
        if message is not None:
            fields["error"] = _text(message, "message")
    else:
        fields["progress"] = None if percent is None else _percent(percent)
        if message is not None:
            fields["message"] = _text(message, "message")
    return _send(job_id, fields)


def report(percent, message=None):
    """Reports the current job's progress: `percent` 0-100, or None for not known (null).

    `message` (a string) says what the collector is doing; None leaves the last one. Returns and
    raises as update_job_progress does; ProgressError too when there is no current job.
    """
    fields = {"progress": None if percent is None else _percent(percent)}
    if message is not None:
        fields["message"] = _text(message, "message")
    return _send(None, fields)


def complete(message=None):
    """Reports that the current job's work is done: status completed, progress 100.

    The job ends `completed` when the process then exits with code 0. Returns and raises as
    report does.
    """
    fields = {"status": "completed", "progress": 100}
    if message is not None:
        fields["message"] = _text(message, "message")
    return _send(None, fields)


def fail(error):
    """Reports that the current job failed with `error` (a string, or an exception).

    The job ends `failed` with this error when the process exits, whatever its exit code. Its
    progress and message stay as last reported, to show how far it got. Returns and raises as
    report does.
    """
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return _send(None, {"status": "failed", "error": _text(error, "error")})


# --- validation and encoding ---------------------------------------------------------------


def _percent(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidProgress(f"percent must be a number from 0 to 100 or None, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise InvalidProgress(f"percent must be from 0 to 100, not {value!r}")
    return int(number) if number.is_integer() else number


def _text(value, what):
    if not isinstance(value, str):
        raise InvalidProgress(f"{what} must be a string, not {type(value).__name__}")
    # A str may hold lone surrogates (os.fsdecode of a bad file name): not encodable as UTF-8,
    # which collectord requires, so they become U+FFFD.
    return _SURROGATE.sub("\ufffd", value)


def _encode(fields):
    """The JSON line for `fields` (UTF-8 bytes, no newline), at most MAX_LINE_BYTES.

    A message or error too long for one line is cut, on a character boundary, and ends with an
    ellipsis: a failure is still reported, with as much of its text as fits.
    """
    def dump(f):
        return json.dumps(f, ensure_ascii=False, allow_nan=False,
                          separators=(", ", ": ")).encode("utf-8")

    line = dump(fields)
    for key in sorted((k for k in ("message", "error") if isinstance(fields.get(k), str)),
                      key=lambda k: -len(fields[k])):
        if len(line) <= MAX_LINE_BYTES:
            break
        text = fields[key]
        low, high = 0, len(text)  # the most characters to keep: low fits, high + 1 does not
        while low < high:
            middle = (low + high + 1) // 2
            if len(dump(dict(fields, **{key: text[:middle] + _ELLIPSIS}))) <= MAX_LINE_BYTES:
                low = middle
            else:
                high = middle - 1
        fields = dict(fields, **{key: text[:low] + _ELLIPSIS})
        line = dump(fields)
    return line


def _timeout():
    raw = os.environ.get("COLLECTORD_TIMEOUT", "")
    if not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ProgressError(f"COLLECTORD_TIMEOUT={raw!r} is not a number of seconds above 0")
    return value


# --- transport -----------------------------------------------------------------------------


def _send(job_id, fields):
    """Sends `fields` for `job_id` (None: the current job) over the pipe or HTTP."""
    line = _encode(fields)
    current = current_job_id()
    fd = _pipe_fd()
    if fd is not None and (job_id is None or job_id == current):
        _pipe_write(fd, line + b"\n", _timeout())
        return None
    if job_id is None:
        job_id = current
        if job_id is None:
            raise ProgressError("no current job: neither COLLECTOR_PROGRESS_FD nor "
                                "COLLECTOR_JOB_ID is set (collectord sets both; to try a "
                                "collector by hand, run it with COLLECTOR_PROGRESS_FD=3 3>&1)")
    return _http_put(job_id, line, _timeout())


def _pipe_fd():
    raw = os.environ.get("COLLECTOR_PROGRESS_FD", "")
    if not raw.strip():
        return None
    try:
        fd = int(raw)
    except ValueError:
        fd = -1
    if fd < 0:
        raise ProgressError(f"COLLECTOR_PROGRESS_FD={raw!r} is not a descriptor number")
    return fd


_pipe_lock = threading.Lock()
# The pipes (device, inode) where a line was cut short by a timeout: guarded by _pipe_lock.
# Keyed by the pipe, not the descriptor number, which a closed descriptor leaves to be reused.
_torn = set()


def _pipe_write(fd, data, timeout):
    with _pipe_lock:
        pipe = _check_writable(fd)
        if pipe in _torn:
            data = b"\n" + data  # ends the fragment, which collectord then drops
        deadline = time.monotonic() + timeout
        sent = 0
        while sent < len(data):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if sent:
                    _torn.add(pipe)
                raise ProgressError(
                    f"the progress pipe (descriptor {fd}) stayed full for {timeout:g} s: "
                    "collectord is not reading it")
            if not _wait_writable(fd, remaining):
                continue
            try:
                sent += os.write(fd, data[sent:sent + _PIPE_BUF])
            except BlockingIOError:  # the descriptor is non-blocking and the pipe has no room
                time.sleep(0.005)
            except BrokenPipeError:
                if sent:
                    _torn.add(pipe)
                raise ProgressError(f"the progress pipe (descriptor {fd}) is closed: "
                                    "collectord no longer reads it") from None
            except OSError as error:
                if sent:
                    _torn.add(pipe)
                raise ProgressError(f"cannot write to the progress pipe (descriptor {fd}): "
                                    f"{error.strerror or error}") from None
        _torn.discard(pipe)


def _check_writable(fd):
    """The (device, inode) of `fd` once it is known to be open for writing."""
    try:
        status = os.fstat(fd)
    except OSError:
        raise ProgressError(f"COLLECTOR_PROGRESS_FD={fd} is not an open descriptor (run by "
                            f"hand, open it: COLLECTOR_PROGRESS_FD={fd} ... {fd}>&1)") from None
    if fcntl is not None:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        if mode == os.O_RDONLY:
            raise ProgressError(f"COLLECTOR_PROGRESS_FD={fd} is open for reading only")
    return status.st_dev, status.st_ino


def _wait_writable(fd, timeout):
    """True when `fd` can take at least PIPE_BUF bytes without blocking, False on timeout."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        events = poller.poll(max(1, math.ceil(min(timeout, 3600.0) * 1000)))
        if events and events[0][1] & select.POLLNVAL:
            raise ProgressError(f"COLLECTOR_PROGRESS_FD={fd} is not an open descriptor")
        # POLLERR/POLLHUP (the reader has gone): the write that follows says why.
        return bool(events)
    _, writable, _ = select.select([], [fd], [], timeout)
    return bool(writable)


def _http_put(job_id, body, timeout):
    base = (os.environ.get("COLLECTORD_URL") or DEFAULT_URL).rstrip("/")
    url = f"{base}/api/collectors/runs/job/{urllib.parse.quote(job_id, safe='')}"
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "User-Agent": f"collectord-progress-tracker/{__version__}"}
    if os.environ.get("COLLECTORD_API_KEY"):
        headers["X-API-Key"] = os.environ["COLLECTORD_API_KEY"]
    elif os.environ.get("COLLECTORD_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["COLLECTORD_TOKEN"]
    request = urllib.request.Request(url, data=body, headers=headers, method="PUT")
    try:
        with _opener(url).open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raw = _read_quietly(error)
        server_message = _error_text(raw) or error.reason or "no error message"
        raise ProgressError(
            f"collectord refused the progress update for job {job_id}: "
            f"{error.code} {server_message}",
            status=error.code, server_message=server_message, job_id=job_id) from None
    except urllib.error.URLError as error:
        raise ProgressError(f"cannot reach collectord at {base}: {error.reason}",
                            job_id=job_id) from None
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets mid-answer
        raise ProgressError(f"cannot reach collectord at {base}: "
                            f"{error or type(error).__name__}", job_id=job_id) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        raise ProgressError(f"collectord at {base} answered the progress update for job "
                            f"{job_id} with a body that is not JSON", job_id=job_id) from None


def _opener(url):
    # A collector's environment may carry a proxy meant for the outside world; collectord on
    # this machine must not be asked through it.
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in _LOOPBACK or host.startswith("127."):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _read_quietly(response):
    try:
        return response.read()
    except (OSError, http.client.HTTPException):
        return b""
    finally:
        response.close()


def _error_text(raw):
    """The `error` of collectord's JSON error body, or its text when it is not one."""
    try:
        body = json.loads(raw.decode("utf-8"))
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    except ValueError:
        pass
    return raw.decode("utf-8", "replace").strip()[:500]
