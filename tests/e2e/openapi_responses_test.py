#!/usr/bin/env python3
"""Checks a real collectord against the OpenAPI document it serves.

Starts the daemon (port 0, a temp folder with its config, three tiny sh collectors and a docs
folder), drives every endpoint through queued, running and terminal runs and through the error
cases it can provoke, and validates each response (status, Content-Type, required headers and
body) against the schema that GET /api/openapi.json gives for that path, method and status,
using a Draft 2020-12 validator with format checking. A second daemon runs one job at a time
(collectors.max_concurrent = 1) with a collector that blocks until it is cancelled, one that
writes more output than its capped log keeps, one that fails and waits to be retried and two
scheduled ones: it covers cancelling (queued: 200, running: 202, ended: 409), the job log
(offset/limit, tail, the X-Log-* headers) and GET /api/collectors before, during and after runs.
PUT /api/collectors/runs/job/{job_id} (progress over HTTP) is exercised on a running job (200),
with bodies the protocol refuses (400), on a queued job and on ended ones (409).
A third daemon with credentials and a tiny rate limit provides 401, 403 and 429. A fourth
delivers webhooks to a receiver that fails once and to an endpoint nobody listens on, for
GET /api/webhooks/deliveries.

Usage: openapi_responses_test.py --daemon PATH/TO/collectord [--spec http/openapi.json]

Needs Python 3 and jsonschema (Debian: python3-jsonschema); exits 77 without it (ctest counts
that as a failure: tests/CMakeLists.txt runs this with Debian's python3, which should have it). Prints "N passed, M failed" last and exits 1 when anything failed. Set
COLLECTORD_KEEP_TEST_DIRS to keep the temp folder.
"""

import argparse
import datetime
import glob
import http.client
import http.server
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXIT_SKIP = 77

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError as error:
    print(f"SKIP: jsonschema is not available ({error}); install python3-jsonschema")
    sys.exit(EXIT_SKIP)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
POLL_TIMEOUT = 20.0
POLL_INTERVAL = 0.05
REQUEST_TIMEOUT = 10.0
MAX_BODY_BYTES = 2048
READER_KEY = "reader-key-0123456789abcdef"
RUNNER_KEY = "runner-key-0123456789abcdef"
TERMINAL = ("completed", "failed", "cancelled")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# A collector that reports progress, waits (bounded) for the test to create $RELEASE, then
# completes. Protocol lines go to fd 3.
ALPHA = """#!/bin/sh
printf '{"status": "running", "progress": 10, "message": "Starting"}\\n' >&3
i=0
while [ ! -e "$RELEASE" ]; do
  i=$((i + 1))
  [ "$i" -gt 600 ] && exit 3
  sleep 0.05
done
printf '{"progress": 60.7, "message": "Fetched page 2/3"}\\n' >&3
printf '{"status": "completed", "progress": 100, "message": "Synced 3 items"}\\n' >&3
exit 0
"""

# Like alpha, but fails once released: a reported error and exit code 2.
BETA = """#!/bin/sh
printf '{"progress": 30, "message": "Fetched page 1/3"}\\n' >&3
i=0
while [ ! -e "$RELEASE" ]; do
  i=$((i + 1))
  [ "$i" -gt 600 ] && exit 3
  sleep 0.05
done
printf '{"status": "failed", "error": "API returned 401"}\\n' >&3
exit 2
"""

# Like alpha without the progress lines, configured with overlap = skip: a second trigger while
# it runs gets the running job back.
GAMMA = """#!/bin/sh
i=0
while [ ! -e "$RELEASE" ]; do
  i=$((i + 1))
  [ "$i" -gt 600 ] && exit 3
  sleep 0.05
done
exit 0
"""

# Blocks (bounded) until the test cancels it; output on stdout and stderr, one progress line.
BLOCKER = """#!/bin/sh
echo "blocker: started"
echo "blocker: a line on stderr" >&2
printf '{"status": "running", "progress": 5, "message": "Blocking until cancelled"}\\n' >&3
echo "blocker: waiting"
i=0
while [ "$i" -lt 1200 ]; do
  i=$((i + 1))
  sleep 0.05
done
exit 4
"""

# Writes more output than [logs] max_bytes_per_job keeps, line by line, then completes.
CHATTY_LINES = 2500
CHATTY = """#!/bin/sh
i=1
while [ "$i" -le %d ]; do
  printf 'chatty line %%04d: the quick brown fox jumps over the lazy dog\\n' "$i"
  i=$((i + 1))
done
echo "chatty: done" >&2
printf '{"status": "completed", "progress": 100, "message": "Wrote the lines"}\\n' >&3
exit 0
""" % CHATTY_LINES

# Fails at once; configured with one retry after a long backoff, so it waits queued.
FLAKY = """#!/bin/sh
echo "flaky: trying"
printf '{"status": "failed", "error": "upstream returned 503"}\\n' >&3
exit 1
"""

# The scheduled collectors never fire during the test.
QUIET = """#!/bin/sh
exit 0
"""

CONTROL_COLLECTORS = (
    ("blocker", BLOCKER, "timeout = 10m\nstall_timeout = 5m\nkill_grace = 2s\n"),
    ("chatty", CHATTY, ""),
    ("flaky", FLAKY, "retries = 1\nretry_backoff = 5m\noverlap = parallel\nconcurrency = 2\n"),
    ("nightly", QUIET, "cron = 15 3 1 1 *\ntimezone = Europe/Paris\n"),
    ("ticker", QUIET, "schedule = every 1h\noverlap = skip\n"),
)
# Above collectord's 64 KiB pipe read, so that no single write exceeds the cap: how much is
# dropped then does not depend on how the output happens to be chunked.
CONTROL_LOG_MAX_BYTES = 128 * 1024
LOG_HEADERS = ("X-Log-Offset", "X-Log-Next-Offset", "X-Log-Size", "X-Log-Dropped")

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


def stdlib_date_time(value):
    """RFC 3339 date-time, for jsonschema versions without a date-time checker."""
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def format_checker():
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time", raises=ValueError)(stdlib_date_time)
    return checker


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what):
        self.passed += 1
        print(f"ok    {what}")

    def fail(self, what, why):
        self.failed += 1
        print(f"FAIL  {what}\n      {why}".replace("\n", "\n      "))


class Reply:
    def __init__(self, method, target, status, headers, body):
        self.method = method
        self.target = target
        self.status = status
        self.headers = headers  # [(name, value)] as received
        self.body = body

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def show(self):
        text = self.body.decode("utf-8", "replace")
        if len(text) > 2000:
            text = text[:2000] + "..."
        return (f"{self.method} {self.target} -> {self.status}\n"
                f"headers: {self.headers}\nbody: {text}")


