"""The error inbox at scale (issue 21), and what the dashboard's task indexes cost writes.

    uv run python scripts/bench_error_inbox.py
    uv run python scripts/bench_error_inbox.py --tasks 200000 --cycles 2000

Creates a scratch database next to `--admin-url`'s, migrates it to head and fills `tasks`
with `--tasks` rows (default 1,000,000) by one INSERT ... SELECT generate_series: every
tenth failed, in `--groups` fingerprint groups (fingerprints from
services/tasks/fingerprints.py), the rest completed, over 100 jobs; then VACUUM ANALYZE.

1. Inbox reads: each statement the inbox sends (services/failure_groups.py; the task list
   filtered to a group, services/task_browse.py) under EXPLAIN (ANALYZE, BUFFERS), and the
   whole `groups()` call through SQLAlchemy, median of five.
2. Write cost: `--cycles` tasks through submit -> claim -> running -> completed by the real
   PostgreSQL task store (app/db/store/postgres.py: the statements the service sends),
   `--batches` tasks per call (1: the hot path one at a time; 100: bulk submit, batch
   claim and batch reports), by `--concurrency` loops at once; with every index, without
   migration 0010's index, and without the six indexes of migrations 0008-0010, in one
   sitting, alternated over `--rounds` rounds (indexes dropped and built again between).

The scratch database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.db.migrate import upgrade_async
from app.db.store.postgres import PostgresTaskStore
from app.services import failure_groups
from app.services.actors import Actor
from app.services.failure_groups import Mark
from app.services.task_browse import Cursor, Filters, query
from app.services.tasks.fingerprints import fingerprint_of
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import NewTask, Report, Target

JOBS = 100
ALIAS = re.compile(r"on tasks( tasks_\d+)?")
FILL = """
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, worker_id, internal,
                   created_at, run_at, started_at, completed_at, priority, attempt,
                   max_attempts, error, error_fingerprint)
SELECT gen_random_uuid(), j.id, j.full_name, j.room_id,
       CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END, '{}'::jsonb, j.worker_id,
       false, t, t, t, t + interval '1 second', 0, 1, 1,
       CASE WHEN g % 10 = 0 THEN 'Error' || (g / 10 % $3) || ': task ' || g END,
       CASE WHEN g % 10 = 0 THEN ($4::text[])[(g / 10 % $3) + 1] END
FROM generate_series(1, $1::bigint) AS g
CROSS JOIN LATERAL (SELECT now() - interval '7 days' + g * (interval '7 days' / $1) AS t) AS s
JOIN (SELECT row_number() OVER (ORDER BY full_name) - 1 AS n, * FROM bench_jobs) AS j
  ON j.n = g % $2
