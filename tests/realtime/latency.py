"""Submit -> claim latency through the push path: a serving JobManager (polling every 30 s,
so only `task_available` explains a quick claim) against a live `jobserver serve`.

    uv run python -m tests.realtime.latency [--tasks 200] [--database-url URL] [--redis-url URL]

Without --database-url it runs embedded (a temporary SQLite file). Prints p50/p99/max of
submit-sent -> claim-response-received and of submit-sent -> execute-called.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.live import live_server
from tests.realtime.workers import served_worker


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{name:<24} n={len(ms)} p50={percentile(ms, 0.5):.2f} ms "
        f"p99={percentile(ms, 0.99):.2f} ms max={max(ms):.2f} ms "
        f"mean={statistics.fmean(ms):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="jobserver-latency-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{data_dir / 'jobserver.db'}"
    extra = {"JOBSERVER_REDIS_URL": args.redis_url} if args.redis_url else {}
    with live_server(database_url, data_dir, **extra) as server:
        token = server.token()
        room = f"lat-{uuid.uuid4().hex[:8]}"
        job = f"{room}:modifiers:Echo"
        to_claim: list[float] = []
        to_execute: list[float] = []
        submit_rtt: list[float] = []
        to_claim_sent: list[float] = []
        with (
            served_worker(server.url, token, room) as worker,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            health = []
            for _ in range(args.tasks):
                started = time.perf_counter()
                http.get("/health").raise_for_status()
                health.append(time.perf_counter() - started)
            for x in range(args.tasks):
                sent = time.perf_counter()
                response = http.post(
                    f"/v1/joblib/rooms/{room}/tasks/{job}", json={"payload": {"x": x}}
                )
                response.raise_for_status()
                submit_rtt.append(time.perf_counter() - sent)
                task_id, executed_at = worker.executed.get(timeout=10)
                assert task_id == response.json()["id"]
                to_claim.append(worker.claim_time(task_id) - sent)
                to_claim_sent.append(
                    max(t for t in worker.claim_sent if t < sent + to_claim[-1]) - sent
                )
                to_execute.append(executed_at - sent)
                time.sleep(0.01)  # let the claim loop go back to waiting for the push
        print(f"database: {database_url.split('://')[0]}  redis: {bool(args.redis_url)}")
        report("GET /health round trip", health)
        report("submit round trip", submit_rtt)
        report("submit -> claim sent", to_claim_sent)
        report("submit -> claim", to_claim)
        report("submit -> execute", to_execute)


if __name__ == "__main__":
    main()
