#!/usr/bin/python3
"""collectord's benchmark suite: every figure next to a baseline measured in the same run.

Started by bench/run.sh, which builds the release binaries first. Each scenario starts the
real daemon (bin/collectord) in a temporary folder with a written configuration, drives it
with wrk, HTTP requests and real collectors, and measures a baseline on the same machine in
the same run: nginx serving the same JSON, a Flask + gunicorn peer, a raw posix_spawn loop,
the same writer piped into cat. The report is Markdown (docs/performance.md, or
build/bench-quick.md with --quick).

A scenario that errors (a daemon that does not start, a job that fails, a tool that is
missing) is reported as an error and makes the exit status non-zero; a number that misses its
target never does.
"""

import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
API_KEYS = [f"bench-key-{i:02d}-{hashlib.sha256(str(i).encode()).hexdigest()[:16]}"
            for i in range(8)]
TERMINAL = ("completed", "failed", "cancelled")


class ScenarioError(Exception):
    """A scenario could not produce its figure."""


# --- small utilities ------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, condition, timeout, interval=0.01):
    """Polls `condition` until it returns a true value, which it returns."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_for_port(port, timeout=20):
    def accepting():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(f"port {port} to accept connections", accepting, timeout, 0.05)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def peak_rss_kb(pid):
    return int(proc_status(pid)["VmHWM"].split()[0])


def reset_peak_rss(pid):
    """Makes VmHWM start again from the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread: wake-ups of the process."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            status = proc_status(f"{pid}/task/{task}")
        except OSError:
            continue
        total += int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
    return total


def open_fds(pid):
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return targets


