#!/usr/bin/env python3
"""Tests the Python SDK (sdk/python): the pipe, and HTTP against a real collectord.

Pipe: real pipes from os.pipe(), the SDK writing to them as a collector does, lines read back and
parsed. HTTP: collectord started from --daemon on port 0 in a temp folder, with API keys
required, collectors that block until the test releases them (so their jobs stay running), a
collector limited to one run at a time (so a second job stays queued), and the example
collectors of plugins/examples. Updates go through the SDK; the job is then read back with GET.

Usage: python_sdk_test.py --daemon PATH/TO/collectord [--sdk sdk/python] [unittest options]

Prints "N passed, M failed" last and exits 1 when anything failed. Set COLLECTORD_KEEP_TEST_DIRS
to keep the temp folder.
"""

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))
START_TIMEOUT = 20.0
WAIT_TIMEOUT = 20.0
RUNNER_KEY = "sdk-runner-key-0123456789abcdef"
READER_KEY = "sdk-reader-key-0123456789abcdef"
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

ARGS = None  # set by main()
progress_tracker = None  # imported by main() from --sdk


@contextlib.contextmanager
def environment(**values):
    """Sets (str) or removes (None) environment variables for the duration of the block."""
    names = ["COLLECTOR_PROGRESS_FD", "COLLECTOR_JOB_ID", "COLLECTORD_URL", "COLLECTORD_API_KEY",
             "COLLECTORD_TOKEN", "COLLECTORD_TIMEOUT"] + list(values)
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            value = values.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Pipe:
    """A real pipe; the SDK writes to `w`, the test reads lines from `r`.

    With drain=True a thread reads all the time, as collectord does, so that a line longer than
    the pipe's capacity can be written; without it the pipe fills up.
    """

    def __init__(self, drain=False):
        self.r, self.w = os.pipe()
        self.buffer = b""
        self.closed = set()
        self.changed = threading.Condition()
        self.drainer = None
        if drain:
            self.drainer = threading.Thread(target=self.drain, daemon=True)
            self.drainer.start()

    def drain(self):
        while True:
            chunk = os.read(self.r, 1 << 16)
            with self.changed:
                if not chunk:
                    self.closed.add("eof")
                self.buffer += chunk
                self.changed.notify_all()
            if not chunk:
                return

    def close(self, *which):
        """Closes the ends named ("r", "w"), or both; each once, so a reused number is safe."""
        for end in which or ("w", "r"):
            if end not in self.closed:
                self.closed.add(end)
                os.close(getattr(self, end))
            if end == "w" and self.drainer:
                self.drainer.join(5)  # sees EOF now that the write end is closed

    def available(self, timeout=0.0):
        ready, _, _ = select.select([self.r], [], [], timeout)
        return bool(ready)

    def read_line(self, timeout=5.0):
        if self.drainer:
            with self.changed:
                if not self.changed.wait_for(lambda: b"\n" in self.buffer, timeout):
                    raise AssertionError(f"no complete line; have {self.buffer[:200]!r}")
                line, self.buffer = self.buffer.split(b"\n", 1)
                return line
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.available(remaining):
                raise AssertionError(f"no complete line on the pipe; have {self.buffer[:200]!r}")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise AssertionError(f"the pipe closed; have {self.buffer[:200]!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_json(self):
        return json.loads(self.read_line().decode("utf-8"))

    def assert_empty(self, test):
        if self.drainer:
            time.sleep(0.05)
            test.assertFalse(self.buffer, "something was written to the pipe")
        else:
            test.assertFalse(self.buffer or self.available(0.05),
                             "something was written to the pipe")


class PipeCase(unittest.TestCase):
    """A pipe in COLLECTOR_PROGRESS_FD, the current job pi_12345678, no reachable HTTP."""

    drain = False

    def setUp(self):
        self.pipe = Pipe(drain=self.drain)
        self.addCleanup(self.pipe.close)
        self.env = environment(COLLECTOR_PROGRESS_FD=str(self.pipe.w),
                               COLLECTOR_JOB_ID="pi_12345678",
                               COLLECTORD_URL="http://127.0.0.1:9")  # nothing must go there
        self.env.__enter__()
        self.addCleanup(self.env.__exit__, None, None, None)


class PipeTest(PipeCase):
    def test_report_writes_one_protocol_line(self):
        self.assertIsNone(progress_tracker.report(50, "Processing devices..."))
        self.assertEqual(self.pipe.read_json(), {"progress": 50, "message": "Processing devices..."})
        self.pipe.assert_empty(self)

    def test_report_without_message_and_with_unknown_percent(self):
        progress_tracker.report(12.5)
        self.assertEqual(self.pipe.read_json(), {"progress": 12.5})
        progress_tracker.report(None, "Waiting for the API")
        self.assertEqual(self.pipe.read_json(), {"progress": None, "message": "Waiting for the API"})

    def test_complete_and_fail(self):
        progress_tracker.complete()
        self.assertEqual(self.pipe.read_json(), {"status": "completed", "progress": 100})
        progress_tracker.complete("Collection completed")
        self.assertEqual(self.pipe.read_json(), {"status": "completed", "progress": 100,
                                                 "message": "Collection completed"})
        progress_tracker.fail("API returned 401")
        self.assertEqual(self.pipe.read_json(), {"status": "failed", "error": "API returned 401"})
        progress_tracker.fail(ConnectionError("no route to host"))
        self.assertEqual(self.pipe.read_json(), {"status": "failed",
                                                 "error": "ConnectionError: no route to host"})
        progress_tracker.fail(KeyError())
        self.assertEqual(self.pipe.read_json(), {"status": "failed", "error": "KeyError"})

    def test_update_job_progress_for_the_current_job_uses_the_pipe(self):
        update = progress_tracker.update_job_progress
        self.assertIsNone(update("pi_12345678", "running", 50, "Processing devices..."))
        self.assertEqual(self.pipe.read_json(), {"status": "running", "progress": 50,
                                                 "message": "Processing devices..."})
        update("pi_12345678", "running", None, None)
        self.assertEqual(self.pipe.read_json(), {"status": "running", "progress": None})
        update("pi_12345678", "completed", 100, "Collection completed")
        self.assertEqual(self.pipe.read_json(), {"status": "completed", "progress": 100,
                                                 "message": "Collection completed"})
        # For "failed" the message is the error, and None keeps the last percentage.
        update("pi_12345678", "failed", None, "API returned 401")
        self.assertEqual(self.pipe.read_json(), {"status": "failed", "error": "API returned 401"})
        update("pi_12345678", "failed", 30, None)
        self.assertEqual(self.pipe.read_json(), {"status": "failed", "progress": 30})

    def test_awkward_messages_round_trip(self):
        messages = ["", 'He said "hi"', "back\\slash\\", "line 1\nline 2\n", "\ttab\r\n",
                    "".join(chr(c) for c in range(1, 32)) + "\x7f",
                    "é ü ß 中文 ✓ 😀 \u2028\u2029", "\x00nul", "%s %d {} $HOME `id`",
                    "x" * 5000]
        for message in messages:
            progress_tracker.report(1, message)
            line = self.pipe.read_line()
            line.decode("utf-8")  # strict: raises on anything that is not UTF-8
            self.assertEqual(json.loads(line)["message"], message)

    def test_lone_surrogates_become_replacement_characters(self):
        progress_tracker.report(1, os.fsdecode(b"file-\xff.txt"))
        self.assertEqual(self.pipe.read_json()["message"], "file-\ufffd.txt")

    def test_invalid_arguments_raise_and_send_nothing(self):
        bad_calls = [
            (progress_tracker.report, (-1,)), (progress_tracker.report, (100.01,)),
            (progress_tracker.report, (float("nan"),)), (progress_tracker.report, (float("inf"),)),
            (progress_tracker.report, (True,)), (progress_tracker.report, ("50",)),
            (progress_tracker.report, (50, 7)), (progress_tracker.complete, (b"bytes",)),
            (progress_tracker.fail, (None,)),
            (progress_tracker.update_job_progress, ("pi_12345678", "done", 50, "x")),
            (progress_tracker.update_job_progress, ("pi_12345678", None, 50, "x")),
            (progress_tracker.update_job_progress, ("", "running", 50, "x")),
            (progress_tracker.update_job_progress, (None, "running", 50, "x")),
            (progress_tracker.update_job_progress, ("pi_12345678", "running", 101, "x")),
        ]
        for call, args in bad_calls:
            with self.subTest(call=call.__name__, args=args):
                with self.assertRaises(progress_tracker.InvalidProgress) as caught:
                    call(*args)
                self.assertIsInstance(caught.exception, ValueError)
                self.assertIsInstance(caught.exception, progress_tracker.ProgressError)
        self.pipe.assert_empty(self)

    def test_percent_bounds_and_types_that_are_accepted(self):
        for percent, sent in ((0, 0), (100, 100), (100.0, 100), (62.9, 62.9), (0.0, 0)):
            progress_tracker.report(percent)
            self.assertEqual(self.pipe.read_json(), {"progress": sent})

    def test_a_full_pipe_raises_after_the_timeout_instead_of_blocking(self):
        flags = fcntl.fcntl(self.pipe.w, fcntl.F_GETFL)
        fcntl.fcntl(self.pipe.w, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        filled = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                filled += os.write(self.pipe.w, b"x" * 4096)
        fcntl.fcntl(self.pipe.w, fcntl.F_SETFL, flags)  # blocking again, as collectord gives it
        os.environ["COLLECTORD_TIMEOUT"] = "0.3"
        started = time.monotonic()
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10, "stuck")
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertIn("stayed full", str(caught.exception))
        self.assertEqual(fcntl.fcntl(self.pipe.w, fcntl.F_GETFL), flags, "the fd flags changed")
        drained = 0
        while drained < filled:
            drained += len(os.read(self.pipe.r, 1 << 16))
        progress_tracker.report(20, "unstuck")
        self.assertEqual(self.pipe.read_json(), {"progress": 20, "message": "unstuck"})

    def test_a_line_cut_by_the_timeout_is_ended_before_the_next_one(self):
        try:
            fcntl.fcntl(self.pipe.w, F_SETPIPE_SZ, 4096)  # one page: a long line cannot fit
        except OSError as error:
            self.skipTest(f"cannot shrink the pipe: {error}")
        os.environ["COLLECTORD_TIMEOUT"] = "0.3"
        with self.assertRaises(progress_tracker.ProgressError):
            progress_tracker.report(10, "y" * 20000)
        fragment = b""
        while self.pipe.available(0.05):
            fragment += os.read(self.pipe.r, 1 << 16)
        self.assertTrue(fragment.startswith(b'{"progress": 10') and b"\n" not in fragment,
                        f"expected part of the line, got {fragment[:80]!r}")
        progress_tracker.report(20, "next")
        self.assertEqual(self.pipe.read_line(), b"", "the fragment is ended by a newline")
        self.assertEqual(self.pipe.read_json(), {"progress": 20, "message": "next"})
        progress_tracker.report(30, "after")
        self.assertEqual(self.pipe.read_json(), {"progress": 30, "message": "after"})

    def test_a_closed_reader_raises_progress_error(self):
        self.pipe.close("r")
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10, "nobody listens")
        self.assertIn("closed", str(caught.exception))

    def test_a_descriptor_that_is_not_open_raises_progress_error(self):
        os.environ["COLLECTOR_PROGRESS_FD"] = "987"
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10)
        self.assertIn("COLLECTOR_PROGRESS_FD=987 is not an open descriptor", str(caught.exception))
        os.environ["COLLECTOR_PROGRESS_FD"] = str(self.pipe.r)
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10)
        self.assertIn("reading only", str(caught.exception))
        for raw in ("three", "-1"):
            os.environ["COLLECTOR_PROGRESS_FD"] = raw
            with self.assertRaises(progress_tracker.ProgressError) as caught:
                progress_tracker.report(10)
            self.assertIn("is not a descriptor number", str(caught.exception))

    def test_threads_never_interleave_lines(self):
        lines = []

        def reader():
            data = b""
            while True:
                chunk = os.read(self.pipe.r, 1 << 16)
                if not chunk:
                    break
                data += chunk
            lines.extend(data.split(b"\n")[:-1])

        read_thread = threading.Thread(target=reader)
        read_thread.start()

        def writer(n):
            for i in range(100):
                progress_tracker.report(i % 101, f"thread {n} line {i} " + "z" * (i * 97))

        writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        self.pipe.close("w")
        read_thread.join(10)
        self.assertEqual(len(lines), 800)
        for line in lines:
            self.assertTrue(json.loads(line)["message"].startswith("thread "))

    def test_without_a_pipe_or_a_job_there_is_nothing_to_report_to(self):
        os.environ.pop("COLLECTOR_PROGRESS_FD")
        os.environ.pop("COLLECTOR_JOB_ID")
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10)
        self.assertIn("no current job", str(caught.exception))

    def test_a_bad_timeout_setting_is_named(self):
        os.environ["COLLECTORD_TIMEOUT"] = "soon"
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.report(10)
        self.assertIn("COLLECTORD_TIMEOUT='soon'", str(caught.exception))


