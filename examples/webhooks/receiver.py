#!/usr/bin/env python3
"""A webhook receiver for collectord: verifies each request's signature and prints the event.

Only the Python standard library. Run it, then point an endpoint at it:

    python3 receiver.py --port 9000 --secret-file /etc/collectord/webhook-ops.secret

    [webhook.ops]                                   ; in collectord.ini
    url = http://127.0.0.1:9000/collectord
    secret = @file:/etc/collectord/webhook-ops.secret
    events = *

What it checks, in this order (see docs/webhooks.md):
  1. X-Collectord-Signature: sha256=HEX, the HMAC-SHA256 of "<X-Collectord-Timestamp>.<raw
     body>" keyed with the secret; and the timestamp no older than --max-age seconds. This
     refuses a captured request replayed later. (X-Signature, the HMAC of the raw body alone,
     is checked too, for receivers written against the seed's header.)
  2. X-Collectord-Event-Id not seen before: collectord delivers at least once, so an event that
     was received but whose answer was lost comes again; it is acknowledged, not processed twice.
Anything that fails a check gets 401 and is not processed. A 2xx answer ends the delivery;
any other answer makes collectord retry later with a growing delay.

--fail-first N answers 500 to the first N requests of each event, to watch the retries.
--log FILE appends one JSON line per request received (what was checked, what was answered).
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def expected_signature(secret: bytes, message: bytes) -> str:
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def read_secret(args) -> bytes:
    if args.secret_file:
        with open(args.secret_file, "rb") as f:
            return f.read().rstrip(b"\r\n")
    return args.secret.encode()


class Receiver(BaseHTTPRequestHandler):
    server_version = "collectord-example-receiver"

    def do_POST(self):
        cfg = self.server.cfg
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        secret = read_secret(cfg)  # read per request: a rotated secret file takes effect at once
        event_id = self.headers.get("X-Collectord-Event-Id", "")
        timestamp = self.headers.get("X-Collectord-Timestamp", "")
        # compare_digest: comparing in constant time does not tell an attacker how much matched.
        body_ok = hmac.compare_digest(
            self.headers.get("X-Signature", ""), expected_signature(secret, body))
        timestamped_ok = hmac.compare_digest(
            self.headers.get("X-Collectord-Signature", ""),
            expected_signature(secret, timestamp.encode() + b"." + body))
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= cfg.max_age

        with self.server.lock:
            seen = self.server.attempts.get(event_id, 0)
            self.server.attempts[event_id] = seen + 1
            duplicate = event_id in self.server.processed
        if not (body_ok and timestamped_ok and fresh):
            status, outcome = 401, "refused: bad signature or stale timestamp"
        elif seen < cfg.fail_first:
            status, outcome = 500, "failing on purpose (--fail-first)"
        elif duplicate:
            status, outcome = 200, "duplicate: already processed"
        else:
            status, outcome = 200, "processed"
            with self.server.lock:
                self.server.processed.add(event_id)

        event = json.loads(body) if body_ok else None
        print(f"{self.headers.get('X-Collectord-Event', '?')} {event_id}: {outcome}"
              + (f" (status {event.get('status')})" if event else ""), flush=True)
        if cfg.log:
            record = {
                "path": self.path,
                "event": self.headers.get("X-Collectord-Event"),
                "event_id": event_id,
                "delivery": self.headers.get("X-Collectord-Delivery"),
                "attempt": self.headers.get("X-Collectord-Attempt"),
                "content_type": self.headers.get("Content-Type"),
                "signature_ok": body_ok,
                "timestamped_signature_ok": timestamped_ok,
                "fresh": fresh,
                "answered": status,
                "outcome": outcome,
                "body": body.decode("utf-8", "replace"),
            }
            with self.server.lock, open(cfg.log, "a") as f:
                f.write(json.dumps(record) + "\n")

        if cfg.delay:
            time.sleep(cfg.delay)
        answer = json.dumps({"result": outcome}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass  # one line per event is printed above


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--secret", help="the endpoint's secret")
    group.add_argument("--secret-file", help="a file holding the secret")
    parser.add_argument("--max-age", type=int, default=300,
                        help="refuse timestamps further than this from now, in seconds")
    parser.add_argument("--fail-first", type=int, default=0,
                        help="answer 500 to the first N requests of each event")
    parser.add_argument("--delay", type=float, default=0,
                        help="wait this many seconds before answering (a slow receiver)")
    parser.add_argument("--log", help="append a JSON line per request to this file")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (and --tls-key)")
    parser.add_argument("--tls-key", help="the certificate's private key, PEM")
    cfg = parser.parse_args()

    server = ThreadingHTTPServer((cfg.host, cfg.port), Receiver)
    if cfg.tls_cert:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.cfg = cfg
    server.lock = threading.Lock()
    server.attempts = {}
    server.processed = set()
    port = server.server_address[1]
    if cfg.port_file:
        with open(cfg.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(cfg.port_file + ".tmp", cfg.port_file)
    scheme = "https" if cfg.tls_cert else "http"
    print(f"listening on {scheme}://{cfg.host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