def first_line(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def deb_version(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                         text=True)
    return out.stdout.strip() if out.returncode == 0 else "not installed"


def machine_info(build_dir):
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    compiler = "unknown"
    cache = Path(build_dir) / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", cache.read_text(), re.M)
        if m:
            compiler = first_line([m.group(1), "--version"])
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return {
        "collectord commit": commit,
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "compiler": compiler,
        "Poco": deb_version("libpoco-dev"),
        "SQLite": deb_version("libsqlite3-0"),
        "nginx": first_line(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": deb_version("wrk"),
        "gunicorn": deb_version("gunicorn"),
        "Flask": deb_version("python3-flask"),
    }


# --- the daemon -----------------------------------------------------------------------------

class Daemon:
    """The real collectord in a folder of its own, configured for one scenario."""

    def __init__(self, bindir, root, collectors, max_concurrent=8, threads=16, name="daemon",
                 store="sqlite:db/collectord.db", extra=""):
        self.bindir = Path(bindir)
        self.root = Path(root) / name
        self.root.mkdir(parents=True)
        (self.root / "collectors.d").mkdir()
        for collector, keys in collectors.items():
            text = "[collector]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
            (self.root / "collectors.d" / f"{collector}.ini").write_text(text)
        (self.root / "api_keys").write_text(
            "".join(f"{key} read,run,admin bench{i}\n" for i, key in enumerate(API_KEYS)))
        (self.root / "collectord.ini").write_text(
            "[http]\naddress = 127.0.0.1\nport = 0\n"
            f"threads = {threads}\n"
            f"[store]\nurl = {store}\n"
            "[collectors]\ndirectory = collectors.d\n"
            f"max_concurrent = {max_concurrent}\nshutdown_grace = 5s\n"
            "[auth]\nrequired = true\napi_keys_file = api_keys\npublic_metrics = true\n"
            # The largest limit there is: the benchmarks must never see a 429.
            "[ratelimit]\nrequests_per_minute = 1000000\n"
            "[logs]\ndirectory = logs\n[docs]\ndirectory = docs\n" + extra)
        self.db_path = self.root / "db" / "collectord.db"
        self.process = None
        self.port = None
        self.connection = None

    def start(self):
        port_file = self.root / "port"
        port_file.unlink(missing_ok=True)
        self.output = open(self.root / "collectord.out", "ab")
        self.process = subprocess.Popen(
            [str(self.bindir / "collectord"), f"--config={self.root / 'collectord.ini'}",
             f"--port-file={port_file}"],
            stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def listening():
            if self.process.poll() is not None:
                raise ScenarioError(f"collectord exited with {self.process.returncode}: "
                                    + self.tail())
            return port_file.exists() and port_file.read_text().strip()
        self.port = int(wait_for("collectord to listen", listening, 30))
        self.connection = None
        return self

    def tail(self, lines=5):
        try:
            text = (self.root / "collectord.out").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ScenarioError("collectord did not stop within 60 s of SIGTERM")
        self.output.close()
        if code != 0:
            raise ScenarioError(f"collectord stopped with exit code {code}: {self.tail()}")

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": API_KEYS[0]}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None  # the server closed an idle keep-alive: try once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise ScenarioError(f"GET {path} answered {status}: {body[:200]!r}")
        return json.loads(body)

    def trigger(self, names):
        status, body = self.request("POST", "/api/collectors/run", {"collectors": names})
        if status != 201:
            raise ScenarioError(f"trigger answered {status}: {body[:300]!r}")
        return json.loads(body)

    def metrics(self):
        status, body = self.request("GET", "/metrics")
        if status != 200:
            raise ScenarioError(f"/metrics answered {status}")
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def db(self):
        return sqlite3.connect(self.db_path, timeout=30)

    def wait_batch(self, batch_id, jobs, timeout, statuses=TERMINAL, interval=0.005):
        """Polls the store (not the API) until every job of the batch has one of `statuses`."""
        marks = ",".join("?" * len(statuses))
        db = self.db()
        try:
            def done():
                (n,) = db.execute(f"SELECT COUNT(*) FROM job_runs WHERE batch_id = ? AND "
                                  f"status IN ({marks})", (batch_id, *statuses)).fetchone()
                return n >= jobs
            wait_for(f"{jobs} jobs of {batch_id} to be {'/'.join(statuses)}", done, timeout,
                     interval)
            return dict(db.execute("SELECT status, COUNT(*) FROM job_runs WHERE batch_id = ? "
                                   "GROUP BY status", (batch_id,)).fetchall())
        finally:
            db.close()


# --- load generators ------------------------------------------------------------------------

WRK_SCRIPT = """
-- One API key per wrk thread: every thread is a client of its own for the rate limiter.
local keys = {%s}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("key", keys[(counter - 1) %% #keys + 1])
end
function init(args)
  wrk.headers["X-API-Key"] = key
end
"""


def parse_duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ScenarioError(f"cannot read wrk latency '{text}'")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url, connections, threads, seconds, workdir):
    script = Path(workdir) / "keys.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f'"{k}"' for k in API_KEYS))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True,
                         timeout=seconds + 60)
    if out.returncode != 0:
        raise ScenarioError(f"wrk failed: {out.stderr.strip()}")
    text = out.stdout
    result = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
              "requests": int(re.search(r"(\d+) requests in", text).group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        result[f"p{pct}_ms"] = parse_duration_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return result


class Nginx:
    """nginx serving files from a folder of its own, the way it serves any static site."""

    def __init__(self, root):
        self.root = Path(root) / "nginx"
        (self.root / "www").mkdir(parents=True)
        (self.root / "tmp").mkdir()
        self.port = free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(f"""{user}worker_processes auto;
daemon off;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {self.root}/access.log;
  client_body_temp_path {self.root}/tmp/body;
  proxy_temp_path {self.root}/tmp/proxy;
  fastcgi_temp_path {self.root}/tmp/fastcgi;
  uwsgi_temp_path {self.root}/tmp/uwsgi;
  scgi_temp_path {self.root}/tmp/scgi;
  types {{ }}
  default_type application/json;
  keepalive_requests 1000;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root}/www;
  }}
}}
""")
        self.process = None

    def add(self, url_path, body):
        path = self.root / "www" / url_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def start(self):
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr", "wb"))
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Gunicorn:
    """The Flask peer (bench/peers/flask_status.py) under gunicorn with 2 sync workers."""

    def __init__(self, root, db_path, keys_path):
        self.root = Path(root)
        self.port = free_port()
        self.env = dict(os.environ, BENCH_DB=str(db_path), BENCH_KEYS=str(keys_path))
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["/usr/bin/gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{self.port}",
             "--chdir", str(REPO / "bench" / "peers"), "--log-level", "warning",
             "flask_status:app"],
            env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(self.root / "gunicorn.stderr", "wb"))
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- figures --------------------------------------------------------------------------------

class Row:
    """One line of the summary table."""

    def __init__(self, scenario, figure, value, baseline, ratio, target, met, detail=""):
        self.scenario, self.figure, self.value, self.baseline = scenario, figure, value, baseline
        self.ratio, self.target, self.met, self.detail = ratio, target, met, detail

    @property
    def verdict(self):
        if self.met is None:
            return self.detail or "not measured"
        return "**met**" if self.met else "**missed**"


def fmt_rate(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.3f} ms" if x < 1 else f"{x:.2f} ms"


def best_of(runs, key):
    return max(runs, key=lambda r: r[key])


def measure_wrk(name, url, settings, rounds, workdir):
    runs = []
    for _ in range(rounds):
        r = wrk(url, settings["connections"], settings["threads"], settings["seconds"], workdir)
        if r["non_2xx"]:
            raise ScenarioError(f"{name}: {r['non_2xx']} responses were not 2xx")
        runs.append(r)
    return best_of(runs, "requests_per_second")


# --- scenarios ------------------------------------------------------------------------------

def true_collectors(prefix, count, width):
    return {f"{prefix}{i:0{width}d}": {"command": "/bin/true"} for i in range(count)}


def scenario_api(ctx):
    """Job and batch status under 64 keep-alive connections, against nginx and a Flask peer."""
    collectors = {"one": {"command": "/bin/true"}, **true_collectors("b", 50, 2)}
    daemon = ctx.daemon(collectors, threads=ctx.http_threads, name="api").start()
    nginx = gunicorn = None
    try:
        job_id = daemon.trigger(["one"])["collectors"][0]["job_id"]
        batch = daemon.trigger([f"b{i:02d}" for i in range(50)])
        batch_id = batch["batch_id"]
        daemon.wait_batch(batch_id, 50, 60)
        job_id_batch = daemon.get_json(f"/api/collectors/runs/job/{job_id}")["batch_id"]
        daemon.wait_batch(job_id_batch, 1, 60)
        job_path = f"/api/collectors/runs/job/{job_id}"
        batch_path = f"/api/collectors/runs/batch/{batch_id}"
        _, job_body = daemon.request("GET", job_path)
        _, batch_body = daemon.request("GET", batch_path)
        nginx = Nginx(ctx.workdir)
        nginx.add(job_path, job_body)
        nginx.add(batch_path, batch_body)
        nginx.start()
        gunicorn = Gunicorn(ctx.workdir, daemon.db_path, daemon.root / "api_keys").start()
        status, peer_body = http_get(gunicorn.port, job_path)
        if status != 200 or json.loads(peer_body) != json.loads(job_body):
            raise ScenarioError(f"the Flask peer's answer differs from collectord's: "
                                f"{peer_body[:300]!r}")
        s = ctx.wrk_settings
        ours, theirs, flask = {}, {}, None
        for _ in range(ctx.rounds):  # interleaved, so a burst of other load hits both sides
            for label, url, where in (
                    ("job", f"http://127.0.0.1:{daemon.port}{job_path}", ours),
                    ("job", f"http://127.0.0.1:{nginx.port}{job_path}", theirs),
                    ("batch", f"http://127.0.0.1:{daemon.port}{batch_path}", ours),
                    ("batch", f"http://127.0.0.1:{nginx.port}{batch_path}", theirs)):
                r = measure_wrk(label, url, s, 1, ctx.workdir)
                if label not in where or r["requests_per_second"] > where[label]["requests_per_second"]:
                    where[label] = r
            r = measure_wrk("flask", f"http://127.0.0.1:{gunicorn.port}{job_path}", s, 1,
                            ctx.workdir)
            if flask is None or r["requests_per_second"] > flask["requests_per_second"]:
                flask = r
        rss_after = rss_kb(daemon.pid)
    finally:
        for server in (gunicorn, nginx):
            if server:
                server.stop()
        daemon.stop()
    how = (f"wrk -t{s['threads']} -c{s['connections']} -d{s['seconds']}s, best of "
           f"{ctx.rounds}; collectord [http] threads = {ctx.http_threads}")
    j, nj, b, nb = ours["job"], theirs["job"], ours["batch"], theirs["batch"]
    ctx.details["api"] = [
        ("collectord job status", j), ("nginx, same body", nj), ("Flask + gunicorn", flask),
        ("collectord batch status (50 jobs)", b), ("nginx, same body", nb)]
    ctx.notes["api"] = (f"{how}. Job body {len(job_body)} bytes, batch body {len(batch_body)} "
                        f"bytes. collectord's RSS after the load: {rss_after / 1024:.1f} MB.")
    return [
        Row("job status API", "requests/s", fmt_rate(j["requests_per_second"]),
            f"nginx {fmt_rate(nj['requests_per_second'])}",
            f"{j['requests_per_second'] / nj['requests_per_second']:.0%}", "≥ 50 % of nginx",
            j["requests_per_second"] >= 0.5 * nj["requests_per_second"]),
        Row("job status API", "p99 latency", fmt_ms(j["p99_ms"]), f"nginx {fmt_ms(nj['p99_ms'])}",
            f"{j['p99_ms'] / nj['p99_ms']:.1f} ×", "≤ 5 ms", j["p99_ms"] <= 5.0),
        Row("job status API vs Python", "requests/s", fmt_rate(j["requests_per_second"]),
            f"Flask + gunicorn {fmt_rate(flask['requests_per_second'])}",
            f"{j['requests_per_second'] / flask['requests_per_second']:.1f} ×", "≥ 8 ×",
            j["requests_per_second"] >= 8 * flask["requests_per_second"]),
        Row("batch status API (50 jobs)", "requests/s", fmt_rate(b["requests_per_second"]),
            f"nginx {fmt_rate(nb['requests_per_second'])}",
            f"{b['requests_per_second'] / nb['requests_per_second']:.0%}", "≥ 35 % of nginx",
            b["requests_per_second"] >= 0.35 * nb["requests_per_second"]),
    ]


def http_get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"X-API-Key": API_KEYS[0]})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def scenario_spawn(ctx):
    """A batch of N /bin/true jobs, 4 at once: trigger to all terminal in the store."""
    n = ctx.scale(1000, 200)
    width = len(str(n - 1))
    names = [f"t{i:0{width}d}" for i in range(n)]
    daemon = ctx.daemon(true_collectors("t", n, width), max_concurrent=4, name="spawn").start()
    runs, raws = [], []
    try:
        for _ in range(ctx.rounds):  # alternated with the baseline, best of each
            started = time.monotonic()
            batch_id = daemon.trigger(names)["batch_id"]
            statuses = daemon.wait_batch(batch_id, n, 600, interval=0.002)
            runs.append(time.monotonic() - started)
            if statuses.get("completed") != n:
                raise ScenarioError(f"not every job completed: {statuses}")
            out = subprocess.run([str(ctx.bindir / "spawn_baseline"), str(n), "4", "/bin/true"],
                                 capture_output=True, text=True, check=True)
            raws.append(float(re.search(r"runs_per_second=([\d.]+)", out.stdout).group(1)))
    finally:
        daemon.stop()
    seconds, raw = min(runs), max(raws)
    ours = n / seconds
    ctx.notes["spawn"] = (f"{n} jobs in {seconds:.2f} s (trigger to the last terminal row, the "
                          f"store polled every 2 ms; best of {ctx.rounds}); the baseline ran {n} × "
                          f"/bin/true in {n / raw:.2f} s (best of {ctx.rounds}).")
    return [Row("spawn", f"jobs/s, batch of {n} × /bin/true, max_concurrent = 4",
                fmt_rate(ours), f"posix_spawn + waitpid {fmt_rate(raw)}", f"{ours / raw:.0%}",
                "≥ 50 % of the raw rate", ours >= 0.5 * raw)]


