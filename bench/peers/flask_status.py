"""The job status endpoint as a typical small Python service would serve it.

A peer for bench/run.sh: Flask under gunicorn (sync workers), reading the same SQLite store
collectord writes, answering GET /api/collectors/runs/job/<job_id> with the same JSON shape
and the same API-key check (SHA-256 of X-API-Key against the keys file). It is written the
way such a service usually is: one connection per request, one query per table, no cache.

Environment: BENCH_DB (the SQLite file), BENCH_KEYS (collectord's api_keys file).
Run: gunicorn --workers 2 --chdir bench/peers flask_status:app
"""

import datetime
import hashlib
import hmac
import json
import os
import sqlite3

from flask import Flask, Response, request

app = Flask(__name__)

DB_PATH = os.environ["BENCH_DB"]


def load_key_hashes(path):
    hashes = set()
    with open(path, encoding="utf-8") as keys:
        for line in keys:
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            key = fields[0]
            if key.startswith("sha256:"):
                hashes.add(bytes.fromhex(key[7:]))
            else:
                hashes.add(hashlib.sha256(key.encode()).digest())
    return hashes


KEY_HASHES = load_key_hashes(os.environ["BENCH_KEYS"])


def error(status, message):
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json")


def timestamp(micros):
    if micros is None:
        return None
    t = datetime.datetime.fromtimestamp(micros / 1e6, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def estimate(micros):
    if micros is None:
        return None
    t = datetime.datetime.fromtimestamp(micros // 1000000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(started, ended):
    if ended is None:
        return None
    return max(0, ended - started) // 1000 / 1000.0


def authorised():
    key = request.headers.get("X-API-Key")
    if not key:
        return False
    digest = hashlib.sha256(key.encode()).digest()
    return any(hmac.compare_digest(digest, h) for h in KEY_HASHES)


@app.get("/api/collectors/runs/job/<job_id>")
def job_status(job_id):
    if not authorised():
        return error(401, "Authentication required")
    db = sqlite3.connect(DB_PATH)
    try:
        job = db.execute(
            "SELECT job_id, batch_id, job_name, status, started_at, updated_at, ended_at, "
            "progress_percent, message, error, collector, attempt, max_attempts, "
            "next_attempt_at FROM job_runs WHERE job_id = ?", (job_id,)).fetchone()
        if job is None:
            return error(404, "Job not found")
        batch = db.execute(
            "SELECT status, progress_percent, estimated_completion, message FROM job_batches "
            "WHERE batch_id = ?", (job[1],)).fetchone()
        attempts = db.execute(
            "SELECT attempt, started_at, ended_at, error FROM job_attempts WHERE job_id = ? "
            "ORDER BY attempt", (job_id,)).fetchall()
    finally:
        db.close()
    body = {
        "job_id": job[0],
        "batch_id": job[1],
        "job_name": job[2],
        "status": job[3],
        "started_at": timestamp(job[4]),
        "updated_at": timestamp(job[5]),
        "ended_at": timestamp(job[6]),
        "progress_percent": job[7],
        "message": job[8],
        "error": job[9],
        "duration_seconds": duration(job[4], job[6]),
        "batch_status": batch[0] if batch else None,
        "batch_progress_percent": batch[1] if batch else None,
        "estimated_completion": estimate(batch[2]) if batch else None,
        "batch_message": batch[3] if batch else None,
        "collector": job[10],
        "attempt": job[11],
        "max_attempts": job[12],
        "next_attempt_at": timestamp(job[13]),
        "previous_attempts": [
            {"attempt": a[0], "started_at": timestamp(a[1]), "ended_at": timestamp(a[2]),
             "error": a[3]} for a in attempts
        ],
    }
    return Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")