class Daemon:
    """collectord on an ephemeral port, in its own folder; stop() sends SIGTERM."""

    def __init__(self, binary, folder):
        self.folder = folder
        self.port_file = os.path.join(folder, "port")
        self.output = open(os.path.join(folder, "daemon.out"), "ab")
        self.process = subprocess.Popen(
            [binary, "--config=" + os.path.join(folder, "collectord.ini"),
             "--port-file=" + self.port_file],
            stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collectord exited with {self.process.returncode} before "
                                   f"listening:\n{self.log()}")
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"collectord wrote no port file in {START_TIMEOUT} s:\n{self.log()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"collectord did not stop within {STOP_TIMEOUT} s of SIGTERM; killing it")
                self.process.kill()
                self.process.wait()
        if not self.output.closed:
            self.output.close()
        return self.process.returncode

    def log(self):
        try:
            with open(os.path.join(self.folder, "daemon.out"), errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return "(no output)"

    def request(self, method, target, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            sent = dict(headers or {})
            if body is not None:
                sent.setdefault("Content-Type", "application/json")
                body = body.encode("utf-8") if isinstance(body, str) else body
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(method, target, response.status, response.getheaders(), response.read())
        finally:
            connection.close()


class Spec:
    """The OpenAPI document: finds the response for (method, path, status) and validates."""

    def __init__(self, document):
        self.document = document
        self.checker = format_checker()

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
            target = self.document
            for token in node["$ref"][2:].split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def validator(self, schema):
        # References in the document point at "#/components/...": validate against a root that
        # carries the components, so that they resolve as written.
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.document.get("components", {}), "allOf": [schema]}
        return Draft202012Validator(root, format_checker=self.checker)

    def template_of(self, path):
        """The documented path template that `path` (no query) matches, or None."""
        for template in self.document["paths"]:
            pattern = "^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path):
                return template
        return None

    def response_for(self, method, template, status):
        item = self.document["paths"][template]
        operation = item.get(method.lower())
        if operation is None:
            # Another method on this path: its 405 is documented on the path's operations.
            operation = next(item[m] for m in METHODS if m in item)
        return self.resolve(operation.get("responses", {}).get(str(status)))

    def check(self, reply):
        """Problems of `reply` against the document; empty when it conforms."""
        path = reply.target.split("?", 1)[0]
        template = self.template_of(path)
        if template is None:
            return self.check_unrouted(reply)
        documented = self.response_for(reply.method, template, reply.status)
        if documented is None:
            return [f"status {reply.status} is not documented for "
                    f"{reply.method} {template}"]
        problems = []
        for name, header in documented.get("headers", {}).items():
            header = self.resolve(header)
            value = reply.header(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"required header {name} is missing")
                continue
            schema = header.get("schema", {})
            if schema.get("type") == "integer":
                if not re.fullmatch(r"-?[0-9]+", value):
                    problems.append(f"header {name}: {value!r} is not an integer")
                    continue
                value = int(value)
            problems += [f"header {name}: {e.message}" for e in
                         self.validator(schema).iter_errors(value)]
        content = documented.get("content", {})
        content_type = reply.header("Content-Type") or ""
        media_type = content_type.split(";", 1)[0].strip()
        if media_type not in content:
            return problems + [f"Content-Type {content_type!r} is not documented "
                               f"(documented: {sorted(content)})"]
        schema = content[media_type].get("schema", {})
        if media_type == "application/json":
            try:
                body = reply.json()
            except ValueError as error:
                return problems + [f"the body is not JSON: {error}"]
        else:
            body = reply.body.decode("utf-8")
        for error in sorted(self.validator(schema).iter_errors(body), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            problems.append(f"{where}: {error.message}")
        return problems

    def check_unrouted(self, reply):
        """A path no route serves: 404 with the Error schema."""
        if reply.status != 404:
            return [f"{reply.target} is not a documented path, yet answered {reply.status}"]
        error = {"$ref": "#/components/schemas/Error"}
        try:
            body = reply.json()
        except ValueError as e:
            return [f"the body is not JSON: {e}"]
        return [e.message for e in self.validator(error).iter_errors(body)]


class Run:
    """One test run: a spec, results, and helpers that validate every response."""

    def __init__(self, spec):
        self.spec = spec
        self.results = Results()

    def validate(self, reply, expect_status=None, label=""):
        what = f"{reply.method} {reply.target} {reply.status}" + (f" ({label})" if label else "")
        problems = []
        if expect_status is not None and reply.status != expect_status:
            problems.append(f"expected status {expect_status}")
        problems += self.spec.check(reply)
        if problems:
            self.results.fail(what, "\n".join(problems) + "\n" + reply.show())
        else:
            self.results.ok(what)
        return reply

    def expect(self, condition, what, detail=""):
        if condition:
            self.results.ok(what)
        else:
            self.results.fail(what, detail)
        return condition


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_folder(root, name, main_extra="", auth=False, requests_per_minute=1000000,
                collectors=None, collectors_extra="", logs_extra=""):
    folder = os.path.join(root, name)
    release = os.path.join(folder, "release")
    auth_section = ("[auth]\nrequired = true\napi_keys_file = api_keys\n" if auth
                    else "[auth]\nrequired = false\n")
    write(os.path.join(folder, "collectord.ini"),
          "[http]\naddress = 127.0.0.1\nport = 0\n"
          f"max_body_bytes = {MAX_BODY_BYTES}\n"
          "[store]\nurl = sqlite:collectord.db\n"
          f"[collectors]\ndirectory = collectors.d\n{collectors_extra}"
          f"[logs]\ndirectory = logs\n{logs_extra}"
          "[docs]\ndirectory = docs\n"
          f"{auth_section}"
          f"[ratelimit]\nrequests_per_minute = {requests_per_minute}\n" + main_extra)
    write(os.path.join(folder, "api_keys"),
          f"{READER_KEY} read reader\n{RUNNER_KEY} read,run runner\n", 0o600)
    if collectors is None:
        collectors = (("alpha", ALPHA, ""), ("beta", BETA, ""), ("gamma", GAMMA, "overlap = skip\n"))
    for collector, script, extra in collectors:
        write(os.path.join(folder, "collectors.d", collector + ".sh"), script, 0o755)
        write(os.path.join(folder, "collectors.d", collector + ".ini"),
              f"[collector]\ncommand = ./{collector}.sh\nenv.RELEASE = {release}\n{extra}")
    write(os.path.join(folder, "docs", "GUIDE.md"), "# A guide\n\nRead me.\n")
    write(os.path.join(folder, "docs", "NOTES.md"), "No heading here.\n")
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    return folder, release


def poll(daemon, target, done):
    """GETs `target` every POLL_INTERVAL until done(json) or POLL_TIMEOUT; the last reply."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        reply = daemon.request("GET", target)
        try:
            if reply.status == 200 and done(reply.json()):
                return reply, True
        except ValueError:
            pass
        if time.monotonic() >= deadline:
            return reply, False
        time.sleep(POLL_INTERVAL)


def find_openapi_metaschema():
    """An OpenAPI 3.1 meta-schema shipped with jsonschema (or its specifications), or None."""
    roots = [os.path.dirname(jsonschema.__file__)]
    try:
        import jsonschema_specifications
        roots.append(os.path.dirname(jsonschema_specifications.__file__))
    except ImportError:
        pass
    for root in roots:
        for path in glob.glob(os.path.join(root, "**", "*.json"), recursive=True):
            if "openapi" in os.path.basename(path).lower() or "oas" in path.lower().split(os.sep):
                return path
    return None


def check_document(run, daemon, spec_path):
    reply = run.validate(daemon.request("GET", "/api/openapi.json"), 200, "the document itself")
    served = reply.body
    if spec_path:
        with open(spec_path, "rb") as f:
            source = f.read()
        run.expect(served == source, "the served document is http/openapi.json byte for byte",
                   f"served {len(served)} bytes, {spec_path} has {len(source)}")
    document = json.loads(served)
    metaschema = find_openapi_metaschema()
    if metaschema:
        with open(metaschema) as f:
            meta = json.load(f)
        errors = list(Draft202012Validator(meta, format_checker=format_checker())
                      .iter_errors(document))
        run.expect(not errors, f"the document against the OpenAPI 3.1 meta-schema {metaschema}",
                   "\n".join(e.message for e in errors[:20]))
    else:
        try:
            version = " " + importlib.metadata.version("jsonschema")
        except importlib.metadata.PackageNotFoundError:
            version = ""
        print(f"SKIP  the document against the OpenAPI 3.1 meta-schema: jsonschema{version} "
              "ships none (each schema in it is still checked against Draft 2020-12)")
    # Whatever the meta-schema, every schema in the document must be a valid 2020-12 schema.
    schemas = []

    def collect(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict):
                    schemas.append((where + "/schema", value))
                else:
                    collect(value, where + "/" + key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                collect(value, f"{where}/{i}")

    collect(document["paths"], "#/paths")
    collect(document["components"].get("parameters", {}), "#/components/parameters")
    collect(document["components"].get("headers", {}), "#/components/headers")
    collect(document["components"].get("responses", {}), "#/components/responses")
    for name, schema in document["components"].get("schemas", {}).items():
        schemas.append((f"#/components/schemas/{name}", schema))
    bad = []
    for where, schema in schemas:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as error:
            bad.append(f"{where}: {error.message}")
    run.expect(not bad, f"all {len(schemas)} schemas in the document are valid Draft 2020-12",
               "\n".join(bad))
    return document


def main_flow(run, daemon, release):
    get = lambda target: daemon.request("GET", target)  # noqa: E731

    run.validate(get("/healthz"), 200)
    run.validate(get("/readyz"), 200)
    index = run.validate(get("/api/docs"), 200)
    if index.status == 200:
        names = [d["name"] for d in index.json().get("documents", [])]
        run.expect(names == ["GUIDE.md", "NOTES.md"], "the docs index lists the docs folder",
                   f"got {names}")
    run.validate(get("/api/docs/GUIDE.md"), 200)
    run.validate(get("/api/docs/MISSING.md"), 404)
    run.validate(get("/api/docs/..%2Fcollectord.ini"), 404, "an encoded slash")
    run.validate(get("/api/docs/.hidden.md"), 404, "not a document name")
    run.validate(get("/metrics"), 200)
    run.validate(get("/api/collectors/runs/latest"), 200, "nothing has run yet")
    run.validate(get("/api/collectors/history"), 200, "nothing has run yet")

    trigger = run.validate(daemon.request(
        "POST", "/api/collectors/run", '{"collectors": ["alpha", "beta"], "priority": "high"}'),
        201)
    if trigger.status != 201:
        return
    batch_id = trigger.json()["batch_id"]
    job_ids = [job["job_id"] for job in trigger.json()["collectors"]]
    batch_target = f"/api/collectors/runs/batch/{batch_id}"

    run.validate(get(batch_target), 200, "just triggered")
    for job_id in job_ids:
        run.validate(get(f"/api/collectors/runs/job/{job_id}"), 200, "just triggered")

    def all_running(batch):
        return all(j["status"] == "running" and j["progress_percent"] is not None
                   for j in batch["collectors"])

    reply, reached = poll(daemon, batch_target, all_running)
    if run.expect(reached, "both jobs run and report progress", reply.show()):
        run.validate(reply, 200, "running")
        for job_id in job_ids:
            run.validate(get(f"/api/collectors/runs/job/{job_id}"), 200, "running")
        run.validate(get("/api/collectors/runs/latest?collectors=beta,alpha"), 200, "running")
        run.validate(get("/api/collectors/history?limit=5"), 200, "running")
        progress_while_running(run, daemon, job_ids[0])

    first = run.validate(daemon.request("POST", "/api/collectors/run",
                                        '{"collectors": ["gamma"]}'), 201, "overlap = skip")
    if first.status == 201:
        gamma_job = first.json()["collectors"][0]["job_id"]
        reply, reached = poll(daemon, f"/api/collectors/runs/job/{gamma_job}",
                              lambda j: j["status"] == "running")
        if run.expect(reached, "gamma runs", reply.show()):
            alone = run.validate(daemon.request(
                "POST", "/api/collectors/run", '{"collectors": ["gamma"]}'), 200,
                "gamma skipped, nothing created")
            if alone.status == 200:
                job = alone.json()["collectors"][0]
                run.expect(job["job_id"] == gamma_job and job.get("skipped") is True,
                           "an all-skipped trigger returns the active run", alone.show())
            again = run.validate(daemon.request(
                "POST", "/api/collectors/run", '{"collectors": ["gamma", "alpha"]}'), 201,
                "gamma skipped: its running job comes back")
            if again.status == 201:
                jobs = again.json()["collectors"]
                run.expect(jobs[0]["job_id"] == gamma_job and jobs[0]["status"] == "running"
                           and jobs[0].get("skipped") is True and "skipped" not in jobs[1],
                           "a partly skipped trigger returns the active run beside a new job",
                           again.show())

    write(release, "go\n")
    reply, reached = poll(daemon, batch_target, lambda b: b["status"] in TERMINAL)
    if run.expect(reached, "the batch ends", reply.show()):
        run.validate(reply, 200, "terminal")
        run.expect(reply.json()["status"] == "failed", "beta's failure fails the batch",
                   reply.show())
        for job_id in job_ids:
            run.validate(get(f"/api/collectors/runs/job/{job_id}"), 200, "terminal")
        for job_id, status in zip(job_ids, ("completed", "failed")):
            reply = run.validate(put_progress(daemon, job_id, '{"progress": 100}'), 409,
                                 f"{status}: takes no more updates")
            run.expect(reply.status == 409 and reply.json()["error"] ==
                       f"Job {job_id} is already {status}; it takes no more updates",
                       f"PUT on a {status} job names its status", reply.show())

    second = run.validate(daemon.request("POST", "/api/collectors/run",
                                         '{"collectors": ["alpha"]}'), 201)
    if second.status == 201:
        target = f"/api/collectors/runs/batch/{second.json()['batch_id']}"
        reply, reached = poll(daemon, target, lambda b: b["status"] in TERMINAL)
        if run.expect(reached, "a batch of alpha alone ends", reply.show()):
            run.validate(reply, 200, "completed")
    run.validate(get("/api/collectors/runs/latest"), 200, "terminal")
    run.validate(get("/api/collectors/runs/latest?collectors=alpha"), 200, "terminal")
    run.validate(get("/api/collectors/history"), 200, "terminal")
    run.validate(get("/api/collectors/history?limit=1"), 200, "terminal")


def put_progress(daemon, job_id, body):
    return daemon.request("PUT", f"/api/collectors/runs/job/{job_id}", body)


def progress_while_running(run, daemon, job_id):
    """PUT /api/collectors/runs/job/{id}: a running job (200), bad bodies (400), a queued job
    (409). Leaves `job_id` running, with the progress alpha itself reported."""
    get = lambda target: daemon.request("GET", target)  # noqa: E731
    target = f"/api/collectors/runs/job/{job_id}"
    before = get(target).json()
    update = {"progress": 45.9, "message": 'Reported over HTTP: "quotes", ünïcode ✓\n',
              "status": "running", "error": None, "extra": {"nested": [1, {"deep": None}]}}
    reply = run.validate(put_progress(daemon, job_id, json.dumps(update)), 200, "running")
    if reply.status == 200:
        job = reply.json()
        run.expect(job["job_id"] == job_id and job["status"] == "running"
                   and job["progress_percent"] == 45 and job["message"] == update["message"],
                   "PUT answers the job with the update applied (45.9 rounded down)",
                   reply.show())
        # Progress reaches the store in coalesced writes (flush_interval): GET may lag briefly.
        reply, reached = poll(daemon, target, lambda j: j["progress_percent"] == 45
                              and j["message"] == update["message"])
        if run.expect(reached, "GET shows what PUT reported", reply.show()):
            run.validate(reply, 200, "after a PUT")
    reply = run.validate(put_progress(daemon, job_id, "{}"), 200, "an empty update")
    if reply.status == 200:
        run.expect(reply.json()["progress_percent"] == 45,
                   "an empty update changes nothing", reply.show())
    for body, label, reason in (
            ("{", "not JSON", "expected a quoted key"),
            ("", "empty", "not a JSON object"),
            ("[1, 2]", "an array", "not a JSON object"),
            ('{"progress": 101}', "progress out of range", '"progress" is out of range (0-100)'),
            ('{"progress": -1}', "negative progress", '"progress" is out of range (0-100)'),
            ('{"progress": "50"}', "progress a string", '"progress" must be a number'),
            ('{"status": "done"}', "unknown status", '"status" must be running, completed or failed'),
            ('{"status": null}', "null status", '"status" must be a string'),
            ('{"message": 5}', "message not a string", '"message" must be a string'),
            ('{"progress": 5} {}', "two objects", "unexpected text after the JSON object"),
            (b'{"message": "\xff"}', "invalid UTF-8", "invalid UTF-8")):
        reply = run.validate(put_progress(daemon, job_id, body), 400, label)
        if reply.status == 400:
            error = reply.json()["error"]
            run.expect(error.startswith("Invalid progress update: ") and reason in error,
                       f"400 ({label}) gives the protocol parser's reason", reply.show())
    reply = put_progress(daemon, job_id, "{}")  # answers the job as it stands in memory
    run.expect(reply.status == 200 and reply.json()["progress_percent"] == 45
               and reply.json()["message"] == update["message"],
               "a refused update changes nothing", reply.show())
    # Put back what alpha reported, so that the rest of the flow sees alpha as it was.
    put_progress(daemon, job_id, json.dumps({"progress": before["progress_percent"],
                                             "message": before["message"]}))

    # A second alpha waits behind the running one (concurrency 1): queued, 409.
    trigger = daemon.request("POST", "/api/collectors/run", '{"collectors": ["alpha"]}')
    if run.expect(trigger.status == 201, "a second alpha is triggered", trigger.show()):
        queued = trigger.json()["collectors"][0]["job_id"]
        reply = run.validate(put_progress(daemon, queued, '{"progress": 5}'), 409, "queued")
        run.expect(reply.status == 409 and reply.json()["error"] ==
                   f"Job {queued} is queued; it can report progress once it runs",
                   "PUT on a queued job says it can report once it runs", reply.show())


def error_flow(run, daemon):
    get = lambda target: daemon.request("GET", target)  # noqa: E731
    post = lambda body: daemon.request("POST", "/api/collectors/run", body)  # noqa: E731

    for body, label in (("{", "not JSON"), ("[1, 2]", "an array"), ('"alpha"', "a string"),
                        ("{}", "no collectors"), ('{"collectors": null}', "null collectors"),
                        ('{"collectors": "alpha"}', "not a list"),
                        ('{"collectors": [1]}', "not strings"),
                        ('{"collectors": []}', "empty"),
                        ('{"collectors": ["nobody", "alpha"]}', "unknown"),
                        ('{"collectors": ["alpha", "alpha"]}', "duplicate"),
                        ('{"collectors": ["alpha"], "priority": "urgent"}', "bad priority"),
                        ('{"collectors": ["alpha"], "priority": 1}', "priority not a string")):
        run.validate(post(body), 400, label)
    run.validate(daemon.request("POST", "/api/collectors/run", "x" * (MAX_BODY_BYTES * 2)), 413,
                 "body too large")
    run.validate(get("/api/collectors/runs/latest?collectors="), 400, "empty list")
    run.validate(get("/api/collectors/runs/latest?collectors=nobody"), 400, "unknown")
    for limit in ("0", "1001", "abc", "-1", "10.5", ""):
        run.validate(get(f"/api/collectors/history?limit={limit}"), 400, f"limit={limit}")
    run.validate(get("/api/collectors/runs/batch/bc_00000000"), 404, "no such batch")
    run.validate(get("/api/collectors/runs/batch/not-a-batch"), 404, "malformed batch ID")
    run.validate(get("/api/collectors/runs/job/zz_00000000"), 404, "no such job")
    run.validate(get("/api/collectors/runs/job/ZZ_1"), 404, "malformed job ID")
    run.validate(get("/api/collectors/runs/job/ni_0%2F000000"), 404, "an encoded slash")
    run.validate(put_progress(daemon, "zz_00000000", '{"progress": 5}'), 404, "no such job")
    run.validate(put_progress(daemon, "ZZ_1", '{"progress": 5}'), 404, "malformed job ID")
    run.validate(put_progress(daemon, "zz_00000000", "x" * (MAX_BODY_BYTES * 2)), 413,
                 "body too large")
    for method, target, expected_allow in (
            ("DELETE", "/api/collectors/history", "GET"),
            ("GET", "/api/collectors/run", "POST"),
            ("POST", "/api/collectors", "GET"),
            ("PUT", "/api/collectors/runs/batch/bc_00000000", "GET, DELETE"),
            ("POST", "/api/collectors/runs/job/zz_00000000", "GET, DELETE, PUT"),
            ("GET", "/api/collectors/runs/batch/bc_00000000/cancel", "POST"),
            ("DELETE", "/api/collectors/runs/job/zz_00000000/cancel", "POST"),
            ("POST", "/api/collectors/runs/job/zz_00000000/log", "GET"),
            ("POST", "/healthz", "GET"),
            ("DELETE", "/api/openapi.json", "GET")):
        reply = run.validate(daemon.request(method, target), 405, "wrong method")
        run.expect(reply.header("Allow") == expected_allow, f"{method} {target}: Allow names "
                   f"{expected_allow}", reply.show())
    run.validate(get("/api/nothing/here"), 404, "no such route")


def log_offsets(reply):
    """The four X-Log-* headers as integers (None for a missing or malformed one)."""
    values = {}
    for name in LOG_HEADERS:
        value = reply.header(name)
        values[name] = int(value) if value is not None and value.isdigit() else None
    return values


def check_log(run, reply, label):
    """Validates a log reply, and that its headers agree with each other and with its body."""
    run.validate(reply, 200, label)
    if reply.status != 200:
        return None
    h = log_offsets(reply)
    if None in h.values():
        return None  # reported by validate
    consistent = (h["X-Log-Dropped"] <= h["X-Log-Offset"] <= h["X-Log-Next-Offset"]
                  <= h["X-Log-Size"]
                  and h["X-Log-Next-Offset"] - h["X-Log-Offset"] == len(reply.body))
    run.expect(consistent, f"{reply.target}: dropped <= offset <= next <= size and "
               "next - offset = the body's length", reply.show())
    return h


def control_flow(run, binary, root):
    """Cancel, the job log and GET /api/collectors on a daemon that runs one job at a time."""
    folder, _ = make_folder(root, "control", collectors=CONTROL_COLLECTORS,
                            collectors_extra="max_concurrent = 1\n",
                            logs_extra=f"max_bytes_per_job = {CONTROL_LOG_MAX_BYTES}\n")
    daemon = Daemon(binary, folder)
    get = lambda target: daemon.request("GET", target)  # noqa: E731

    def trigger(names):
        body = json.dumps({"collectors": names})
        reply = run.validate(daemon.request("POST", "/api/collectors/run", body), 201,
                             "+".join(names))
        if reply.status != 201:
            raise RuntimeError(f"cannot trigger {names}\n{reply.show()}")
        return reply.json()["batch_id"], [job["job_id"] for job in reply.json()["collectors"]]

    def wait_job(job_id, done, what):
        reply, reached = poll(daemon, f"/api/collectors/runs/job/{job_id}", done)
        if not run.expect(reached, what, reply.show()):
            raise RuntimeError(f"gave up: {what}")
        return run.validate(reply, 200, what).json()

    def collectors(label):
        reply = run.validate(get("/api/collectors"), 200, label)
        return {c["name"]: c for c in reply.json()["collectors"]} if reply.status == 200 else {}

    try:
        # Before any run: settings and schedules, nothing active, nothing finished.
        listed = collectors("before any run")
        names = [name for name, _, _ in CONTROL_COLLECTORS]
        run.expect(list(listed) == names, "GET /api/collectors lists the collectors by name",
                   f"got {list(listed)}")
        if listed:
            run.expect(all(c["running"] == 0 and c["queued"] == 0 and c["active_run"] is None
                           and c["last_run"] is None for c in listed.values()),
                       "before any run: no active and no last run", json.dumps(listed))
            blocker, flaky = listed["blocker"], listed["flaky"]
            run.expect(blocker["job_name"] == "blocker-collector" and blocker["type"] == "exec"
                       and blocker["schedule"] is None and blocker["next_scheduled_at"] is None
                       and blocker["limits"] == {
                           "overlap": "queue", "concurrency": 1, "timeout": "10m",
                           "stall_timeout": "5m", "kill_grace": "2s", "retries": 0,
                           "retry_backoff": "30s"},
                       "the blocker's settings", json.dumps(blocker))
            run.expect(flaky["limits"]["overlap"] == "parallel"
                       and flaky["limits"]["concurrency"] == 2
                       and flaky["limits"]["retries"] == 1
                       and flaky["limits"]["retry_backoff"] == "5m"
                       and flaky["limits"]["timeout"] is None,
                       "the flaky collector's settings", json.dumps(flaky))
            run.expect(listed["ticker"]["schedule"] == "every 1h"
                       and listed["ticker"]["next_scheduled_at"] is not None
                       and listed["nightly"]["schedule"] == "cron 15 3 1 1 * (Europe/Paris)"
                       and listed["nightly"]["next_scheduled_at"] is not None,
                       "the schedules and when they fire next",
                       json.dumps([listed["ticker"], listed["nightly"]]))

        # The blocker runs; everything triggered after it waits (max_concurrent = 1).
        blocker_batch, (blocker_job,) = trigger(["blocker"])
        wait_job(blocker_job, lambda j: j["status"] == "running"
                 and j["progress_percent"] is not None, "the blocker runs")
        queued_batch, (queued_job,) = trigger(["chatty"])
        pair_batch, pair_jobs = trigger(["chatty", "flaky"])
        run.validate(get(f"/api/collectors/runs/job/{queued_job}"), 200, "queued behind")
        listed = collectors("one running, three queued")
        if listed:
            run.expect(listed["blocker"]["running"] == 1 and listed["blocker"]["queued"] == 0
                       and (listed["blocker"]["active_run"] or {}).get("job_id") == blocker_job
                       and listed["chatty"]["running"] == 0 and listed["chatty"]["queued"] == 2
                       and (listed["chatty"]["active_run"] or {}).get("job_id") == pair_jobs[0]
                       and listed["flaky"]["queued"] == 1 and listed["ticker"]["queued"] == 0,
                       "GET /api/collectors counts running and queued jobs and shows the newest",
                       json.dumps(listed))

        # A queued job's log: empty, every offset 0.
        reply = get(f"/api/collectors/runs/job/{queued_job}/log")
        h = check_log(run, reply, "never started")
        run.expect(h is not None and reply.body == b"" and set(h.values()) == {0},
                   "a job that never started has an empty log", reply.show())

        # Cancel a queued job (200), then again (409); its batch ended with it.
        reply = run.validate(daemon.request(
            "POST", f"/api/collectors/runs/job/{queued_job}/cancel"), 200, "queued: cancelled")
        if reply.status == 200:
            job = reply.json()
            run.expect(job["status"] == "cancelled" and job["error"] == "cancelled by request"
                       and job["batch_status"] == "cancelled",
                       "a cancelled queued job and its one-job batch end at once", reply.show())
        run.validate(daemon.request("DELETE", f"/api/collectors/runs/job/{queued_job}"), 409,
                     "already cancelled")
        run.validate(daemon.request(
            "POST", f"/api/collectors/runs/batch/{queued_batch}/cancel"), 409,
            "its batch has ended")
        run.validate(get(f"/api/collectors/runs/job/{queued_job}"), 200, "cancelled while queued")

        # Cancel a batch of queued jobs (200).
        reply = run.validate(daemon.request("POST", f"/api/collectors/runs/batch/{pair_batch}/cancel"),
                             200, "all queued: cancelled")
        if reply.status == 200:
            run.expect(reply.json()["status"] == "cancelled"
                       and all(j["status"] == "cancelled" for j in reply.json()["collectors"]),
                       "a batch of queued jobs is cancelled at once", reply.show())
        run.validate(daemon.request("DELETE", f"/api/collectors/runs/batch/{pair_batch}"), 409,
                     "already cancelled")

        # The running blocker's log: follow it, read its tail.
        log_target = f"/api/collectors/runs/job/{blocker_job}/log"
        reply = get(log_target)
        deadline = time.monotonic() + POLL_TIMEOUT
        while b"blocker: waiting" not in reply.body and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            reply = get(log_target)
        h = check_log(run, reply, "running")
        text = reply.body.decode("utf-8", "replace")
        run.expect(text.startswith("[collectord] attempt 1 of 1: started ")
                   and "blocker: a line on stderr\n" in text and "blocker: waiting\n" in text,
                   "the log holds collectord's start line, stdout and stderr", reply.show())
        if h:
            first = get(f"{log_target}?offset=0&limit=12")
            fh = check_log(run, first, "the first 12 bytes")
            rest = get(f"{log_target}?offset={fh['X-Log-Next-Offset'] if fh else 12}")
            check_log(run, rest, "from where the first read ended")
            run.expect(len(first.body) == 12 and first.body + rest.body == reply.body,
                       "two reads in a row give the whole log", rest.show())
            tail = get(f"{log_target}?tail=1")
            th = check_log(run, tail, "the last line")
            run.expect(tail.body == b"blocker: waiting\n" and th is not None
                       and th["X-Log-Next-Offset"] == th["X-Log-Size"],
                       "tail=1 is the last line, and next offset is the size", tail.show())
            zero = get(f"{log_target}?tail=0")
            zh = check_log(run, zero, "tail=0")
            run.expect(zero.body == b"" and zh is not None and zh["X-Log-Offset"] == zh["X-Log-Size"],
                       "tail=0 returns nothing, positioned at the end", zero.show())
            past = get(f"{log_target}?offset={h['X-Log-Size'] + 100}&limit=5")
            ph = check_log(run, past, "past the end")
            run.expect(past.body == b"" and ph is not None and ph["X-Log-Offset"] == ph["X-Log-Size"],
                       "an offset past the end reads nothing", past.show())

        # Cancel the running blocker (202): it ends cancelled once its processes are gone.
        reply = run.validate(daemon.request("DELETE", f"/api/collectors/runs/job/{blocker_job}"),
                             202, "running: being stopped")
        if reply.status == 202:
            run.expect(reply.json()["status"] in ("running", "cancelled"),
                       "202 shows the job as it stood", reply.show())
        job = wait_job(blocker_job, lambda j: j["status"] in TERMINAL, "the cancelled job ends")
        run.expect(job["status"] == "cancelled" and job["error"] == "cancelled by request"
                   and job["batch_status"] == "cancelled",
                   "a running job cancelled by request ends cancelled", json.dumps(job))
        text = get(log_target).body.decode("utf-8", "replace")
        run.expect("[collectord] cancelled by request: sending SIGTERM to the process group\n" in text,
                   "the log tells the job was signalled", text)
        run.validate(daemon.request("POST", f"/api/collectors/runs/job/{blocker_job}/cancel"),
                     409, "already cancelled")
        run.validate(daemon.request("DELETE", f"/api/collectors/runs/batch/{blocker_batch}"), 409,
                     "already cancelled")

        # A batch with a running and a queued job (202): the queued one ends at once.
        mixed_batch, mixed_jobs = trigger(["blocker", "chatty"])
        wait_job(mixed_jobs[0], lambda j: j["status"] == "running", "the blocker runs again")
        reply = run.validate(daemon.request(
            "POST", f"/api/collectors/runs/batch/{mixed_batch}/cancel"), 202, "one running")
        if reply.status == 202:
            jobs = reply.json()["collectors"]
            run.expect(jobs[1]["status"] == "cancelled",
                       "the batch's queued job is cancelled at once", reply.show())
        reply, reached = poll(daemon, f"/api/collectors/runs/batch/{mixed_batch}",
                              lambda b: b["status"] in TERMINAL)
        if run.expect(reached and reply.json()["status"] == "cancelled",
                      "the batch ends cancelled", reply.show()):
            run.validate(reply, 200, "cancelled")

        # A finished run (409), whose capped log dropped its oldest output.
        done_batch, (done_job,) = trigger(["chatty"])
        job = wait_job(done_job, lambda j: j["status"] in TERMINAL, "chatty ends")
        run.expect(job["status"] == "completed", "chatty completes", json.dumps(job))
        run.validate(daemon.request("POST", f"/api/collectors/runs/job/{done_job}/cancel"), 409,
                     "completed")
        run.validate(daemon.request("DELETE", f"/api/collectors/runs/job/{done_job}"), 409,
                     "completed")
        run.validate(daemon.request("POST", f"/api/collectors/runs/batch/{done_batch}/cancel"),
                     409, "completed")
        log_target = f"/api/collectors/runs/job/{done_job}/log"
        whole = get(f"{log_target}?tail=10000")
        wh = check_log(run, whole, "everything still kept")
        if wh:
            run.expect(wh["X-Log-Dropped"] > 0 and wh["X-Log-Offset"] == wh["X-Log-Dropped"]
                       and wh["X-Log-Size"] > CHATTY_LINES * 60,
                       "the capped log counts all output, and what it dropped", whole.show())
            text = whole.body.decode("utf-8", "replace")
            run.expect(f"chatty line {CHATTY_LINES:04d}: " in text
                       and "chatty line 0001: " not in text
                       and text.endswith("; job completed\n"),
                       "the newest output is kept, the oldest dropped", whole.show())
            # From offset 0 (dropped: moved up to the oldest byte kept), in 40000-byte steps.
            pieces, offset = [], 0
            for _ in range(20):
                piece = get(f"{log_target}?offset={offset}&limit=40000")
                ph = check_log(run, piece, f"offset={offset}")
                if not ph:
                    break
                if offset == 0:
                    run.expect(ph["X-Log-Offset"] == wh["X-Log-Dropped"],
                               "offset 0 of a capped log reads from the oldest byte kept",
                               piece.show())
                pieces.append(piece.body)
                offset = ph["X-Log-Next-Offset"]
                if offset == ph["X-Log-Size"]:
                    break
            run.expect(b"".join(pieces) == whole.body,
                       "following the log with offset/limit gives what tail gives", "")
            tail = get(f"{log_target}?tail=2")
            check_log(run, tail, "the last two lines")
            lines = tail.body.decode("utf-8", "replace").splitlines(keepends=True)
            run.expect(len(lines) == 2 and all(line.endswith("\n") for line in lines)
                       and whole.body.endswith(tail.body),
                       "tail=2 is the last two lines", tail.show())

        # A job waiting for its retry: attempts, then cancelled while it waits (200).
        _, (flaky_job,) = trigger(["flaky"])
        job = wait_job(flaky_job, lambda j: j["attempt"] == 2, "flaky fails and waits to retry")
        run.expect(job["status"] == "queued" and job["max_attempts"] == 2
                   and job["next_attempt_at"] is not None
                   and len(job["previous_attempts"]) == 1
                   and job["previous_attempts"][0]["attempt"] == 1
                   and job["previous_attempts"][0]["error"] == "upstream returned 503",
                   "a job waiting for its retry shows its attempts", json.dumps(job))
        text = get(f"/api/collectors/runs/job/{flaky_job}/log").body.decode("utf-8", "replace")
        run.expect("attempt 1 of 2: started" in text and "flaky: trying\n" in text,
                   "the retried job's log holds its first attempt", text)
        listed = collectors("a job waiting for its retry")
        if listed:
            run.expect(listed["flaky"]["queued"] == 1
                       and (listed["flaky"]["active_run"] or {}).get("attempt") == 2,
                       "a job waiting for its retry is queued", json.dumps(listed["flaky"]))
        reply = run.validate(daemon.request("DELETE", f"/api/collectors/runs/job/{flaky_job}"),
                             200, "waiting for a retry: cancelled")
        job = run.validate(get(f"/api/collectors/runs/job/{flaky_job}"), 200,
                           "cancelled while waiting for a retry")
        if job.status == 200:
            run.expect(job.json()["status"] == "cancelled"
                       and len(job.json()["previous_attempts"]) == 1,
                       "cancelled before its retry, with its first attempt", job.show())

        # After the runs: nothing active, the last run of each.
        listed = collectors("after the runs")
        if listed:
            last = {name: (c["last_run"] or {}).get("status") for name, c in listed.items()}
            run.expect(all(c["active_run"] is None and c["running"] == 0 and c["queued"] == 0
                           for c in listed.values())
                       and last == {"blocker": "cancelled", "chatty": "completed",
                                    "flaky": "cancelled", "nightly": None, "ticker": None}
                       and listed["chatty"]["last_run"]["job_id"] == done_job,
                       "GET /api/collectors shows each collector's last finished run",
                       json.dumps(listed))
        run.validate(get("/api/collectors/history?limit=20"), 200, "after cancels and retries")
        run.validate(get("/api/collectors/runs/latest"), 200, "after cancels and retries")

        # What the new routes refuse.
        for query, label in (("tail=3&offset=0", "tail with offset"),
                             ("tail=3&limit=10", "tail with limit"),
                             ("tail=abc", "tail not a number"), ("tail=10001", "tail too large"),
                             ("tail=-1", "negative tail"), ("offset=-1", "negative offset"),
                             ("offset=1.5", "offset not whole"),
                             ("offset=99999999999999999999", "offset too large"),
                             ("limit=0", "limit 0"), ("limit=1048577", "limit too large"),
                             ("limit=", "empty limit")):
            run.validate(get(f"{log_target}?{query}"), 400, label)
        run.validate(get("/api/collectors/runs/job/zz_00000000/log"), 404, "no such job")
        run.validate(get("/api/collectors/runs/job/zz_00000000/log?tail=x"), 404,
                     "no such job, bad parameter")
        run.validate(get("/api/collectors/runs/job/ZZ_1/log"), 404, "malformed job ID")
        for method, target in (("POST", "/api/collectors/runs/job/zz_00000000/cancel"),
                               ("DELETE", "/api/collectors/runs/job/zz_00000000"),
                               ("DELETE", "/api/collectors/runs/job/not-a-job"),
                               ("POST", "/api/collectors/runs/batch/bc_00000000/cancel"),
                               ("DELETE", "/api/collectors/runs/batch/bc_00000000"),
                               ("POST", "/api/collectors/runs/batch/not-a-batch/cancel")):
            run.validate(daemon.request(method, target), 404, "nothing to cancel")
    finally:
        code = daemon.stop()
        run.expect(code == 0, "the daemon that runs one job at a time stops cleanly on SIGTERM",
                   f"exit code {code}\n{daemon.log()}")
        if run.results.failed:
            print(f"--- the one-at-a-time daemon's output ({folder}):\n{daemon.log()}")


def auth_flow(run, binary, root):
    folder, _ = make_folder(root, "auth", auth=True, requests_per_minute=3)
    daemon = Daemon(binary, folder)
    try:
        reader = {"X-API-Key": READER_KEY}
        run.validate(daemon.request("GET", "/api/collectors/history"), 401, "no credentials")
        run.validate(daemon.request("GET", "/api/collectors/history",
                                    headers={"X-API-Key": "wrong-key-0123456789"}), 401,
                     "a wrong key")
        run.validate(daemon.request("GET", "/api/collectors/history",
                                    headers={"Authorization": "Bearer not.a.token"}), 401,
                     "a malformed token")
        run.validate(daemon.request("POST", "/api/collectors/run", '{"collectors": ["alpha"]}',
                                    headers=reader), 403, "read scope cannot run")
        run.validate(daemon.request("GET", "/api/collectors"), 401, "no credentials")
        run.validate(daemon.request("DELETE", "/api/collectors/runs/job/zz_00000000",
                                    headers=reader), 403, "read scope cannot cancel")
        run.validate(daemon.request("POST", "/api/collectors/runs/batch/bc_00000000/cancel",
                                    headers=reader), 403, "read scope cannot cancel")
        run.validate(daemon.request("POST", "/api/collectors/runs/job/zz_00000000/cancel",
                                    headers={"X-API-Key": RUNNER_KEY}), 404,
                     "the run scope may cancel")
        run.validate(daemon.request("PUT", "/api/collectors/runs/job/zz_00000000",
                                    '{"progress": 5}'), 401, "no credentials")
        run.validate(daemon.request("PUT", "/api/collectors/runs/job/zz_00000000",
                                    '{"progress": 5}', headers=reader), 403,
                     "read scope cannot report progress")
        run.validate(daemon.request("PUT", "/api/collectors/runs/job/zz_00000000",
                                    '{"progress": 5}', headers={"X-API-Key": RUNNER_KEY}), 404,
                     "the run scope may report progress")
        run.validate(daemon.request("GET", "/metrics"), 401, "metrics are private by default")
        run.validate(daemon.request("GET", "/metrics", headers=reader), 200)
        run.validate(daemon.request("GET", "/healthz"), 200, "public")
        run.validate(daemon.request("GET", "/api/openapi.json"), 200, "public")
        run.validate(daemon.request("GET", "/api/docs"), 200, "public")
        for i in range(3):
            run.validate(daemon.request("GET", "/api/collectors/history", headers=reader), 200,
                         f"request {i + 1} of 3 a minute")
        reply = run.validate(daemon.request("GET", "/api/collectors/runs/latest", headers=reader),
                             429, "over the limit")
        run.expect(reply.header("X-RateLimit-Remaining") == "0", "429 says 0 remaining",
                   reply.show())
        run.validate(daemon.request("GET", "/api/collectors/runs/job/zz_00000000/log",
                                    headers=reader), 429, "over the limit")
        run.validate(daemon.request("GET", "/api/collectors", headers=reader), 200,
                     "not rate limited")
    finally:
        code = daemon.stop()
        run.expect(code == 0, "the daemon with credentials stops cleanly on SIGTERM",
                   f"exit code {code}\n{daemon.log()}")


class FlakyReceiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that answers 500 to its first request and 200 to the others."""

    requests = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        FlakyReceiver.requests += 1
        self.send_response(500 if FlakyReceiver.requests == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def webhook_flow(run, binary, root):
    """GET /api/webhooks/deliveries listing a delivery that needed a retry and one still pending
    to an endpoint nobody listens on (attempts without an HTTP status), and its 400s."""
    receiver = http.server.HTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # closed again before the daemon starts
    extra = ("[webhooks]\nretry_backoff = 100ms\nretry_backoff_max = 100ms\nmax_attempts = 1000\n"
             f"[webhook.up]\nurl = http://127.0.0.1:{receiver.server_address[1]}/hook\n"
             "secret = s\nevents = batch.completed\n"
             f"[webhook.down]\nurl = http://127.0.0.1:{closed_port}/hook\n"
             "secret = s\nevents = *\n")
    folder, _ = make_folder(root, "webhooks", main_extra=extra,
                            collectors=(("alpha", "#!/bin/sh\nexit 0\n", ""),))
    daemon = Daemon(binary, folder)
    get = lambda target: daemon.request("GET", target)  # noqa: E731
    try:
        run.validate(get("/api/webhooks/deliveries"), 200, "nothing has ended yet")
        run.validate(daemon.request("POST", "/api/collectors/run", '{"collectors": ["alpha"]}'),
                     201)

        def settled(body):
            states = {(d["endpoint"], d["state"], d["attempt_count"] >= 2)
                      for d in body["deliveries"]}
            return len(body["deliveries"]) == 3 and ("up", "delivered", True) in states and \
                ("down", "pending", True) in states
        reply, reached = poll(daemon, "/api/webhooks/deliveries", settled)
        if run.expect(reached, "one delivery retried then delivered, two pending", reply.show()):
            run.validate(reply, 200, "delivered after a retry, and pending")
        run.validate(get("/api/webhooks/deliveries?state=pending&limit=1"), 200, "filtered")
        run.validate(get("/api/webhooks/deliveries?limit=0"), 400, "limit=0")
        run.validate(get("/api/webhooks/deliveries?state=done"), 400, "an unknown state")
    finally:
        daemon.stop()
        receiver.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", required=True, help="the collectord binary")
    parser.add_argument("--spec", help="http/openapi.json, to compare with what is served")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="collectord-openapi-")
    run = Run(Spec({"paths": {}}))
    daemon = None
    try:
        folder, release = make_folder(root, "main")
        daemon = Daemon(args.daemon, folder)
        bootstrap = daemon.request("GET", "/api/openapi.json")
        if bootstrap.status != 200:
            raise RuntimeError(f"cannot read the OpenAPI document\n{bootstrap.show()}")
        run.spec = Spec(bootstrap.json())
        check_document(run, daemon, args.spec)
        main_flow(run, daemon, release)
        error_flow(run, daemon)
        code = daemon.stop()
        run.expect(code == 0, "the daemon stops cleanly on SIGTERM",
                   f"exit code {code}\n{daemon.log()}")
        control_flow(run, args.daemon, root)
        auth_flow(run, args.daemon, root)
        webhook_flow(run, args.daemon, root)
    except Exception as error:  # a crash of the test itself still ends with the tally
        run.results.fail("the test ran to its end", f"{type(error).__name__}: {error}")
    finally:
        if daemon is not None:
            daemon.stop()  # a no-op when it has already stopped
            if run.results.failed:
                print(f"--- the daemon's output ({daemon.folder}):\n{daemon.log()}")
        if os.environ.get("COLLECTORD_KEEP_TEST_DIRS"):
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{run.results.passed} passed, {run.results.failed} failed")
    return 1 if run.results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