def scenario_progress(ctx):
    """A collector writing N protocol lines as fast as it can, supervised to completed."""
    n = ctx.scale(1_000_000, 200_000)
    writer = ctx.bindir / "progress_writer"
    daemon = ctx.daemon({"writer": {"command": str(writer), "args": str(n)}},
                        name="progress").start()
    try:
        daemon.metrics()  # warm the HTTP path and the store's session before the baseline
        rss_before = rss_kb(daemon.pid)
        peak_reset = reset_peak_rss(daemon.pid)
        best = None
        for _ in range(ctx.rounds + 1):  # best of a few: one run lasts well under a second
            before = daemon.metrics()
            started = time.monotonic()
            batch_id = daemon.trigger(["writer"])["batch_id"]
            statuses = daemon.wait_batch(batch_id, 1, 600, interval=0.002)
            run_seconds = time.monotonic() - started
            if statuses.get("completed") != 1:
                raise ScenarioError(f"the writer did not complete: {statuses}")
            after = daemon.metrics()
            lines = (after["collectord_progress_lines_total"]
                     - before["collectord_progress_lines_total"])
            dropped = (after["collectord_progress_lines_dropped_total"]
                       - before["collectord_progress_lines_dropped_total"])
            if lines != n or dropped:
                raise ScenarioError(f"collectord read {lines:.0f} lines ({dropped:.0f} dropped), "
                                    f"not {n}")
            run_writes = None
            if "collectord_store_writes_total" in after:
                run_writes = (after["collectord_store_writes_total"]
                              - before["collectord_store_writes_total"])
            if best is None or run_seconds < best[0]:
                best = (run_seconds, run_writes)
        rss_peak = peak_rss_kb(daemon.pid) if peak_reset else rss_kb(daemon.pid)
    finally:
        daemon.stop()
    seconds, writes = best
    # Baseline: the same writer into cat, timed the same way (from a shell that starts both).
    base = []
    for _ in range(3):
        t = time.monotonic()
        subprocess.run(f"'{writer}' {n} | cat > /dev/null", shell=True, check=True)
        base.append(time.monotonic() - t)
    base_seconds = min(base)
    py = time.monotonic()
    subprocess.run(f"'{writer}' {n} | /usr/bin/python3 -c 'import json,sys\n"
                   f"for line in sys.stdin.buffer: json.loads(line)'", shell=True, check=True)
    py_seconds = time.monotonic() - py
    ours, raw = n / seconds, n / base_seconds
    growth_mb = (rss_peak - rss_before) / 1024
    # One write per flush interval (100 ms) while lines arrive, plus the start and the end.
    write_bound = seconds / 0.1 + 5
    ctx.notes["progress"] = (
        f"{n:,} lines ({n * 55 / 1e6:.0f} MB) read in {seconds:.2f} s, trigger to completed in "
        f"the store (best of {ctx.rounds + 1}); `writer | cat > /dev/null` took {base_seconds:.3f} s (best of 3); a Python "
        f"`json.loads` loop over the same lines took {py_seconds:.2f} s "
        f"({n / py_seconds / raw:.0%} of the raw rate). RSS {rss_before / 1024:.1f} MB before, "
        f"peak {rss_peak / 1024:.1f} MB during the runs"
        + ("" if peak_reset else " (peak not resettable here: RSS after the run)") + ".")
    rows = [Row("progress ingestion", f"lines/s, {n:,} lines", fmt_rate(ours),
                f"writer piped to cat {fmt_rate(raw)}", f"{ours / raw:.0%}", "≥ 33 % of the line rate",
                ours >= 0.33 * raw)]
    if writes is None:
        rows.append(Row("progress ingestion", "store writes during the run", "n/a", "—", "—",
                        "bounded rate", None, "not measured: no store-write counter in /metrics"))
    else:
        rows.append(Row("progress ingestion", "store writes during the run",
                        f"{writes:.0f} ({writes / seconds:.1f}/s)", f"{n:,} lines",
                        f"1 per {n / max(writes, 1):,.0f} lines",
                        "bounded (≤ 10/s + start and end)", writes <= write_bound))
    rows.append(Row("progress ingestion", "daemon RSS growth", f"{growth_mb:.1f} MB",
                    f"{rss_before / 1024:.1f} MB before", "—", "< 10 MB", growth_mb < 10))
    return rows


