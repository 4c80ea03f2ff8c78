"""The read budget at scale (issue 16, item 8): stats, /metrics, the dashboard's overview and a
room's pending page, plus one submit and one claim, against a PostgreSQL database holding
`--finished` finished tasks (default 1,000,000) and `--pending` pending ones (200,000).

    uv run python scripts/bench_stats.py                      # the defaults above
    uv run python scripts/bench_stats.py --finished 100000 --pending 20000 --runs 5
    uv run python scripts/bench_stats.py --vacuum             # also measure after VACUUM

Starts ours on a fresh database (+ Redis), registers `--rooms` x `--jobs-per-room` jobs over
HTTP, then fills `tasks` in SQL with generate_series through the normal schema, so the
counter triggers of migration 0003 keep `task_counts` and `task_throughput` as every writer
does. Tasks are spread round-robin over the jobs, created evenly over the last day in
insertion order; every (N+1)-th one (N = finished / pending) is pending, the rest finished
(completed mostly, some failed or cancelled, a few seconds after their creation). Then
ANALYZE (no VACUUM: with autovacuum off nothing else would set the visibility map; `--vacuum`
measures a second time after VACUUM ANALYZE, as a server with autovacuum on would be).

Each read is timed from the client over HTTP (median of `--runs` after one warm-up); the
overview is `app.services.overview.collect` in this process on its own engine, as the
dashboard's feed calls it once a second. /metrics caches its database read for 1 s, so its
runs are spaced 1.1 s apart and each one reads. Each submit adds a pending task, each claim
takes the oldest of one job's. The database, Redis index and server are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from bench_targets import Sitting, Target, login, plain_dsn, say, server_args, start
from sqlalchemy.engine import make_url

JOBLIB = "/v1/joblib"
BUDGET_MS = 50.0
CHUNK = 100_000  # rows per INSERT statement while seeding
METRICS_SPACING = 1.1  # seconds: past the scrape cache's 1 s


async def register(client: httpx.AsyncClient, rooms: int, per_room: int) -> list[dict[str, str]]:
    """Jobs over HTTP (each registration makes a worker for it): [{room, job, job_id, worker}]."""
    jobs = []
    for r in range(rooms):
        room = f"stats{r}"
        for j in range(per_room):
            body = {"category": "modifiers", "name": f"Job{j}", "schema": {}}
            answer = await client.put(f"{JOBLIB}/rooms/{room}/jobs", json=body)
            answer.raise_for_status()
            found = answer.json()
            jobs.append(
                {
                    "room": room,
                    "job": found["full_name"],
                    "job_id": found["id"],
                    "worker": found["worker_id"],
                }
            )
    return jobs


SEED = """
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, result, error, created_by,
                   worker_id, internal, created_at, started_at, completed_at, claimed_at,
                   priority, run_at, attempt, max_attempts)
SELECT gen_random_uuid(), j.job_id, j.job_name, j.room_id, s.status, '{"i": 1}'::jsonb,
       CASE WHEN s.status = 'completed' THEN '{"ok": true}'::jsonb END,
       CASE WHEN s.status = 'failed' THEN 'bench: failed on purpose' END,
       $7::uuid, CASE WHEN s.status <> 'pending' THEN j.worker_id END, false,
       s.created, s.started, s.finished, s.started, 0, s.created, 1, 1
FROM generate_series($1::bigint, $2::bigint) AS g
JOIN unnest($3::uuid[], $4::text[], $5::text[], $6::uuid[]) WITH ORDINALITY
     AS j(job_id, job_name, room_id, worker_id, n) ON j.n = g % $8 + 1
