"""Benchmark of the beyond-the-contract paths on PostgreSQL: bulk submit throughput and
claim latency against a small and a large backlog. Prints figures; asserts nothing.

    uv run python scripts/bench_beyond.py [postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import migrate
from app.db.session import make_engine
from app.main import create_app
from app.services import bulk, tasks
from app.services.actors import Actor
from app.services.tasks import Submission
from app.settings import Settings

ADMIN = ("bench@example.com", "bench-password")
BATCH = 1000
BATCHES = 10
CLAIMS = 200


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _admin_sql(url: str, statement: str) -> None:
    engine = make_engine(url)
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(statement))
    await engine.dispose()


async def _seed(url: str, job_ids: list[uuid.UUID], count: int) -> None:
    """Pending tasks straight into the table, spread over the jobs; then VACUUM ANALYZE, so
    both measurements start without the dead index entries of earlier claims (autovacuum
    clears those in a running server)."""
    engine = make_engine(url)
    async with engine.begin() as connection:
        for job_id in job_ids:
            await connection.execute(
                text(
                    "INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, internal,"
                    " created_at, priority, run_at, attempt, max_attempts)"
                    " SELECT gen_random_uuid(), j.id, j.full_name, 'bench', 'pending', '{}',"
                    " false, clock_timestamp(), 0, clock_timestamp(), 1, 1"
                    " FROM jobs j, generate_series(1, :n) WHERE j.id = :job"
                ),
                {"n": count // len(job_ids), "job": job_id},
            )
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE tasks"))
    await engine.dispose()


async def _claim_ms(app_core: object, actor: Actor, worker_id: uuid.UUID) -> float:
    from app.state import Core

    assert isinstance(app_core, Core)
    timings: list[float] = []
    for _ in range(CLAIMS):
        async with app_core.sessionmaker() as session:
            started = time.perf_counter()
            view, _events = await tasks.claim(session, actor, worker_id)
            await session.commit()
            timings.append((time.perf_counter() - started) * 1000)
            assert view is not None
    return statistics.median(timings)


async def _bulk_service(app_core: object, actor: Actor) -> float:
    from app.state import Core

    assert isinstance(app_core, Core)
    submissions = [Submission({"i": i}) for i in range(BATCH)]
    started = time.perf_counter()
    for _ in range(BATCHES):
        async with app_core.sessionmaker() as session:
            await bulk.submit_many(session, actor, "bench", "bench:modifiers:A", submissions, ())
            await session.commit()
    return time.perf_counter() - started


async def main(base_url: str) -> None:
    name = f"jobserver_bench_{uuid.uuid4().hex[:8]}"
    await _admin_sql(base_url, f'CREATE DATABASE "{name}"')
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        await migrate.upgrade_async(engine)
        await engine.dispose()
        await run(url)
    finally:
        await _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(url: str) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        data_dir=Path(tempfile.mkdtemp()),
        secret_key="bench-secret-key-that-is-long-enough-0123456789",
        default_admin_email=ADMIN[0],
        default_admin_password=ADMIN[1],
        background_enabled=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/v1/auth/jwt/login", data={"username": ADMIN[0], "password": ADMIN[1]}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            job_ids: list[uuid.UUID] = []
            worker = ""
            for job in ("A", "B", "C"):
                reg = await client.put(
                    "/v1/joblib/rooms/bench/jobs",
                    json={"category": "modifiers", "name": job, "worker_id": worker or None},
                    headers=headers,
                )
                worker = reg.json()["worker_id"]
                job_ids.append(uuid.UUID(reg.json()["id"]))
            url_bulk = "/v1/joblib/rooms/bench/tasks/bench:modifiers:A/bulk"
            items = [{"payload": {"i": i}} for i in range(BATCH)]
            started = time.perf_counter()
            for _ in range(BATCHES):
                response = await client.post(url_bulk, json={"items": items}, headers=headers)
                assert response.status_code == 202, response.text
            elapsed = time.perf_counter() - started
            report(
                f"bulk submit: {BATCH * BATCHES} tasks in {elapsed:.2f} s "
                f"= {BATCH * BATCHES / elapsed:,.0f} tasks/s (batches of {BATCH})"
            )
            core = app.state.core
            await _admin_sql(url, "DELETE FROM tasks")
            user = (await client.get("/v1/users/me", headers=headers)).json()
            actor = Actor(uuid.UUID(user["id"]), "admin")
            elapsed = await _bulk_service(core, actor)
            report(
                f"bulk submit, service layer only (no HTTP/JSON): {BATCH * BATCHES} tasks in "
                f"{elapsed:.2f} s = {BATCH * BATCHES / elapsed:,.0f} tasks/s"
            )
            await _admin_sql(url, "DELETE FROM tasks")
            worker_id = uuid.UUID(worker)
            await _seed(url, job_ids, 1_000 + CLAIMS * 3)
            small = await _claim_ms(core, actor, worker_id)
            await _seed(url, job_ids, 100_000)
            large = await _claim_ms(core, actor, worker_id)
            report(
                f"claim (worker on 3 jobs), median of {CLAIMS}: "
                f"{small:.2f} ms with ~1,000 pending, {large:.2f} ms with ~100,000 pending "
                f"({large / small:.2f}x)"
            )


if __name__ == "__main__":
    target = (
        sys.argv[1] if len(sys.argv) > 1 else "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    asyncio.run(main(target))
