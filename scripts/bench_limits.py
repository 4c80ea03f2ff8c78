"""What concurrency limits cost a claim on PostgreSQL: the task store alone (no HTTP), W
workers each claiming one task at a time and completing it, on one job that is unlimited,
limited loosely (max_running far above W: the row lock and counters, no waiting for room)
and limited tightly (max_running below W: claimers queue on the job row and find no room).

    uv run python scripts/bench_limits.py                    # 8 workers, 10 s per case
    uv run python scripts/bench_limits.py --workers 16 --seconds 20 --rounds 3

Each case runs on a fresh database (`bench_limits_<random>`, dropped afterwards) migrated
to head, with enough pending tasks that the queue never runs dry. Reports completed tasks
per second and the median and 95th percentile of a claim's time, per case.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
from bench_targets import say

from app.db import migrate
from app.db.session import make_engine
from app.db.store.postgres import PostgresTaskStore
from app.services.actors import Actor
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TaskStatus
from app.services.tasks.store import NewTask, Report, Target

JOB = "bench:modifiers:Limited"
CASES = {"unlimited": None, "loose": 1_000_000, "tight": 2}
POLICY = RetryPolicy(base_seconds=0, max_seconds=0)


async def _database(server: str) -> tuple[str, str]:
    name = f"bench_limits_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    engine = make_engine(f"postgresql+asyncpg://{server.split('://', 1)[1]}/{name}")
    await migrate.upgrade_async(engine)
    await engine.dispose()
    return name, f"{server}/{name}"


async def _drop(server: str, name: str) -> None:
    admin = await asyncpg.connect(f"{server}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def _seed(url: str, workers: int, max_running: int | None) -> tuple[Actor, list[str]]:
    user, job = uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(workers)]
    db = await asyncpg.connect(url)
    await db.execute(
        "INSERT INTO users (id, email, hashed_password, is_active, is_superuser, is_verified,"
        " role, created_at) VALUES ($1, 'bench@example.com', 'x', true, false, true,"
        " 'operator', now())",
        user,
    )
    await db.execute(
        "INSERT INTO jobs (id, room_id, category, name, full_name, schema, deleted, created_at,"
        " max_running) VALUES ($1, 'bench', 'modifiers', 'Limited', $2, '{}', false, now(), $3)",
        job,
        JOB,
        max_running,
    )
    for worker in ids:
        await db.execute(
            "INSERT INTO workers (id, user_id, created_at, last_heartbeat)"
            " VALUES ($1, $2, now(), now())",
            worker,
            user,
        )
        await db.execute("INSERT INTO worker_jobs VALUES ($1, $2)", worker, job)
    await db.close()
    return Actor(user, "operator"), [str(w) for w in ids]


async def _case(args: argparse.Namespace, max_running: int | None) -> tuple[float, list[float]]:
    name, url = await _database(args.pg)
    store = PostgresTaskStore(f"postgresql://{url.split('://', 1)[1]}", args.workers + 2)
    try:
        actor, workers = await _seed(url, args.workers, max_running)
        await store.start()
        target = Target(JOB, "bench", str(actor.id))
        for _ in range(args.tasks // 1000):
            batch = [NewTask(str(uuid.uuid4()), "{}") for _ in range(1000)]
            await store.submit(target, batch)
        claims: list[float] = []
        done = 0
        stop = time.monotonic() + args.seconds

        async def work(worker: str) -> None:
            nonlocal done
            while time.monotonic() < stop:
                started = time.perf_counter()
                claimed = await store.claim(worker, str(actor.id), 1, 300)
                claims.append(time.perf_counter() - started)
                for change in claimed.changes:
                    task = change.task.id
                    await store.report([Report(task, TaskStatus.RUNNING)], actor, POLICY)
                    await store.report([Report(task, TaskStatus.COMPLETED)], actor, POLICY)
                    done += 1

        await asyncio.gather(*(work(w) for w in workers))
        return done / args.seconds, claims
    finally:
        await store.close()
        await _drop(args.pg, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        for case, max_running in CASES.items():
            rate, claims = await _case(args, max_running)
            ms = sorted(c * 1000 for c in claims)
            p95 = ms[int(len(ms) * 0.95)] if ms else float("nan")
            say(
                f"round {round_} {case:>9}: {rate:8.1f} tasks/s, claim median "
                f"{statistics.median(ms):.2f} ms, p95 {p95:.2f} ms ({len(ms)} claims)"
            )


if __name__ == "__main__":
    asyncio.run(main())
