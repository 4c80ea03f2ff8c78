"""The dashboard's job page at scale (issue 21): its reads against a PostgreSQL scratch
database holding `--tasks` tasks (default 1,000,000) over `--jobs` jobs (default 10).

    uv run python scripts/bench_dashboard_job.py
    uv run python scripts/bench_dashboard_job.py --tasks 100000 --runs 5

Creates a scratch database next to `--url`'s, migrates it to head, inserts one user and the
jobs, then fills `tasks` with INSERT ... SELECT generate_series through the normal schema
(the triggers of migration 0003 keep task_counts and task_throughput as every writer does):
created evenly over the last day, every 20th pending, 1 in 50 failed, the rest completed a
few seconds after their creation. ANALYZE, then it times `job_page.collect` (median of
`--runs` after a warm-up) and prints EXPLAIN ANALYZE of the two reads that touch `tasks`:
the head of the queue and the newest completed tasks. The scratch database is dropped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid

import asyncpg
from sqlalchemy.engine import make_url

CHUNK = 100_000
RARE = 2_000

SEED = """
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, worker_id, internal,
                   created_at, started_at, completed_at, claimed_at, priority, run_at,
                   attempt, max_attempts, error)
SELECT gen_random_uuid(), j.job_id, j.job_name, 'bench', s.status, '{}'::jsonb, NULL, false,
       c.created, s.started, s.finished, s.started, 0, c.created, 1, 1,
       CASE WHEN s.status = 'failed' THEN 'bench' END
FROM generate_series($1::bigint, $2::bigint) AS g
JOIN unnest($3::uuid[], $4::text[]) WITH ORDINALITY AS j(job_id, job_name, n)
     ON j.n = g % $5 + 1
CROSS JOIN LATERAL (
    SELECT now() - interval '1 day' + (g * interval '1 day') / $6 AS created, g / $5 AS k
) AS c
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.k % 20 = 0 THEN 'pending' WHEN c.k % 50 = 1 THEN 'failed'
                ELSE 'completed' END AS status,
           CASE WHEN c.k % 20 <> 0 THEN c.created + (c.k % 7) * interval '1 second' END
               AS started,
           CASE WHEN c.k % 20 <> 0 THEN c.created + (c.k % 7 + 1 + c.k % 13) * interval
               '1 second' END AS finished
) AS s
"""

HEAD_OF_QUEUE = """
SELECT created_at FROM tasks WHERE job_id = $1 AND status = 'pending'
ORDER BY priority DESC, run_at, seq LIMIT 1
"""
NEWEST_COMPLETED = """
SELECT run_at, started_at, completed_at FROM tasks WHERE job_id = $1 AND status = 'completed'
ORDER BY completed_at DESC LIMIT {sample}
"""


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def prepare(admin_dsn: str, dsn: str, name: str, jobs: int, tasks: int) -> list[str]:
    from app.db import migrate
    from app.db.session import make_engine

    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    engine = make_engine(make_url(dsn).set(drivername="postgresql+asyncpg"))
    await migrate.upgrade_async(engine)
    await engine.dispose()
    connection = await asyncpg.connect(dsn)
    try:
        user = uuid.uuid4()
        await connection.execute(
            "INSERT INTO users (id, email, hashed_password, is_active, is_superuser, "
            "is_verified, role, created_at, token_generation) "
            "VALUES ($1, 'bench@example.com', 'x', true, false, true, 'admin', now(), 0)",
            user,
        )
        ids = [uuid.uuid4() for _ in range(jobs)]
        names = [f"bench:modifiers:Job{n}" for n in range(jobs)]
        for job_id, full in zip(ids, names, strict=True):
            await connection.execute(
                "INSERT INTO jobs (id, room_id, category, name, full_name, schema, deleted, "
                "created_at, registered_by, declared, paused, validate_payload, active, "
                "active_keys) VALUES ($1, 'bench', 'modifiers', $2, $3, '{}'::json, false, "
                "now(), $4, false, false, false, 0, '{}'::json)",
                job_id,
                full.rsplit(":", 1)[1],
                full,
                user,
            )
        started = time.perf_counter()
        for first in range(1, tasks + 1, CHUNK):
            last = min(first + CHUNK - 1, tasks)
            await connection.execute(SEED, first, last, ids, names, jobs, tasks)
        say(f"seeded {tasks:,} tasks over {jobs} jobs in {time.perf_counter() - started:.0f} s")
        # A rare job: its few tasks are the oldest, so the newest completed tasks of the
        # table are all someone else's; the per-job index must be the one read.
        rare = uuid.uuid4()
        await connection.execute(
            "INSERT INTO jobs (id, room_id, category, name, full_name, schema, deleted, "
            "created_at, registered_by, declared, paused, validate_payload, active, "
            "active_keys) VALUES ($1, 'bench', 'modifiers', 'Rare', 'bench:modifiers:Rare', "
            "'{}'::json, false, now(), $2, false, false, false, 0, '{}'::json)",
            rare,
            user,
        )
        await connection.execute(SEED, 1, RARE, [rare], ["bench:modifiers:Rare"], 1, tasks)
        say(f"and {RARE:,} tasks of bench:modifiers:Rare, older than all the others")
        await connection.execute("ANALYZE")
        indexes = await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tasks' ORDER BY 1"
        )
        say("indexes on tasks: " + ", ".join(r["indexname"] for r in indexes))
        return [str(i) for i in ids] + [str(rare)]
    finally:
        await connection.close()


async def measure(dsn: str, job_ids: list[str], runs: int) -> None:
    from app.db.session import make_engine, make_sessionmaker
    from app.services import job_page

    engine = make_engine(make_url(dsn).set(drivername="postgresql+asyncpg"))
    sessions = make_sessionmaker(engine)
    samples = []
    for run in range(runs + 1):
        started = time.perf_counter()
        async with sessions() as session:
            found = await job_page.collect(session, "bench:modifiers:Job0")
        if run:  # the first is a warm-up
            samples.append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    assert found is not None
    say(
        f"job_page.collect: median {statistics.median(samples):.1f} ms "
        f"(min {min(samples):.1f}, max {max(samples):.1f}, {runs} runs); "
        f"counts {found.now.counts}, sample {found.sample_size}, run p50/p95/p99 "
        f"{found.run_seconds}, wait {found.wait_seconds}"
    )
    connection = await asyncpg.connect(dsn)
    try:
        for label, query, job_id in (
            ("head of the queue", HEAD_OF_QUEUE, job_ids[0]),
            ("newest completed", NEWEST_COMPLETED.format(sample=job_page.SAMPLE), job_ids[0]),
            (
                "newest completed, rare job",
                NEWEST_COMPLETED.format(sample=job_page.SAMPLE),
                job_ids[-1],
            ),
        ):
            plan = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}", uuid.UUID(job_id))
            say(f"--- {label}")
            for row in plan:
                say("  " + row[0])
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    admin_dsn = make_url(args.url).set(drivername="postgresql").render_as_string(False)
    name = f"bench_job_page_{os.getpid()}"
    dsn = make_url(admin_dsn).set(database=name).render_as_string(False)
    try:
        job_ids = await prepare(admin_dsn, dsn, name, args.jobs, args.tasks)
        await measure(dsn, job_ids, args.runs)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