def generate_store(db_path, rows, collectors):
    """Fills job_runs with `rows` finished jobs in batches of 10, plus one 50-job batch
    (bc_99999999), directly with SQLite in one transaction, as collectord's schema has them."""
    db = sqlite3.connect(db_path)
    base = 1_700_000_000_000_000  # 2023-11-14, microseconds
    db.execute("BEGIN")
    db.execute("""
      WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ? - 1)
      INSERT INTO job_batches (batch_id, status, priority, progress_percent, message, error,
                               started_at, updated_at, ended_at, estimated_completion,
                               duration_seconds)
      SELECT printf('bc_%08d', i), 'completed', 'normal', 100, 'All collectors completed', NULL,
             ? + i * 60000000, ? + i * 60000000 + 5000000, ? + i * 60000000 + 5000000, NULL, 5.0
      FROM seq""", ((rows + 9) // 10, base, base, base))
    db.execute("""
      WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ? - 1)
      INSERT INTO job_runs (job_id, batch_id, position, collector, job_name, status,
                            progress_percent, message, error, started_at, updated_at, ended_at,
                            duration_seconds, attempt, pid, max_attempts, next_attempt_at, owner)
      SELECT printf('c%d_%08d', (i % ?) / 10, i), printf('bc_%08d', i / 10), i % 10,
             printf('c%02d', i % ?), printf('c%02d-collector', i % ?),
             CASE WHEN i % 20 = 7 THEN 'failed' ELSE 'completed' END, 100,
             'Collection completed', CASE WHEN i % 20 = 7 THEN 'exit code 1' END,
             ? + (i / 10) * 60000000, ? + (i / 10) * 60000000 + 5000000,
             ? + (i / 10) * 60000000 + 5000000, 5.0, 1, 1000 + i % 30000, 1, NULL, 'bench'
      FROM seq""", (rows, collectors, collectors, collectors, base, base, base))
    last = base + rows * 6_000_000 + 60_000_000
    db.execute("INSERT INTO job_batches VALUES ('bc_99999999', 'completed', 'normal', 100, "
               "'All collectors completed', NULL, ?, ?, ?, NULL, 5.0)", (last, last + 5_000_000,
                                                                         last + 5_000_000))
    db.executemany(
        "INSERT INTO job_runs (job_id, batch_id, position, collector, job_name, status, "
        "progress_percent, message, started_at, updated_at, ended_at, duration_seconds, "
        "attempt, max_attempts, owner) VALUES (?, 'bc_99999999', ?, ?, ?, 'completed', 100, "
        "'Collection completed', ?, ?, ?, 5.0, 1, 1, 'bench')",
        [(f"c{(p % collectors) // 10}_{99_000_000 + p:08d}", p, f"c{p % collectors:02d}",
          f"c{p % collectors:02d}-collector", last, last + 5_000_000, last + 5_000_000)
         for p in range(50)])
    db.execute("COMMIT")
    db.close()


def scenario_store(ctx):
    """p50 of the read endpoints with a big job_runs table against a small one."""
    big = ctx.scale(1_000_000, 20_000)
    small = 1000
    collectors = {f"c{i:02d}": {"command": "/bin/true"} for i in range(50)}
    endpoints = {
        "history?limit=10": "/api/collectors/history?limit=10",
        "latest (5 collectors)": "/api/collectors/runs/latest?collectors=c00,c01,c02,c03,c04",
        "job status": None,  # a job in the middle of the table, set per store
        "batch status (50 jobs)": "/api/collectors/runs/batch/bc_99999999",
    }
    results, generation = {}, {}
    for rows in (small, big):
        daemon = ctx.daemon(collectors, name=f"store{rows}")
        daemon.start()
        daemon.stop()  # the schema is collectord's own: it migrates an empty store at start
        t = time.monotonic()
        generate_store(daemon.db_path, rows, 50)
        generation[rows] = time.monotonic() - t
        middle = rows // 2
        paths = dict(endpoints, **{"job status":
                                   f"/api/collectors/runs/job/c{(middle % 50) // 10}_{middle:08d}"})
        daemon.start()
        try:
            results[rows] = {}
            for name, path in paths.items():
                daemon.get_json(path)  # a 404 or 400 here would make every figure meaningless
                r = measure_wrk(name, f"http://127.0.0.1:{daemon.port}{path}",
                                dict(connections=1, threads=1, seconds=ctx.store_seconds),
                                ctx.rounds, ctx.workdir)
                results[rows][name] = r
        finally:
            daemon.stop()
    ctx.notes["store"] = (
        f"One wrk connection, {ctx.store_seconds} s per endpoint, best of {ctx.rounds}. Rows "
        f"generated directly in SQLite in one transaction ({big:,} rows in "
        f"{generation[big]:.1f} s), in batches of 10 over 50 collectors, plus one 50-job batch.")
    rows_out = []
    for name in endpoints:
        b, s = results[big][name]["p50_ms"], results[small][name]["p50_ms"]
        rows_out.append(Row("store at scale", f"p50 of {name}, {big:,} rows", fmt_ms(b),
                            f"{small:,} rows {fmt_ms(s)}", f"{b / s:.2f} ×", "≤ 2 ×",
                            b <= 2 * s))
    return rows_out


def scenario_many(ctx):
    """N collectors sleeping at once: RSS per live job, and no fd left once they end."""
    n = ctx.scale(2000, 200)
    width = len(str(n - 1))
    collectors = {f"s{i:0{width}d}": {"command": "/bin/sleep", "args": "600"} for i in range(n)}
    daemon = ctx.daemon(collectors, max_concurrent=n, name="many").start()
    try:
        daemon.metrics()
        daemon.get_json("/api/collectors/history?limit=1")
        time.sleep(0.5)
        rss_idle = rss_kb(daemon.pid)
        fds_idle = open_fds(daemon.pid)
        batch_id = daemon.trigger(list(collectors))["batch_id"]
        started = time.monotonic()
        daemon.wait_batch(batch_id, n, 300, statuses=("running",), interval=0.05)
        start_seconds = time.monotonic() - started
        wait_for("every job to be running in the daemon",
                 lambda: daemon.metrics()["collectord_jobs_running"] >= n, 60, 0.1)
        rss_live = rss_kb(daemon.pid)
        fds_live = len(open_fds(daemon.pid))
        status, body = daemon.request("DELETE", f"/api/collectors/runs/batch/{batch_id}")
        if status not in (200, 202):
            raise ScenarioError(f"cancelling the batch answered {status}: {body[:200]!r}")
        statuses = daemon.wait_batch(batch_id, n, 120, interval=0.05)
        if statuses.get("cancelled") != n:
            raise ScenarioError(f"not every job ended cancelled: {statuses}")
        wait_for("the running gauge to reach 0",
                 lambda: daemon.metrics()["collectord_jobs_running"] == 0, 30, 0.05)
        fds_after = open_fds(daemon.pid)
        rss_after = rss_kb(daemon.pid)
    finally:
        daemon.stop()
    per_job_kb = (rss_live - rss_idle) / n
    leaked = [t for t in fds_after if t.startswith("pipe:") or "/logs/" in t]
    leaked_before = [t for t in fds_idle if t.startswith("pipe:") or "/logs/" in t]
    extra = len(leaked) - len(leaked_before)
    ctx.notes["many"] = (
        f"{n} × `/bin/sleep 600`, max_concurrent = {n}: all running {start_seconds:.1f} s after "
        f"the trigger. RSS {rss_idle / 1024:.1f} MB idle, {rss_live / 1024:.1f} MB with {n} "
        f"live jobs, {rss_after / 1024:.1f} MB once they were cancelled. Open descriptors: "
        f"{len(fds_idle)} idle, {fds_live} live, {len(fds_after)} after (pipes and job logs: "
        f"{len(leaked_before)} before, {len(leaked)} after).")
    return [
        Row("many live jobs", f"RSS growth per live job ({n} sleeping)", f"{per_job_kb:.1f} KB",
            f"idle {rss_idle / 1024:.1f} MB", "—", "< 50 KB per job", per_job_kb < 50),
        Row("many live jobs", "pipes and job logs still open after they end", str(extra),
            f"{len(fds_idle)} fds idle, {len(fds_after)} after", "—", "0 (no fd leak)",
            extra <= 0),
    ]


class IdleWatch:
    """An idle daemon with 50 collectors, watched while the other scenarios run."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.daemon = ctx.daemon(true_collectors("idle", 50, 2), name="idle").start()
        time.sleep(1.0)  # start-up work (migrations, recovery, the log sweep) is not idling
        self.t0 = time.monotonic()
        self.cpu0 = cpu_seconds(self.daemon.pid)
        self.switches0 = context_switches(self.daemon.pid)

    def finish(self):
        try:
            remaining = self.ctx.idle_seconds - (time.monotonic() - self.t0)
            if remaining > 0:
                time.sleep(remaining)
            seconds = time.monotonic() - self.t0
            cpu = cpu_seconds(self.daemon.pid) - self.cpu0
            switches = context_switches(self.daemon.pid) - self.switches0
            rss = rss_kb(self.daemon.pid)
            threads = len(os.listdir(f"/proc/{self.daemon.pid}/task"))
        finally:
            self.daemon.stop()
        share = cpu / seconds
        self.ctx.notes["idle"] = (
            f"Watched for {seconds:.0f} s (while the other scenarios ran; only its own CPU time "
            f"counts): {cpu:.2f} s of CPU, {switches / seconds:.1f} thread wake-ups per second, "
            f"{threads} threads, RSS {rss / 1024:.1f} MB.")
        return [
            Row("idle, 50 collectors", f"RSS after {seconds / 60:.0f} min" if seconds >= 60
                else f"RSS after {seconds:.0f} s", f"{rss / 1024:.1f} MB", "—", "—", "< 30 MB",
                rss < 30 * 1024),
            Row("idle, 50 collectors", "CPU", f"{share:.3%}",
                f"{switches / seconds:.1f} wake-ups/s", "—", "< 0.1 %", share < 0.001),
        ]


def scenario_soak(ctx):
    """The hook for the API soak test: runs it if its binary exists, else says so."""
    binary = Path(os.environ.get("BENCH_SOAK_BINARY", ctx.bindir / "soak_tests"))
    if not binary.exists():
        return [Row("API soak", "a long run of the API under load", "—", "—", "—",
                    "no errors, no growth", None,
                    f"skipped: `{binary.relative_to(REPO) if binary.is_relative_to(REPO) else binary}` "
                    "not built (set BENCH_SOAK_BINARY)")]
    seconds = ctx.soak_seconds
    env = dict(os.environ, COLLECTORD_SOAK_SECONDS=str(seconds))
    started = time.monotonic()
    out = subprocess.run([str(binary)], env=env, capture_output=True, text=True,
                         timeout=seconds + 600)
    took = time.monotonic() - started
    last = (out.stdout.strip().splitlines() or [""])[-1]
    if out.returncode != 0:
        raise ScenarioError(f"{binary.name} exited {out.returncode}: {last}")
    return [Row("API soak", f"{seconds} s under load", "passed", "—", "—",
                "no errors, no growth", True, "")]


# --- the report -----------------------------------------------------------------------------

class PostgresServer:
    """A PostgreSQL server of the benchmark's own (scripts/test-postgres.sh)."""

    def __init__(self, root):
        self.root = Path(root) / "postgres"
        out = subprocess.run([str(REPO / "scripts" / "test-postgres.sh"), "start", str(self.root)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise ScenarioError(f"cannot start PostgreSQL: {out.stderr.strip()[-300:]}")
        self.url = (self.root / "url").read_text().strip()

    def database(self, name):
        subprocess.run(["psql", self.url, "-qc", f"CREATE DATABASE {name}"], check=True,
                       capture_output=True)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def remove(self):
        subprocess.run([str(REPO / "scripts" / "test-postgres.sh"), "remove", str(self.root)],
                       capture_output=True)


def cluster_nodes(ctx, server, count, collectors, label, lease="2s", max_concurrent=4):
    url = server.database(label)
    nodes = []
    for i in range(count):
        node = ctx.daemon(collectors, max_concurrent=max_concurrent, name=f"{label}-n{i + 1}",
                          store=url, extra=(f"[node]\nid = n{i + 1}\ntags = t{i + 1}\n"
                                            f"[cluster]\nenabled = true\nlease_timeout = {lease}\n"
                                            "poll_interval = 200ms\n"))
        nodes.append(node.start())
    return nodes


def wait_batch_api(daemon, batch_id, timeout):
    def done():
        status = daemon.get_json(f"/api/collectors/runs/batch/{batch_id}")
        return status if status["status"] in TERMINAL else None
    return wait_for(f"batch {batch_id} to end", done, timeout, 0.02)


def scenario_cluster(ctx):
    """Jobs/s of one batch spread over 1, 2 and 3 nodes on one PostgreSQL; failover time."""
    n = ctx.scale(600, 120)
    width = len(str(n - 1))
    names = [f"t{i:0{width}d}" for i in range(n)]
    collectors = true_collectors("t", n, width)
    collectors["hold"] = {"command": "/bin/sleep", "args": "60", "nodes": "tag:t2"}
    server = PostgresServer(ctx.workdir)
    rates, failover = {}, None
    try:
        for count in (1, 2, 3):
            nodes = cluster_nodes(ctx, server, count, collectors, f"jobs{count}")
            try:
                started = time.monotonic()
                batch_id = nodes[0].trigger(names)["batch_id"]
                status = wait_batch_api(nodes[0], batch_id, 600)
                seconds = time.monotonic() - started
                if status["status"] != "completed":
                    raise ScenarioError(f"{count} nodes: the batch ended {status['status']}")
                rates[count] = n / seconds
            finally:
                for node in nodes:
                    node.stop()
        # Failover: a job on n2, n2 killed; n1 resolves it once the lease has run out.
        nodes = cluster_nodes(ctx, server, 2, {"hold": collectors["hold"]}, "failover")
        try:
            # n1 resolves other nodes' leases only once it has reached the database for a whole
            # lease (cluster.md): measured from a steady state, not from n1's start.
            time.sleep(2.5)
            job_id = nodes[0].trigger(["hold"])["collectors"][0]["job_id"]
            wait_for("the job to run on n2", lambda: nodes[0].get_json(
                f"/api/collectors/runs/job/{job_id}")["status"] == "running", 30, 0.02)
            killed = time.monotonic()
            nodes[1].process.kill()
            nodes[1].process.wait()
            job = wait_for("the job to be resolved", lambda: (lambda j: j if j["status"] in
                           TERMINAL else None)(nodes[0].get_json(
                               f"/api/collectors/runs/job/{job_id}")), 60, 0.02)
            failover = time.monotonic() - killed
            if job["error"] != "node n2 lost":
                raise ScenarioError(f"the lost node's job ended with {job['error']!r}")
        finally:
            nodes[0].stop()
    finally:
        server.remove()
    ctx.notes["cluster"] = (
        f"One batch of {n} × /bin/true triggered on the first node, `max_concurrent = 4` per node, "
        f"every node on one PostgreSQL 15 on this machine (fsync off, as in the tests), the batch "
        f"polled through the API every 20 ms until it ended. Nodes, database and jobs share the "
        f"{os.cpu_count()} cores. Failover: a `sleep 60` job on node n2, `kill -9` of n2; the time "
        f"until n1 answers the job `failed` with `node n2 lost`, with `lease_timeout = 2s` "
        f"(heartbeats every 667 ms).")
    one = rates[1]
    return [
        Row("cluster", f"jobs/s, batch of {n} × /bin/true over 1 / 2 / 3 nodes",
            " / ".join(fmt_rate(rates[k]) for k in (1, 2, 3)), f"1 node {fmt_rate(one)}",
            f"{rates[2] / one:.2f}× / {rates[3] / one:.2f}×",
            "grows with nodes until the database saturates", rates[2] >= one),
        Row("cluster failover", "kill -9 of a node → its job resolved by another",
            f"{failover:.2f} s", "lease_timeout 2 s", f"{failover / 2:.2f}×",
            "≤ lease_timeout + one heartbeat (2.67 s)", failover <= 2.67 + 0.5),
    ]


def render(ctx, rows, errors, started, minutes):
    mode = "quick (scaled down; smoke test only)" if ctx.quick else "full"
    out = ["# Performance", "",
           "Every figure here is measured next to a baseline in the same run on the same "
           "machine, and read as a ratio: absolute numbers move with the machine and its load "
           "(this one is shared with other work, so they are noisy), ratios much less. "
           "The whole page is written by `bench/run.sh`; do not edit it by hand "
           "(the analysis comes from `bench/analysis.md`).", "",
           f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, mode {mode}, "
           f"{minutes:.1f} minutes.", "",
           "| machine | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in ctx.machine.items()]
    out += ["", "## Summary", "",
            "| scenario | figure | collectord | baseline, same run | ratio | target | verdict |",
            "|---|---|---|---|---|---|---|"]
    def cell(text):
        return str(text).replace("|", "\\|")
    for r in rows:
        out.append("| " + " | ".join(cell(x) for x in (r.scenario, r.figure, r.value, r.baseline,
                                                         r.ratio, r.target, r.verdict)) + " |")
    for name, message in errors:
        out.append(f"| {name} | — | — | — | — | — | **error**: {message} |")
    out += ["", "## Details", ""]
    titles = {"api": "API throughput", "spawn": "Spawn", "progress": "Progress ingestion",
              "store": "Store at scale", "many": "Many live jobs", "idle": "Idle daemon"}
    for key, title in titles.items():
        if key in ctx.notes:
            out += [f"**{title}.** {ctx.notes[key]}", ""]
        if key == "api" and "api" in ctx.details:
            out += ["| server | requests/s | p50 | p99 | socket errors |", "|---|---|---|---|---|"]
            for label, r in ctx.details["api"]:
                out.append(f"| {label} | {fmt_rate(r['requests_per_second'])} | "
                           f"{fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | "
                           f"{r['socket_errors']} |")
            out.append("")
    analysis = REPO / "bench" / "analysis.md"
    if analysis.exists():
        out += [analysis.read_text().rstrip(), ""]
    out += rate_limiter_section(ctx)
    out += ["## Reproduce", "", "```sh",
            "bench/run.sh           # the full suite, about 15 minutes; writes this page",
            "bench/run.sh --quick   # every scenario scaled down, < 2 minutes; writes "
            "build/bench-quick.md", "```", ""]
    return "\n".join(out)


def rate_limiter_section(ctx):
    text = ["## Rate limiter", "",
            "The limiter is on the path of every `/api/collectors/runs/*` and "
            "`/api/collectors/history` request, so it must never be the bottleneck. "
            "`bench/http_pipeline_bench` (Google Benchmark) measures:", "",
            "| figure | what it is |", "|---|---|",
            "| `BM_BaselineMapLookup` | one lookup in a hash map of 1,000 clients: the least any "
            "per-client limiter can cost |",
            "| `BM_RateLimiterCheck` | one `RateLimiter::check` among 1,000 clients, from 1 and "
            "2 threads |",
            "| `BM_PipelineWithoutLimiter` | `ApiService::handle` of a route whose handler does "
            "nothing: CORS, routing, metrics |",
            "| `BM_PipelineWithLimiter` | the same route, rate limited (limit never reached), with "
            "its three response headers |", ""]
    bench = ctx.micro
    if not bench:
        text += ["Not run in this mode (`bench/run.sh` runs it in full mode).", ""]
        return text
    times = {b["name"]: b for b in bench}

    def ns(name):
        b = times.get(name)
        return b["real_time"] if b else None
    lookup = ns("BM_BaselineMapLookup/threads:1")
    check1 = ns("BM_RateLimiterCheck/threads:1")
    check2 = ns("BM_RateLimiterCheck/threads:2")
    without = ns("BM_PipelineWithoutLimiter")
    with_limiter = ns("BM_PipelineWithLimiter")
    text += ["Measured in this run (Release build, wall time per call):", "",
             "| figure | time per call | ratio |", "|---|---|---|"]
    if lookup and check1:
        text.append(f"| baseline map lookup | {lookup:.0f} ns | 1 |")
        text.append(f"| limiter check, 1 thread | {check1:.0f} ns | {check1 / lookup:.1f} × the "
                    "lookup (hashing, shard lock, window arithmetic) |")
    if lookup and check2:
        text.append(f"| limiter check, 2 threads | {check2:.0f} ns | {check2 / lookup:.1f} × the "
                    "lookup; 2 cores shared with the other work |")
    if without and with_limiter:
        text.append(f"| pipeline without limiter | {without:.0f} ns | 1 |")
        text.append(f"| pipeline with limiter | {with_limiter:.0f} ns | "
                    f"+{with_limiter - without:.0f} ns, mostly building the `X-RateLimit-*` "
                    "header strings |")
    text += ["", "A real status request reads SQLite and renders JSON: tens of microseconds "
             "(see the API figures above). Against that the limiter's fraction of a microsecond "
             "is under 1 %.", ""]
    return text


# --- the run --------------------------------------------------------------------------------

class Context:
    def __init__(self, args):
        self.quick = args.quick
        self.bindir = Path(args.build_dir).resolve() / "bin"
        self.workdir = Path(tempfile.mkdtemp(prefix="collectord-bench-"))
        self.machine = machine_info(args.build_dir)
        self.rounds = 1 if self.quick else 2
        self.http_threads = args.http_threads
        self.wrk_settings = dict(connections=64, threads=2, seconds=2 if self.quick else 10)
        self.store_seconds = 1 if self.quick else 5
        self.idle_seconds = 20 if self.quick else 600
        self.soak_seconds = 10 if self.quick else 600
        self.notes, self.details = {}, {}
        self.micro = None
        self.daemons = []

    def scale(self, full, quick):
        return quick if self.quick else full

    def daemon(self, collectors, **kw):
        d = Daemon(self.bindir, self.workdir, collectors, **kw)
        self.daemons.append(d)
        return d


def run_micro(ctx):
    binary = ctx.bindir / "http_pipeline_bench"
    if ctx.quick or not binary.exists():
        return
    out = subprocess.run([str(binary), "--benchmark_format=json", "--benchmark_min_time=0.5"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode == 0:
        ctx.micro = json.loads(out.stdout)["benchmarks"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--build-dir", default=str(REPO / "build" / "release"))
    parser.add_argument("--output")
    parser.add_argument("--only", help="comma-separated scenario names (for development)")
    parser.add_argument("--http-threads", type=int, default=16)
    parser.add_argument("--render-from", metavar="JSON",
                        help="write the page again from a run's saved figures, without running")
    args = parser.parse_args()
    if args.render_from:
        saved = json.loads(Path(args.render_from).read_text())
        output = Path(args.output or (REPO / "build" / "bench-quick.md" if saved["quick"]
                                      else REPO / "docs" / "performance.md"))
        ctx = argparse.Namespace(**{k: saved[k] for k in
                                    ("quick", "machine", "notes", "details", "micro")})
        rows = [Row(**r) for r in saved["rows"]]
        output.write_text(render(ctx, rows, [tuple(e) for e in saved["errors"]],
                                 saved["started"], saved["minutes"]))
        print(f"bench: wrote {output}")
        return 0
    output = Path(args.output or (REPO / "build" / "bench-quick.md" if args.quick
                                  else REPO / "docs" / "performance.md"))
    for tool in ("wrk", "nginx", "/usr/bin/gunicorn"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (bench/run.sh installs it)")
    ctx = Context(args)
    started = time.time()
    only = set(args.only.split(",")) if args.only else None
    scenarios = [("api", scenario_api), ("spawn", scenario_spawn),
                 ("progress", scenario_progress), ("store", scenario_store),
                 ("many", scenario_many), ("soak", scenario_soak), ("cluster", scenario_cluster)]
    rows, errors = [], []

    def attempt(name, fn):
        t = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        try:
            result = fn()
            rows.extend(result)
            for r in result:
                print(f"bench:   {r.figure}: {r.value} vs {r.baseline} ({r.ratio}) "
                      f"{r.verdict.replace('*', '')}", flush=True)
        except Exception as e:  # a scenario's failure is reported; the others still run
            message = str(e) if isinstance(e, ScenarioError) else f"{type(e).__name__}: {e}"
            errors.append((name, message.replace("|", "/")))
            print(f"bench: {name} FAILED: {message}", flush=True)
            if not isinstance(e, ScenarioError):
                traceback.print_exc()
        print(f"bench: {name} took {time.monotonic() - t:.1f} s", flush=True)

    idle = None
    if not only or "idle" in only:
        try:
            idle = IdleWatch(ctx)
        except Exception as e:
            errors.append(("idle", str(e)))
    try:
        for name, fn in scenarios:
            if not only or name in only:
                attempt(name, lambda fn=fn: fn(ctx))
        if not only or "micro" in only:
            attempt("rate limiter micro-benchmark", lambda: (run_micro(ctx), [])[1])
        if idle:
            attempt("idle", idle.finish)
    except KeyboardInterrupt:
        for d in ctx.daemons:
            if d.process and d.process.poll() is None:
                d.process.kill()
        raise
    for d in ctx.daemons:
        try:
            d.stop()
        except ScenarioError as e:
            print(f"bench: {e}", flush=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    minutes = (time.time() - started) / 60
    output.write_text(render(ctx, rows, errors, started, minutes))
    print(f"bench: wrote {output}", flush=True)
    # The figures, so the page can be written again (new analysis text) without a new run.
    # A partial run (--only) must not replace the figures of the last whole run.
    results = REPO / "build" / ("bench-only.json" if only else
                                "bench-quick.json" if ctx.quick else "bench-results.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "quick": ctx.quick, "machine": ctx.machine, "notes": ctx.notes, "details": ctx.details,
        "micro": ctx.micro, "started": started, "minutes": minutes, "errors": errors,
        "rows": [vars(r) for r in rows]}, indent=1))
    print(f"bench: figures saved in {results} (bench.py --render-from re-renders them)")
    if errors:
        print(f"bench: {len(errors)} scenario(s) failed: {', '.join(n for n, _ in errors)}")
        print(f"bench: their folders are kept in {ctx.workdir}")
        return 1
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