CROSS JOIN LATERAL (
    -- k numbers each job's own tasks, so every job gets its share of each status.
    SELECT now() - interval '1 day' + (g * interval '1 day') / $9 AS created, g / $8 AS k
) AS c
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN c.k % $10 = 0 THEN 'pending'
               WHEN c.k % 50 = 1 THEN 'failed'
               WHEN c.k % 100 = 2 THEN 'cancelled'
               ELSE 'completed'
           END AS status,
           c.created,
           CASE WHEN c.k % $10 <> 0 THEN c.created + interval '1 second' END AS started,
           CASE WHEN c.k % $10 <> 0 THEN c.created + interval '3 seconds' END AS finished
) AS s
"""


async def seed(
    dsn: str, jobs: list[dict[str, str]], admin_id: str, args: argparse.Namespace
) -> None:
    total = args.finished + args.pending
    every = total // args.pending if args.pending else total + 1  # every N-th is pending
    columns = (
        [j["job_id"] for j in jobs],
        [j["job"] for j in jobs],
        [j["room"] for j in jobs],
        [j["worker"] for j in jobs],
    )
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for first in range(1, total + 1, CHUNK):
            last = min(first + CHUNK - 1, total)
            await connection.execute(SEED, first, last, *columns, admin_id, len(jobs), total, every)
        seeded = time.perf_counter() - started
        counts = await connection.fetch(
            "SELECT status, sum(n)::bigint AS n FROM task_counts GROUP BY 1 ORDER BY 1"
        )
        spread = await connection.fetchrow(
            "SELECT count(*) AS jobs, min(n) AS low, max(n) AS high FROM (SELECT job_name, "
            "sum(n) AS n FROM task_counts WHERE status = 'pending' GROUP BY 1) AS per_job"
        )
        say(
            f"seeded {total:,} tasks in {seeded:.0f} s; counters: "
            + ", ".join(f"{r['status']} {r['n']:,}" for r in counts)
            + f"; pending per job {spread['low']:,}-{spread['high']:,} over {spread['jobs']} jobs"
        )
    finally:
        await connection.close()


async def maintain(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.execute(statement)
        say(f"{statement} took {time.perf_counter() - started:.1f} s")
    finally:
        await connection.close()


async def timed(
    runs: int, call: Callable[[], Awaitable[Any]], spacing: float = 0.0
) -> dict[str, Any]:
    """Median and spread of `runs` calls after one warm-up, in milliseconds."""
    await call()
    samples = []
    for _ in range(runs):
        if spacing:
            await asyncio.sleep(spacing)
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "max_ms": max(samples),
        "runs_ms": [round(s, 2) for s in samples],
    }


def expect(answer: httpx.Response, *codes: int) -> httpx.Response:
    if answer.status_code not in codes:
        raise SystemExit(
            f"{answer.request.method} {answer.request.url}: "
            f"{answer.status_code} {answer.text[:500]}"
        )
    return answer


async def measure_all(
    client: httpx.AsyncClient, database_url: str, jobs: list[dict[str, str]], runs: int
) -> dict[str, dict[str, Any]]:
    from app.db.session import make_engine, make_sessionmaker
    from app.services import overview

    room, job, worker = jobs[0]["room"], jobs[0]["job"], jobs[0]["worker"]
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)

    async def get(path: str) -> httpx.Response:
        return expect(await client.get(path), 200)

    async def read_overview() -> None:
        async with sessions() as session:
            await overview.collect(session)

    async def page() -> None:
        items = (await get(f"{JOBLIB}/rooms/{room}/tasks?status=pending&limit=100")).json()
        if len(items["items"]) != 100 or any(i["queue_position"] is None for i in items["items"]):
            raise SystemExit("the pending page did not come back whole, with positions")

    async def submit() -> None:
        path = f"{JOBLIB}/rooms/{room}/tasks/{job}"
        expect(await client.post(path, json={"payload": {"i": 1}}), 202)

    async def claim() -> None:
        answer = await client.post(f"{JOBLIB}/tasks/claim", json={"worker_id": worker})
        if expect(answer, 200).json()["task"] is None:
            raise SystemExit("claim found nothing in the backlog")

    reads: dict[str, tuple[Callable[[], Awaitable[Any]], float]] = {
        "GET /v1/joblib/stats": (lambda: get(f"{JOBLIB}/stats"), 0.0),
        "GET /v1/joblib/rooms/{room}/stats": (lambda: get(f"{JOBLIB}/rooms/{room}/stats"), 0.0),
        "GET /metrics (admin token, each run past the 1 s cache)": (
            lambda: get("/metrics"),
            METRICS_SPACING,
        ),
        "dashboard overview (overview.collect, in process)": (read_overview, 0.0),
        "GET /rooms/{room}/tasks?status=pending&limit=100": (page, 0.0),
        "POST /rooms/{room}/tasks/{job} (one submit)": (submit, 0.0),
        "POST /tasks/claim (one claim)": (claim, 0.0),
    }
    found: dict[str, dict[str, Any]] = {}
    try:
        for name, (call, spacing) in reads.items():
            found[name] = await timed(runs, call, spacing)
            say(describe(name, found[name]))
    finally:
        await engine.dispose()
    return found


def describe(name: str, figure: dict[str, Any]) -> str:
    return (
        f"  {name:58s} median {figure['median_ms']:8.1f} ms  "
        f"(min {figure['min_ms']:.1f}, max {figure['max_ms']:.1f})"
    )


async def measure_phase(
    url: str, token: str, database_url: str, jobs: list[dict[str, str]], runs: int, label: str
) -> dict[str, Any]:
    say(f"\n{label} (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        figures = await measure_all(client, database_url, jobs, runs)
    return {"label": label, "load": list(os.getloadavg()), "figures": figures}


PHASES = {
    "ANALYZE": "after ANALYZE (no VACUUM: autovacuum is off here)",
    "VACUUM ANALYZE": "after VACUUM ANALYZE",
}


async def prepare(
    url: str, password: str, dsn: str, args: argparse.Namespace
) -> tuple[str, list[dict[str, str]]]:
    token = await login(url, password)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        jobs = await register(client, args.rooms, args.jobs_per_room)
        admin_id = expect(await client.get("/v1/users/me"), 200).json()["id"]
    await seed(dsn, jobs, admin_id, args)
    return token, jobs


def run(args: argparse.Namespace) -> dict[str, Any]:
    sitting = Sitting(server_args(pg=args.pg, redis=args.redis, redis_db=args.redis_db))
    phases = []
    try:
        with sitting.scope():
            target = Target("A", "ours", "ours", "pg")
            start(sitting, target)
            dsn = plain_dsn(make_url(target.database_url))
            token, jobs = asyncio.run(prepare(target.url, sitting.password, dsn, args))
            for after in ("ANALYZE", "VACUUM ANALYZE") if args.vacuum else ("ANALYZE",):
                asyncio.run(maintain(dsn, after))
                phase = measure_phase(
                    target.url, token, target.database_url, jobs, args.runs, PHASES[after]
                )
                phases.append({"after": after, **asyncio.run(phase)})
            if args.hold:
                say(f"\nholding {dsn} and {target.url} for {args.hold:.0f} s (for psql, py-spy)")
                time.sleep(args.hold)
    finally:
        sitting.close()
    return {"argv": sys.argv[1:], "cpus": os.cpu_count(), "phases": phases}


def verdict(result: dict[str, Any]) -> None:
    say(f"\nbudget {BUDGET_MS:.0f} ms (stats, /metrics, the dashboard overview):")
    for phase in result["phases"]:
        for name, figure in phase["figures"].items():
            if "stats" in name or "metrics" in name or "overview" in name:
                mark = "ok" if figure["median_ms"] < BUDGET_MS else "OVER"
                say(f"  {mark:4s} {phase['after']:15s} {name}: {figure['median_ms']:.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--finished", type=int, default=1_000_000)
    p.add_argument("--pending", type=int, default=200_000)
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--jobs-per-room", type=int, default=3)
    p.add_argument("--runs", type=int, default=7, help="timed runs per read (median)")
    p.add_argument("--vacuum", action="store_true", help="measure again after VACUUM ANALYZE")
    p.add_argument("--pg", default=server_args().pg, help="PostgreSQL server (own database)")
    p.add_argument("--redis", default=server_args().redis, help="Redis server")
    p.add_argument("--redis-db", type=int, default=12, help="Redis db index to use (flushed)")
    p.add_argument("--hold", type=float, default=0, help="keep database and server N s after")
    p.add_argument("--json", help="write every figure to this file")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say(
        f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"({os.cpu_count()} cores)"
    )
    result = run(args)
    verdict(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
