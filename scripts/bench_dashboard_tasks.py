"""The dashboard's Tasks view at scale (issue 21): its queries, timed by PostgreSQL's
EXPLAIN ANALYZE against `--tasks` rows (default 1,000,000).

    uv run python scripts/bench_dashboard_tasks.py
    uv run python scripts/bench_dashboard_tasks.py --tasks 100000 --keep

Creates a scratch database next to `--admin-url`'s, migrates it to head (so the indexes of
migration 0008 are there), fills `tasks` with one INSERT ... SELECT generate_series spread
over `--jobs` jobs in `--rooms` rooms (2 % failed, 10 % pending, the rest completed; one
worker per job; created one after another over the last week), then ANALYZE. Each query is
the one the view sends (services/task_browse.query, literal values), run once to warm up and
then under EXPLAIN (ANALYZE, BUFFERS); the script prints each plan's top node and execution
time. The scratch database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.migrate import upgrade_async
from app.services.task_browse import Cursor, Filters, query

FILL = """
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, worker_id, internal,
                   created_at, run_at, priority, attempt, max_attempts)
SELECT gen_random_uuid(), j.id, j.full_name, j.room_id,
       CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 10 = 1 THEN 'pending' ELSE 'completed' END,
       '{}'::jsonb,
       CASE WHEN g % 10 = 1 THEN NULL ELSE j.worker_id END, false,
       now() - interval '7 days' + g * (interval '7 days' / $1),
       now() - interval '7 days' + g * (interval '7 days' / $1), 0, 1, 1
FROM generate_series(1, $1::bigint) AS g
JOIN (SELECT row_number() OVER (ORDER BY full_name) - 1 AS n, * FROM bench_jobs) AS j
  ON j.n = g % $2
"""

INDEX = re.compile(r"(?:using|on) ((?:ix|uq|pk)_\w+)")


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
    used = sorted({m for line in plan for m in INDEX.findall(line)})
    say(f"{name:<34} {took.split(': ')[1]:>12}   top: {plan[0].split('  (')[0].strip()}")
    say(f"{'':<34} indexes: {', '.join(used) or '-'}")
    if os.environ.get("BENCH_PLANS") == "1":
        say("\n".join(plan))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    name = f"bench_dashboard_tasks_{os.getpid()}"
    admin = await asyncpg.connect(args.admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        await upgrade_async(engine)
        await engine.dispose()
        db = await asyncpg.connect(url)
        await _fill(db, args.tasks, args.rooms, args.jobs)
        await _measure(db, args.tasks)
        await db.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _fill(db: asyncpg.Connection, tasks: int, rooms: int, jobs: int) -> None:
    started = time.perf_counter()
    await db.execute(
        "INSERT INTO users (id, email, hashed_password, is_active, is_superuser, is_verified,"
        " role, created_at) VALUES (gen_random_uuid(), 'bench@example.com', 'x', true,"
        " false, true, 'operator', now())"
    )
    await db.execute(
        """
        CREATE TEMP TABLE bench_jobs AS
        SELECT gen_random_uuid() AS id, 'room' || (j % $1) AS room_id,
               'room' || (j % $1) || ':modifiers:Job' || j AS full_name,
               gen_random_uuid() AS worker_id
        FROM generate_series(0, $2 - 1) AS j
        """,
        rooms,
        jobs,
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
    await db.execute(FILL, tasks, jobs)
    await db.execute("ANALYZE")
    say(f"filled {tasks:,} tasks in {time.perf_counter() - started:.1f} s")


async def _measure(db: asyncpg.Connection, tasks: int) -> None:
    job = await db.fetchval("SELECT full_name FROM jobs ORDER BY full_name LIMIT 1")
    worker = await db.fetchval("SELECT id FROM workers LIMIT 1")
    middle = await db.fetchrow(
        "SELECT created_at, seq FROM tasks WHERE seq = (SELECT min(seq) + $1 FROM tasks)",
        tasks // 2,
    )
    deep = Cursor(middle["created_at"], middle["seq"])
    some_id = str(await db.fetchval("SELECT id FROM tasks WHERE seq = $1", tasks // 3))
    page = 50
    cases: list[tuple[str, Select[Any]]] = [
        ("first page, newest first", query(Filters(), "newest", None, "next", page)),
        ("first page, oldest first", query(Filters(), "oldest", None, "next", page)),
        ("status=failed", query(Filters(status="failed"), "newest", None, "next", page)),
        ("room=room3", query(Filters(room="room3"), "newest", None, "next", page)),
        ("job (by name)", query(Filters(job=job), "newest", None, "next", page)),
        ("worker", query(Filters(worker=worker), "newest", None, "next", page)),
        (
            "room=room0 + status=failed",
            query(Filters(room="room0", status="failed"), "newest", None, "next", page),
        ),
        ("deep keyset page (middle)", query(Filters(), "newest", deep, "next", page)),
        (
            "deep keyset page, status=failed",
            query(Filters(status="failed"), "newest", deep, "next", page),
        ),
        ("previous page from the middle", query(Filters(), "newest", deep, "prev", page)),
        (
            "id prefix (4 hex digits)",
            query(Filters(id_prefix=some_id[:4]), "newest", None, "next", page),
        ),
        (
            "id prefix (8 hex digits)",
            query(Filters(id_prefix=some_id[:8]), "newest", None, "next", page),
        ),
    ]
    for name, statement in cases:
        await _explain(db, name, statement)


if __name__ == "__main__":
    asyncio.run(main())