class LongLineTest(PipeCase):
    drain = True  # a 64 KiB line is more than an undrained pipe holds

    def test_a_message_too_long_for_a_line_is_cut_to_fit(self):
        for text in ("é" * 50000, "\x01" * 20000, "a" * 70000):
            progress_tracker.fail(text)
            line = self.pipe.read_line()
            self.assertLessEqual(len(line), progress_tracker.MAX_LINE_BYTES)
            self.assertGreater(len(line), progress_tracker.MAX_LINE_BYTES - 16)
            error = json.loads(line)["error"]
            self.assertTrue(error.endswith("\u2026"))
            self.assertTrue(text.startswith(error[:-1]))

    def test_a_message_that_fits_exactly_is_not_cut(self):
        overhead = len(b'{"progress": 1, "message": ""}')
        text = "a" * (progress_tracker.MAX_LINE_BYTES - overhead)
        progress_tracker.report(1, text)
        line = self.pipe.read_line()
        self.assertEqual(len(line), progress_tracker.MAX_LINE_BYTES)
        self.assertEqual(json.loads(line)["message"], text)


class ImportPathTest(unittest.TestCase):
    def test_the_seed_import_path_is_the_same_module(self):
        from api.progress_tracker import update_job_progress  # the API document's line
        import api.progress_tracker as seed
        self.assertIs(update_job_progress, progress_tracker.update_job_progress)
        self.assertIs(seed.ProgressError, progress_tracker.ProgressError)
        for name in progress_tracker.__all__:
            self.assertIs(getattr(seed, name), getattr(progress_tracker, name), name)

    def test_pip_installs_both_import_paths(self):
        if subprocess.run([sys.executable, "-m", "pip", "--version"],
                          capture_output=True).returncode != 0:
            self.skipTest("pip is not installed (Debian: python3-pip)")
        with tempfile.TemporaryDirectory(prefix="collectord-pip-") as root:
            source = os.path.join(root, "src")
            shutil.copytree(ARGS.sdk, source,
                            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            target = os.path.join(root, "site")
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                 "--no-index", "--disable-pip-version-check", "--quiet", "--target", target,
                 source], capture_output=True, text=True, timeout=300)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            check = ("from api.progress_tracker import update_job_progress\n"
                     "import progress_tracker\n"
                     "assert update_job_progress is progress_tracker.update_job_progress\n"
                     "print(progress_tracker.__file__)")
            result = subprocess.run([sys.executable, "-c", check], capture_output=True,
                                    text=True, env=dict(os.environ, PYTHONPATH=target), cwd=root)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertTrue(result.stdout.strip().startswith(target), result.stdout)