"""
DASHBOARD_INDEXES = {
    # name -> definition, as migrations 0008, 0009 and 0010 create them
    "ix_tasks_created": "ON tasks (created_at, seq)",
    "ix_tasks_status_created": "ON tasks (status, created_at, seq)",
    "ix_tasks_job_created": "ON tasks (job_id, created_at, seq)",
    "ix_tasks_worker_created": "ON tasks (worker_id, created_at, seq) WHERE worker_id IS NOT NULL",
    "ix_tasks_job_completed": "ON tasks (job_id, completed_at) WHERE status = 'completed'",
    "ix_tasks_failed_fingerprint": (
        "ON tasks (error_fingerprint, created_at, seq, job_name, completed_at) "
        "WHERE status = 'failed'"
    ),
}
STEPS = ("submit", "claim", "running", "completed")
VARIANTS = {
    "all indexes": set(),
    "without 0010's": {"ix_tasks_failed_fingerprint"},
    "without 0008-0010's six": set(DASHBOARD_INDEXES),
}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _sql(statement: Select[Any]) -> str:
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


async def _explain(db: asyncpg.Connection, name: str, statement: Select[Any]) -> None:
    sql = _sql(statement)
    await db.fetch(sql)
    plan = [row[0] for row in await db.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")]
    took = next(line for line in plan if line.startswith("Execution Time"))
    heap = next((line.strip() for line in plan if "Heap Fetches" in line), "")
    say(f"{name:<40} {took.split(': ')[1]:>12}   top: {plan[0].split('  (')[0].strip()}")
    scans = sorted(
        {
            ALIAS.sub("on tasks", line.strip().split("  (")[0])
            for line in plan
            if " on tasks" in line
        }
    )
    say(f"{'':<40} {'; '.join(scans)} {heap}")
    if os.environ.get("BENCH_PLANS") == "1":
        say("\n".join(plan))


async def _fill(db: asyncpg.Connection, tasks: int, groups: int) -> list[str]:
    started = time.perf_counter()
    await db.execute(
        "INSERT INTO users (id, email, hashed_password, is_active, is_superuser, is_verified,"
        " role, created_at) VALUES (gen_random_uuid(), 'bench@example.com', 'x', true,"
        " false, true, 'operator', now())"
    )
    await db.execute(
        """
        CREATE TEMP TABLE bench_jobs AS
        SELECT gen_random_uuid() AS id, 'room' || (j % 20) AS room_id,
               'room' || (j % 20) || ':modifiers:Job' || j AS full_name,
               gen_random_uuid() AS worker_id
        FROM generate_series(0, $1 - 1) AS j
        """,
        JOBS,
    )
    await db.execute(
        "INSERT INTO jobs (id, room_id, category, name, full_name, schema, deleted, created_at)"
        " SELECT id, room_id, 'modifiers', split_part(full_name, ':', 3), full_name, '{}',"
        " false, now() FROM bench_jobs"
    )
    await db.execute(
        "INSERT INTO workers (id, user_id, created_at, last_heartbeat)"
        " SELECT b.worker_id, u.id, now(), now() FROM bench_jobs b, users u"
    )
    fingerprints = [fingerprint_of(f"Error{n}: task", None) for n in range(groups)]
    await db.execute(FILL, tasks, JOBS, groups, fingerprints)
    await db.execute("VACUUM ANALYZE tasks")
    say(
        f"filled {tasks:,} tasks ({tasks // 10:,} failed in {groups} groups) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return fingerprints


async def _reads(db: asyncpg.Connection, url: str, fingerprints: list[str]) -> None:
    say("\n-- inbox reads --")
    big = fingerprints[0]
    await _explain(db, "group counts (all groups)", failure_groups.counts_statement())
    newest = [
        row[0]
        for row in await db.fetch(
            "SELECT max(seq) FROM tasks WHERE status = 'failed' GROUP BY error_fingerprint"
        )
    ]
    await _explain(db, "newest task of each group", failure_groups.samples_statement(newest))
    await _explain(
        db, "retry-all batch (first 500)", failure_groups.batch_statement(big, None, 500)
    )
    middle = await db.fetchrow(
        "SELECT created_at, seq FROM tasks WHERE status = 'failed' AND error_fingerprint = $1 "
        "ORDER BY created_at, seq OFFSET $2 LIMIT 1",
        big,
        await db.fetchval(
            "SELECT count(*) / 2 FROM tasks WHERE status = 'failed' AND error_fingerprint = $1",
            big,
        ),
    )
    mark = Mark(middle["created_at"], middle["seq"])
    await _explain(
        db, "retry-all batch (mid-group)", failure_groups.batch_statement(big, mark, 500)
    )
    group = Filters(fingerprint=big)
    await _explain(db, "task list: a group, first page", query(group, "newest", None, "next", 50))
    deep = Cursor(middle["created_at"], middle["seq"])
    await _explain(db, "task list: a group, deep page", query(group, "newest", deep, "next", 50))
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    timings = []
    async with AsyncSession(engine) as session:
        for _ in range(6):
            started = time.perf_counter()
            found = await failure_groups.groups(session)
            timings.append(time.perf_counter() - started)
    await engine.dispose()
    total = sum(g.count for g in found)
    say(
        f"{'groups() end to end (median of 5)':<40} {statistics.median(timings[1:]) * 1000:9.3f} ms"
        f"   {len(found)} groups, {total:,} failed tasks"
    )


async def _cycles(
    store: PostgresTaskStore,
    actor: Actor,
    worker: str,
    target: Target,
    tasks: int,
    batch: int,
    concurrency: int,
) -> dict[str, list[float]]:
    """`tasks` tasks through submit -> claim -> running -> completed, `batch` per call, by
    `concurrency` loops; the seconds each call took, by step."""
    spent: dict[str, list[float]] = {step: [] for step in STEPS}
    policy = RetryPolicy()

    async def timed(step: str, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        result = await call()
        spent[step].append(time.perf_counter() - started)
        return result

    async def loop(rounds: int) -> None:
        for _ in range(rounds):
            new = [NewTask(id=str(uuid.uuid4()), payload="{}") for _ in range(batch)]
            await timed("submit", lambda n=new: store.submit(target, n))
            claimed = await timed("claim", lambda: store.claim(worker, str(actor.id), batch, 60.0))
            held = [change.task for change in claimed.changes]
            for status in (TaskStatus.RUNNING, TaskStatus.COMPLETED):
                reports = [Report(t.id, status, attempt=t.attempt, worker_id=worker) for t in held]
                if reports:
                    await timed(status.value, lambda r=reports: store.report(r, actor, policy))

    await asyncio.gather(*(loop(tasks // batch // concurrency) for _ in range(concurrency)))
    return spent


async def _use_indexes(db: asyncpg.Connection, dropped: set[str]) -> None:
    """Drops the indexes in `dropped`, builds the others of DASHBOARD_INDEXES if missing."""
    for index, definition in DASHBOARD_INDEXES.items():
        if index in dropped:
            await db.execute(f"DROP INDEX IF EXISTS {index}")
        else:
            await db.execute(f"CREATE INDEX IF NOT EXISTS {index} {definition}")


async def _writes(db: asyncpg.Connection, url: str, args: argparse.Namespace) -> None:
    say(
        f"\n-- write cost: {args.cycles:,} tasks per run, {args.rounds} rounds, "
        f"{args.concurrency} loops --"
    )
    user = await db.fetchval("SELECT id FROM users LIMIT 1")
    job = await db.fetchrow("SELECT id, full_name, room_id FROM jobs ORDER BY full_name LIMIT 1")
    worker = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO workers (id, user_id, created_at, last_heartbeat)"
        " VALUES ($1, $2, now(), now())",
        worker,
        user,
    )
    await db.execute(
        "INSERT INTO worker_jobs (worker_id, job_id) VALUES ($1, $2)", worker, job["id"]
    )
    actor = Actor(id=user, role="operator")
    target = Target(job_name=job["full_name"], room_id=job["room_id"], created_by=str(user))
    store = PostgresTaskStore(url, pool_size=args.concurrency)
    runs: dict[tuple[int, str], list[dict[str, list[float]]]] = {}
    try:
        for _ in range(args.rounds):
            for batch in args.batches:
                for name, dropped in VARIANTS.items():
                    await _use_indexes(db, dropped)
                    # Fresh connections: plans made with another set of indexes go.
                    await store.start()
                    await _cycles(store, actor, worker, target, 100 * batch, batch, 1)
                    started = time.perf_counter()
                    spent = await _cycles(
                        store, actor, worker, target, args.cycles, batch, args.concurrency
                    )
                    spent["wall"] = [time.perf_counter() - started]
                    await store.close()
                    runs.setdefault((batch, name), []).append(spent)
    finally:
        await store.close()
        await _use_indexes(db, set())
    for (batch, name), found in runs.items():
        rate = [args.cycles / run["wall"][0] for run in found]
        each = " ".join(f"{r:.0f}" for r in rate)
        parts = [f"batch {batch:<4} {name:<24} {statistics.mean(rate):7.0f} tasks/s ({each})"]
        for step in STEPS:
            ms = statistics.median([statistics.median(run[step]) * 1000 for run in found])
            parts.append(f"{step} {ms:.2f}")
        say("  ".join(parts) + "  (median ms per call)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=4000, help="tasks per timed run")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--writes-only", action="store_true")
    args = parser.parse_args()
    name = f"bench_error_inbox_{os.getpid()}"
    admin = await asyncpg.connect(args.admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        await upgrade_async(engine)
        await engine.dispose()
        db = await asyncpg.connect(url)
        fingerprints = await _fill(db, args.tasks, args.groups)
        if not args.writes_only:
            await _reads(db, url, fingerprints)
        await _writes(db, url, args)
        await db.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
