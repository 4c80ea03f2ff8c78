"""Bulk submit over HTTP: `--tasks` tasks in batches of `--batch` through
`POST /v1/joblib/rooms/{room}/tasks/{job}/bulk`, timed from the first request to the last
answer, `--rounds` times; prints each round's tasks/s and their median. Asserts nothing.

    # ours on a fresh PostgreSQL database + Redis, started and removed by the script
    uv run python scripts/bench_bulk.py --tasks 10000 --batch 1000 --rounds 5
    # a server that is already running
    uv run python scripts/bench_bulk.py --url http://127.0.0.1:8000 --token "$JOBSERVER_TOKEN"
    # where the server's time goes (py-spy; the started server, or --server-pid)
    uv run python scripts/bench_bulk.py --py-spy bulk.txt
    uv run python scripts/profile_breakdown.py bulk.txt

One client sends the batches one after another (`--concurrency` > 1 keeps that many in
flight). The request bodies are encoded before the clock starts and the answers are parsed
after it stops, so the client's JSON work does not count against the server. No worker
claims the tasks: they stay pending. Each round goes to a fresh room and job (an empty
queue); with `--same-job` all rounds go to one job, and its backlog grows by `--tasks` each
round (the answer's queue positions are computed over the job's pending tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from bench_targets import (
    Sitting,
    Target,
    cpu_seconds,
    login,
    say,
    server_args,
    serving_pid,
    start,
)

JOBLIB = "/v1/joblib"


async def register(session: aiohttp.ClientSession, room: str) -> str:
    """A job in a fresh room; its full name."""
    body = {"category": "modifiers", "name": "Bulk", "schema": {}}
    async with session.put(f"{JOBLIB}/rooms/{room}/jobs", json=body) as answer:
        if answer.status not in (200, 201):
            raise SystemExit(f"job registration: HTTP {answer.status} {await answer.text()}")
        return str((await answer.json())["full_name"])


async def one_round(
    session: aiohttp.ClientSession, path: str, body: bytes, batches: int, concurrency: int
) -> tuple[float, list[float], list[bytes]]:
    """Send `batches` copies of `body`; the round's seconds, each batch's, and the answers."""
    latencies: list[float] = []
    answers: list[bytes] = []
    left = iter(range(batches))
    headers = {"Content-Type": "application/json"}

    async def sender() -> None:
        for _ in left:
            sent = time.perf_counter()
            async with session.post(path, data=body, headers=headers) as answer:
                raw = await answer.read()
                if answer.status != 202:
                    raise SystemExit(f"bulk submit: HTTP {answer.status} {raw[:500]!r}")
            latencies.append(time.perf_counter() - sent)
            answers.append(raw)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, answers


def check(answers: list[bytes], batch: int) -> None:
    for raw in answers:
        items = json.loads(raw)["items"]
        if len(items) != batch or any(item["status"] != "pending" for item in items):
            raise SystemExit(f"bulk submit answered {len(items)} tasks for a batch of {batch}")


@contextlib.contextmanager
def profiled(pid: int | None, out: str | None) -> Iterator[None]:
    """py-spy records the server while the block runs (raw stacks into OUT)."""
    if not out:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if pid is None:
        raise SystemExit("--py-spy needs the server's PID (start it here, or --server-pid)")
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "-o", out]
    proc = subprocess.Popen([*cmd, "--nonblocking"], stdout=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first request
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


async def measure(args: argparse.Namespace, url: str, token: str, pid: int | None) -> None:
    batches = args.tasks // args.batch
    body = json.dumps({"items": [{"payload": {"i": i}} for i in range(args.batch)]}).encode()
    auth = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 1))
    timeout = aiohttp.ClientTimeout(total=120)
    rounds: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(url, headers=auth, connector=connector, timeout=timeout) as s:

        async def fresh_job() -> str:
            room = f"bulk{uuid.uuid4().hex[:8]}"
            return f"{JOBLIB}/rooms/{room}/tasks/{await register(s, room)}/bulk"

        check((await one_round(s, await fresh_job(), body, 1, 1))[2], args.batch)  # warm-up
        path = await fresh_job()
        with profiled(pid, args.py_spy):
            for number in range(1, args.rounds + 1):
                if number > 1 and not args.same_job:
                    path = await fresh_job()
                load = os.getloadavg()[0]
                cpu_before = cpu_seconds(pid) if pid else None
                elapsed, latencies, answers = await one_round(
                    s, path, body, batches, args.concurrency
                )
                cpu_after = cpu_seconds(pid) if pid else None
                check(answers, args.batch)
                rounds.append(summarize(number, batches * args.batch, elapsed, latencies, load))
                if cpu_before is not None and cpu_after is not None:
                    rounds[-1]["server_cpu_s"] = cpu_after - cpu_before
                say(describe(rounds[-1]))
    report(args, rounds)


def summarize(
    number: int, tasks: int, elapsed: float, latencies: list[float], load: float
) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "round": number,
        "tasks": tasks,
        "seconds": elapsed,
        "tasks_per_s": tasks / elapsed,
        "batch_ms_p50": 1000 * statistics.median(ordered),
        "batch_ms_max": 1000 * ordered[-1],
        "load_1min_before": load,
        "batch_ms": [round(1000 * x, 1) for x in latencies],
    }


def describe(entry: dict[str, Any]) -> str:
    line = (
        f"round {entry['round']}: {entry['tasks']} tasks in {entry['seconds']:.3f} s = "
        f"{entry['tasks_per_s']:,.0f} tasks/s; batch p50 {entry['batch_ms_p50']:.1f} ms, "
        f"max {entry['batch_ms_max']:.1f} ms; load {entry['load_1min_before']:.2f}"
    )
    if "server_cpu_s" in entry:
        per_task = 1e6 * entry["server_cpu_s"] / entry["tasks"]
        line += f"; server CPU {entry['server_cpu_s']:.2f} s ({per_task:.0f} us/task)"
    return line


def report(args: argparse.Namespace, rounds: list[dict[str, Any]]) -> None:
    rates = [entry["tasks_per_s"] for entry in rounds]
    say(
        f"bulk submit over HTTP, batches of {args.batch}, concurrency {args.concurrency}: "
        f"median {statistics.median(rates):,.0f} tasks/s over {len(rates)} rounds "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
        f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv[1:], "rounds": rounds}, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", help="a running server (default: start ours on a fresh database)")
    p.add_argument("--token", default=os.environ.get("JOBSERVER_TOKEN"), help="with --url")
    p.add_argument("--server-pid", type=int, help="with --url: report/profile this process")
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=1, help="batches in flight")
    p.add_argument(
        "--same-job",
        action="store_true",
        help="every round into one job, so its pending backlog grows round by round "
        "(default: a fresh room and job per round, i.e. an empty queue)",
    )
    p.add_argument("--py-spy", help="profile the server during the rounds into this file")
    p.add_argument("--pg", default=server_args().pg, help="PostgreSQL server (own database)")
    p.add_argument("--redis", default=server_args().redis, help="Redis server")
    p.add_argument("--redis-db", type=int, default=12, help="Redis db index to use (flushed)")
    p.add_argument("--json", help="write every round to this file")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.url:
        if not args.token:
            raise SystemExit("--url needs --token (or JOBSERVER_TOKEN)")
        asyncio.run(measure(args, args.url, args.token, args.server_pid))
        return
    sitting = Sitting(server_args(pg=args.pg, redis=args.redis, redis_db=args.redis_db))
    try:
        with sitting.scope():
            target = Target("A", "ours", "ours", "pg")
            start(sitting, target)
            token = asyncio.run(login(target.url, sitting.password))
            pid = serving_pid(target.details["pid"])
            asyncio.run(measure(args, target.url, token, pid))
    finally:
        sitting.close()


if __name__ == "__main__":
    main()