# --- the real daemon -----------------------------------------------------------------------

BLOCKER = """#!/bin/sh
# Runs until the test creates $RELEASE_DIR/$COLLECTOR_JOB_ID (at most about a minute).
i=0
while [ ! -e "$RELEASE_DIR/$COLLECTOR_JOB_ID" ]; do
  i=$((i + 1))
  [ "$i" -gt 1200 ] && exit 3
  sleep 0.05
done
exit 0
"""


class Daemon:
    """collectord on port 0 in `folder`, with API keys required."""

    def __init__(self, binary, folder):
        self.folder = folder
        self.release_dir = os.path.join(folder, "release")
        os.makedirs(self.release_dir)
        os.makedirs(os.path.join(folder, "logs"))
        os.makedirs(os.path.join(folder, "collectors.d"))
        write(os.path.join(folder, "collectord.ini"),
              "[http]\naddress = 127.0.0.1\nport = 0\n"
              "[store]\nurl = sqlite:collectord.db\n"
              "[collectors]\ndirectory = collectors.d\n"
              "[logs]\ndirectory = logs\n"
              "[auth]\nrequired = true\napi_keys_file = api_keys\n"
              "[ratelimit]\nrequests_per_minute = 1000000\n")
        write(os.path.join(folder, "api_keys"),
              f"{RUNNER_KEY} read,run runner\n{READER_KEY} read reader\n", 0o600)
        self.add("blocker", f"command = ./blocker.sh\nenv.RELEASE_DIR = {self.release_dir}\n"
                 "concurrency = 8\noverlap = parallel\n", BLOCKER)
        self.add("single", f"command = ./blocker.sh\nenv.RELEASE_DIR = {self.release_dir}\n")
        examples = os.path.join(SOURCE_DIR, "plugins", "examples")
        self.add("pyexample", f"command = {examples}/python_collector.py\n"
                 "env.EXAMPLE_STEP_DELAY = 0\n")
        self.add("shexample", f"command = {examples}/shell_collector.sh\n"
                 "env.EXAMPLE_STEP_DELAY = 0\n")
        self.add("shfail", f"command = {examples}/shell_collector.sh\n"
                 "env.EXAMPLE_STEP_DELAY = 0\nenv.EXAMPLE_FAIL_SET = \"mail\"\n")
        self.output = open(os.path.join(folder, "daemon.out"), "ab")
        port_file = os.path.join(folder, "port")
        self.process = subprocess.Popen(
            [binary, "--config=" + os.path.join(folder, "collectord.ini"),
             "--port-file=" + port_file],
            stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        self.port = None
        while self.port is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"collectord exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"collectord wrote no port file:\n{self.log()}")
            with contextlib.suppress(FileNotFoundError, ValueError):
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def add(self, name, keys, script=None):
        folder = os.path.join(self.folder, "collectors.d")
        write(os.path.join(folder, name + ".ini"), "[collector]\n" + keys)
        if script:
            write(os.path.join(folder, name + ".sh"), script, 0o755)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()
        return self.process.returncode

    def log(self):
        with open(os.path.join(self.folder, "daemon.out"), errors="replace") as f:
            return f.read()[-4000:]

    def request(self, method, target, body=None, key=RUNNER_KEY):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"X-API-Key": key} if key else {}
            if body is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read().decode("utf-8"))
        finally:
            connection.close()

    def trigger(self, name):
        status, body = self.request("POST", "/api/collectors/run",
                                    json.dumps({"collectors": [name]}))
        if status != 201:
            raise AssertionError(f"trigger {name}: {status} {body}")
        return body["collectors"][0]["job_id"]

    def job(self, job_id):
        status, body = self.request("GET", f"/api/collectors/runs/job/{job_id}")
        if status != 200:
            raise AssertionError(f"GET job {job_id}: {status} {body}")
        return body

    def wait_job(self, job_id, done, what):
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            job = self.job(job_id)
            if done(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting: {what}\n{json.dumps(job)}")
            time.sleep(0.05)

    def release(self, job_id):
        write(os.path.join(self.release_dir, job_id), "go\n")

    def log_of(self, job_id):
        with open(os.path.join(self.folder, "logs", job_id + ".log"), errors="replace") as f:
            return f.read()


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def terminal(job):
    return job["status"] in ("completed", "failed", "cancelled")


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="collectord-sdk-")
        cls.daemon = Daemon(ARGS.daemon, cls.root)

    @classmethod
    def tearDownClass(cls):
        code = cls.daemon.stop()
        if code != 0:
            print(f"collectord exited with {code}:\n{cls.daemon.log()}")
        if os.environ.get("COLLECTORD_KEEP_TEST_DIRS"):
            print(f"kept {cls.root}")
        else:
            shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        # A collector process that cannot use the pipe: no COLLECTOR_PROGRESS_FD.
        self.env = environment(COLLECTORD_URL=self.daemon.url, COLLECTORD_API_KEY=RUNNER_KEY)
        self.env.__enter__()
        self.addCleanup(self.env.__exit__, None, None, None)

    def running_job(self, collector="blocker"):
        job_id = self.daemon.trigger(collector)
        self.addCleanup(self.finish, job_id)
        self.daemon.wait_job(job_id, lambda j: j["status"] == "running", f"{job_id} runs")
        return job_id

    def finish(self, job_id):
        self.daemon.release(job_id)
        self.daemon.wait_job(job_id, terminal, f"{job_id} ends")

    def assert_shows(self, job_id, **fields):
        """GET shows `fields`. The daemon writes progress to its store in coalesced batches
        (within [supervisor] flush_interval, 100 ms), so GET may lag the PUT's answer briefly."""
        deadline = time.monotonic() + 5.0
        while True:
            job = self.daemon.job(job_id)
            shown = {name: job[name] for name in fields}
            if shown == fields or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(shown, fields)

    def test_update_job_progress_sets_progress_and_message(self):
        job_id = self.running_job()
        message = 'Processing devices... "HQ" \\ ünïcødé ✓\nsecond line\t'
        shown = progress_tracker.update_job_progress(job_id, "running", 42, message)
        self.assertEqual(shown["job_id"], job_id)
        self.assertEqual(shown["progress_percent"], 42)
        self.assertEqual(shown["message"], message)
        self.assert_shows(job_id, status="running", progress_percent=42, message=message)
        shown = progress_tracker.update_job_progress(job_id, "running", 62.9,
                                                     "Processing page 7/10")
        self.assertEqual((shown["progress_percent"], shown["message"]),
                         (62, "Processing page 7/10"))
        self.assert_shows(job_id, progress_percent=62, message="Processing page 7/10")

    def test_the_seed_helper_as_the_api_document_calls_it(self):
        from api.progress_tracker import update_job_progress
        job_id = self.running_job()
        update_job_progress(job_id, 'running', 50, 'Processing devices...')
        self.assert_shows(job_id, progress_percent=50, message="Processing devices...")
        update_job_progress(job_id, 'completed', 100, 'Collection completed')
        self.daemon.release(job_id)
        job = self.daemon.wait_job(job_id, terminal, "the job ends")
        self.assertEqual((job["status"], job["progress_percent"], job["message"], job["error"]),
                         ("completed", 100, "Collection completed", None))

    def test_report_and_fail_for_the_current_job_over_http(self):
        job_id = self.running_job()
        os.environ["COLLECTOR_JOB_ID"] = job_id
        progress_tracker.report(30, "Fetched page 3/10")
        self.assert_shows(job_id, progress_percent=30, message="Fetched page 3/10")
        progress_tracker.fail("API returned 401")
        self.daemon.release(job_id)  # the process then exits 0: the reported failure decides
        job = self.daemon.wait_job(job_id, terminal, "the job ends")
        self.assertEqual((job["status"], job["error"], job["progress_percent"], job["message"]),
                         ("failed", "API returned 401", 30, "Fetched page 3/10"))

    def test_complete_for_the_current_job_over_http(self):
        job_id = self.running_job()
        os.environ["COLLECTOR_JOB_ID"] = job_id
        shown = progress_tracker.complete("Synced 3 items")
        self.assertEqual((shown["progress_percent"], shown["message"]), (100, "Synced 3 items"))
        self.daemon.release(job_id)
        job = self.daemon.wait_job(job_id, terminal, "the job ends")
        self.assertEqual((job["status"], job["message"]), ("completed", "Synced 3 items"))

    def test_another_jobs_update_goes_over_http_even_with_a_pipe(self):
        job_id = self.running_job()
        pipe = Pipe()
        self.addCleanup(pipe.close)
        os.environ["COLLECTOR_PROGRESS_FD"] = str(pipe.w)
        os.environ["COLLECTOR_JOB_ID"] = "ot_00000000"
        shown = progress_tracker.update_job_progress(job_id, "running", 77, "from elsewhere")
        self.assertEqual(shown["progress_percent"], 77)
        pipe.assert_empty(self)
        self.assert_shows(job_id, message="from elsewhere")

    def test_a_url_with_a_trailing_slash(self):
        job_id = self.running_job()
        os.environ["COLLECTORD_URL"] = self.daemon.url + "/"
        progress_tracker.update_job_progress(job_id, "running", 5, "slash")
        self.assert_shows(job_id, message="slash")

    def assert_refused(self, status, message_start, call, *args):
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            call(*args)
        error = caught.exception
        self.assertEqual(error.status, status, str(error))
        self.assertTrue(error.server_message.startswith(message_start), error.server_message)
        self.assertIn(error.server_message, str(error), "the exception names the server's words")
        return error

    def test_a_queued_job_is_refused_with_409(self):
        first = self.running_job("single")
        queued = self.daemon.trigger("single")
        # Cleanups run last first: release `first`, then `queued` can run and end.
        self.addCleanup(self.finish, queued)
        self.addCleanup(self.daemon.release, first)
        self.assertEqual(self.daemon.job(queued)["status"], "queued")
        self.assert_refused(409, f"Job {queued} is queued; it can report progress once it runs",
                            progress_tracker.update_job_progress, queued, "running", 10, "early")
        self.assertEqual(self.daemon.job(first)["status"], "running")

    def test_an_ended_job_is_refused_with_409(self):
        job_id = self.running_job()
        self.finish(job_id)
        self.assert_refused(409, f"Job {job_id} is already completed; it takes no more updates",
                            progress_tracker.update_job_progress, job_id, "running", 10, "late")

    def test_an_unknown_job_is_refused_with_404(self):
        error = self.assert_refused(404, "Job not found", progress_tracker.update_job_progress,
                                    "zz_00000000", "running", 10, "nobody")
        self.assertEqual(error.job_id, "zz_00000000")
        self.assert_refused(404, "", progress_tracker.update_job_progress,
                            "not/a job?", "running", 10, "odd characters are escaped")

    def test_a_body_the_server_rejects_raises_with_its_400_message(self):
        job_id = self.running_job()
        # The SDK validates before sending; send what it would refuse, to see the server's 400.
        for body, reason in ((b'{"progress": 500}', '"progress" is out of range (0-100)'),
                             (b'{"status": "done"}', '"status" must be running, completed or'),
                             (b"[1]", "not a JSON object")):
            with self.subTest(body=body):
                error = self.assert_refused(400, "Invalid progress update: ",
                                            progress_tracker._http_put, job_id, body, 5.0)
                self.assertIn(reason, error.server_message)

    def test_credentials_are_required_and_need_the_run_scope(self):
        job_id = self.running_job()
        os.environ.pop("COLLECTORD_API_KEY")
        self.assert_refused(401, "", progress_tracker.update_job_progress,
                            job_id, "running", 10, "anonymous")
        os.environ["COLLECTORD_API_KEY"] = READER_KEY
        self.assert_refused(403, "", progress_tracker.update_job_progress,
                            job_id, "running", 10, "read only")

    def test_an_unreachable_daemon_raises_progress_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ["COLLECTORD_URL"] = f"http://127.0.0.1:{port}"
        with self.assertRaises(progress_tracker.ProgressError) as caught:
            progress_tracker.update_job_progress("zz_00000000", "running", 10, "x")
        self.assertIn("cannot reach collectord", str(caught.exception))
        self.assertIsNone(caught.exception.status)

    def test_a_daemon_that_never_answers_times_out(self):
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)  # accepts the connection in the kernel, never answers
            os.environ["COLLECTORD_URL"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
            os.environ["COLLECTORD_TIMEOUT"] = "0.5"
            started = time.monotonic()
            with self.assertRaises(progress_tracker.ProgressError) as caught:
                progress_tracker.update_job_progress("zz_00000000", "running", 10, "x")
            self.assertLess(time.monotonic() - started, 5.0)
            self.assertIn("cannot reach collectord", str(caught.exception))

    def test_the_example_collectors_run_under_collectord(self):
        python_job = self.daemon.trigger("pyexample")
        shell_job = self.daemon.trigger("shexample")
        failing_job = self.daemon.trigger("shfail")
        job = self.daemon.wait_job(python_job, terminal, "the Python example ends")
        self.assertEqual((job["status"], job["progress_percent"], job["message"]),
                         ("completed", 100, "Audited 8 sites: 26 findings"), json.dumps(job))
        job = self.daemon.wait_job(shell_job, terminal, "the shell example ends")
        self.assertEqual((job["status"], job["progress_percent"], job["message"]),
                         ("completed", 100, "All 5 backup sets verified"), json.dumps(job))
        job = self.daemon.wait_job(failing_job, terminal, "the failing shell example ends")
        self.assertEqual((job["status"], job["error"], job["progress_percent"]),
                         ("failed", 'backup set "mail": checksum mismatch in "part 3"', 40),
                         json.dumps(job))
        for job_id in (python_job, shell_job, failing_job):
            log = self.daemon.log_of(job_id)
            self.assertNotIn("protocol warning", log, log)
            self.assertNotIn("progress not reported", log, log)


def main():
    global ARGS, progress_tracker
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", required=True, help="the collectord binary")
    parser.add_argument("--sdk", default=os.path.join(SOURCE_DIR, "sdk", "python"),
                        help="the SDK's folder (default: sdk/python of this repository)")
    ARGS, rest = parser.parse_known_args()
    ARGS.sdk = os.path.abspath(ARGS.sdk)
    sys.path.insert(0, ARGS.sdk)
    import progress_tracker as module
    progress_tracker = module

    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    result = program.result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    if result.skipped:
        print(f"{len(result.skipped)} skipped (not counted below)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
