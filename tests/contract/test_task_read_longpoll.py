"""REST.md §2 GET /tasks/{id}: plain reads and `Prefer: wait=N` long-polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from app.api.tasks import prefer_wait
from app.db.models import Task
from app.state import Core
from tests.contract.conftest import (
    JOBLIB,
    Headers,
    assert_problem,
    claimed,
    get_task,
    patch,
    registered_worker,
    submitted,
)

MAX_WAIT = 3
WAKE_BOUND_SECONDS = 0.2


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"long_poll_max_wait_seconds": MAX_WAIT}


async def _running_task(client: httpx.AsyncClient, headers: Headers) -> str:
    worker_id = await registered_worker(client, headers)
    await submitted(client, headers)
    task_id = await claimed(client, headers, worker_id)
    await patch(client, headers, task_id, "running")
    return task_id


def _poll(
    client: httpx.AsyncClient, headers: Headers, task_id: str, prefer: str
) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        client.get(f"{JOBLIB}/tasks/{task_id}", headers={**headers, "Prefer": prefer})
    )


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("respond-async, wait=60", 60),
        ("wait=0", 0),
        ("wait=abc", None),
        ("respond-async", None),
        (None, None),
        ("handling=lenient; wait=7, wait=9", 7),
    ],
)
def test_prefer_header_yields_the_first_wait_digits(header: str | None, wait: int | None) -> None:
    assert prefer_wait(header) == wait


async def test_unknown_task_is_404(client: httpx.AsyncClient, user_headers: Headers) -> None:
    task_id = uuid.uuid4()
    response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)
    assert_problem(response, 404, "task-not-found", f"Task '{task_id}' not found")


async def test_invalid_task_uuid_is_422(client: httpx.AsyncClient, user_headers: Headers) -> None:
    response = await client.get(f"{JOBLIB}/tasks/nope", headers=user_headers)
    assert response.status_code == 422


async def test_read_without_prefer_answers_at_once_without_preference_applied(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert "preference-applied" not in response.headers


async def test_wait_zero_answers_at_once_without_preference_applied(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    response = await client.get(
        f"{JOBLIB}/tasks/{task_id}", headers={**user_headers, "Prefer": "wait=0"}
    )
    assert "preference-applied" not in response.headers


async def test_terminal_task_answers_at_once_without_preference_applied(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    await patch(client, user_headers, task_id, "completed")
    started = time.monotonic()
    response = await client.get(
        f"{JOBLIB}/tasks/{task_id}", headers={**user_headers, "Prefer": "wait=2"}
    )
    assert time.monotonic() - started < 1
    assert response.json()["status"] == "completed"
    assert "preference-applied" not in response.headers


async def test_wait_times_out_with_the_current_task_and_preference_applied(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    started = time.monotonic()
    response = await client.get(
        f"{JOBLIB}/tasks/{task_id}", headers={**user_headers, "Prefer": "respond-async, wait=1"}
    )
    assert time.monotonic() - started >= 1
    assert response.json()["status"] == "running"
    assert response.headers["preference-applied"] == "wait=1"


async def test_completion_ends_the_wait_and_echoes_the_capped_wait(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    poll = _poll(client, user_headers, task_id, "wait=600")
    await asyncio.sleep(0.1)
    await patch(client, user_headers, task_id, "completed")
    response = await asyncio.wait_for(poll, MAX_WAIT)
    assert response.json()["status"] == "completed"
    assert response.headers["preference-applied"] == f"wait={MAX_WAIT}"


async def test_claimed_and_running_do_not_end_the_wait(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = await registered_worker(client, user_headers)
    task_id = await submitted(client, user_headers)
    poll = _poll(client, user_headers, task_id, "wait=1")
    await asyncio.sleep(0.1)
    await claimed(client, user_headers, worker_id)
    await patch(client, user_headers, task_id, "running")
    await asyncio.sleep(0.2)
    assert not poll.done()
    response = await poll
    assert response.json()["status"] == "running"
    assert response.headers["preference-applied"] == "wait=1"


async def test_wake_up_after_completion_takes_under_200_ms(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    poll = _poll(client, user_headers, task_id, f"wait={MAX_WAIT}")
    await asyncio.sleep(0.2)
    assert not poll.done()
    await patch(client, user_headers, task_id, "completed")
    committed = time.monotonic()
    response = await asyncio.wait_for(poll, MAX_WAIT)
    woke_after = time.monotonic() - committed
    assert response.json()["status"] == "completed"
    assert woke_after < WAKE_BOUND_SECONDS, f"long-poll woke {woke_after * 1000:.0f} ms late"


async def test_task_deleted_mid_wait_is_404(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    poll = _poll(client, user_headers, task_id, "wait=1")
    await asyncio.sleep(0.1)
    async with core.sessionmaker() as session:
        await session.execute(delete(Task).where(Task.id == uuid.UUID(task_id)))
        await session.commit()
    response = await poll
    assert response.status_code == 404


async def test_waiting_holds_no_database_connection(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    task_id = await _running_task(client, user_headers)
    polls = [_poll(client, user_headers, task_id, "wait=2") for _ in range(3)]
    await asyncio.sleep(0.3)
    assert core.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # SQLite has one pooled connection: a waiter holding it would block this read.
    assert (await get_task(client, user_headers, task_id))["status"] == "running"
    await patch(client, user_headers, task_id, "completed")
    for poll in polls:
        assert (await poll).json()["status"] == "completed"
