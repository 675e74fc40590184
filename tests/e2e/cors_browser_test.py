#!/usr/bin/env python3
"""A real browser against the real daemon: a page served from an allowed origin polls the API
with an API key and credentials; the same page from another origin is refused by the browser.

Runs Debian's headless Chromium. Usage: cors_browser_test.py --daemon PATH/TO/collectord
"""
import argparse
import http.server
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

API_KEY = "browser-test-key-0123456789"

PAGE = """<!doctype html>
<html><head><title>pending</title></head><body><pre id="out">pending</pre><script>
const out = document.getElementById('out');
async function poll() {
  try {
    const trigger = await fetch('%(api)s/api/collectors/run', {
      method: 'POST', credentials: 'include',
      headers: {'Content-Type': 'application/json', 'X-API-Key': '%(key)s'},
      body: JSON.stringify({collectors: ['ninja']})});
    const batch = await trigger.json();
    for (let i = 0; i < 100; i++) {
      const r = await fetch('%(api)s/api/collectors/runs/batch/' + batch.batch_id,
                            {credentials: 'include', headers: {'X-API-Key': '%(key)s'}});
      const body = await r.json();
      const limit = r.headers.get('X-RateLimit-Limit');
      if (['completed', 'failed', 'cancelled'].includes(body.status)) {
        out.textContent = 'RESULT OK ' + body.status + ' ' + body.progress_percent + ' limit=' + limit;
        return;
      }
      await new Promise(res => setTimeout(res, 100));
    }
    out.textContent = 'RESULT TIMEOUT';
  } catch (e) {
    out.textContent = 'RESULT BLOCKED ' + e.name;
  }
}
poll();
</script></body></html>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_folder(folder):
    handler = lambda *a, **k: QuietHandler(*a, directory=folder, **k)
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def wait_for_file(path, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return open(path).read().strip()
        time.sleep(0.05)  # waiting for the daemon to write its port
    raise RuntimeError("collectord did not write its port file in %s s" % seconds)


def run_browser(url, profile):
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=20000",
               "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    for line in done.stdout.splitlines():
        if "RESULT" in line:
            return line[line.index("RESULT"):].split("<")[0].strip()
    return "NO RESULT (exit %d): %s" % (done.returncode, done.stderr[-500:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemon", required=True)
    args = parser.parse_args()
    if not shutil.which("chromium"):
        print("chromium is not installed (scripts/install-deps.sh installs it)")
        print("0 passed, 1 failed")
        return 1

    work = tempfile.mkdtemp(prefix="collectord-browser-")
    allowed_dir, other_dir = os.path.join(work, "allowed"), os.path.join(work, "other")
    os.makedirs(allowed_dir)
    os.makedirs(other_dir)
    allowed_server, allowed_port = serve_folder(allowed_dir)
    other_server, other_port = serve_folder(other_dir)
    allowed_origin = "http://127.0.0.1:%d" % allowed_port

    os.makedirs(os.path.join(work, "collectors.d"))
    with open(os.path.join(work, "ninja.sh"), "w") as f:
        f.write('#!/bin/sh\nprintf \'{"progress": 50, "message": "half"}\\n\' >&3\nexit 0\n')
    os.chmod(os.path.join(work, "ninja.sh"), 0o755)
    with open(os.path.join(work, "collectors.d", "ninja.ini"), "w") as f:
        f.write("[collector]\ncommand = ../ninja.sh\n")
    with open(os.path.join(work, "api_keys"), "w") as f:
        f.write(API_KEY + " read,run browser\n")
    with open(os.path.join(work, "collectord.ini"), "w") as f:
        f.write("[http]\nport = 0\n[store]\nurl = sqlite:collectord.db\n[logs]\ndirectory = logs\n"
                "[auth]\nrequired = true\napi_keys_file = api_keys\n"
                "[cors]\nallowed_origins = %s, http://localhost:3000\n" % allowed_origin)
    port_file = os.path.join(work, "port")
    daemon_out = open(os.path.join(work, "daemon.out"), "w")
    daemon = subprocess.Popen([args.daemon, "--config=" + os.path.join(work, "collectord.ini"),
                               "--port-file=" + port_file], stdout=daemon_out, stderr=daemon_out)
    passed = failed = 0
    try:
        api = "http://127.0.0.1:%s" % wait_for_file(port_file, 20)
        for folder in (allowed_dir, other_dir):
            with open(os.path.join(folder, "index.html"), "w") as f:
                f.write(PAGE % {"api": api, "key": API_KEY})

        cases = [
            ("allowed origin polls to completion with credentials",
             "http://127.0.0.1:%d/index.html" % allowed_port, "RESULT OK completed 100 limit=60"),
            ("another origin is refused by the browser",
             "http://127.0.0.1:%d/index.html" % other_port, "RESULT BLOCKED TypeError"),
        ]
        for name, url, expected in cases:
            got = run_browser(url, os.path.join(work, "profile-%d" % (passed + failed)))
            if got == expected:
                passed += 1
                print("ok   %s" % name)
            else:
                failed += 1
                print("FAIL %s: expected %r, got %r" % (name, expected, got))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        allowed_server.shutdown()
        other_server.shutdown()
        if failed:
            print(open(os.path.join(work, "daemon.out")).read()[-3000:])
        if not os.environ.get("COLLECTORD_KEEP_TEST_DIRS"):
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
