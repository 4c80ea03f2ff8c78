"""The Tasks view over ASGI: filters, keyset paging, id-prefix search, bulk cancel/retry."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from app.dashboard.tasks_view import PAGE_SIZE
from app.db.models import Task
from app.state import Core
from tests.dashboard.conftest import SignIn, csrf_of
from tests.factories import make_job, make_task, make_user, make_worker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROW = re.compile(r'<tr data-task="([0-9a-f-]{36})" data-status="(\w+)">')


async def _seed(core: Core, count: int = 12) -> list[Task]:
    """Tasks a minute apart over two rooms, two jobs and mixed statuses; one worker ran
    the first three."""
    async with core.sessionmaker() as db:
        owner = await make_user(db, "seed@example.com")
        worker = await make_worker(db, owner)
        first = await make_job(db, "room1", name="Echo")
        second = await make_job(db, "room2", name="Other")
        made = []
        for i in range(count):
            made.append(
                await make_task(
                    db,
                    first if i % 2 == 0 else second,
                    status="failed" if i % 3 == 0 else "pending",
                    created_at=T0 + timedelta(minutes=i),
                    worker_id=worker.id if i < 3 else None,
                )
            )
        await db.commit()
    return made


def _rows(html: str) -> list[tuple[str, str]]:
    return ROW.findall(html)


async def _shown(http: httpx.AsyncClient, **params: str) -> list[str]:
    response = await http.get("/dashboard/tasks", params=params)
    assert response.status_code == 200, response.text
    return [task_id for task_id, _ in _rows(response.text)]


async def test_tasks_are_listed_newest_first_and_oldest_first(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    http = await sign_in("viewer")
    ids = [str(t.id) for t in made]
    assert await _shown(http) == ids[::-1]
    assert await _shown(http, order="oldest") == ids


async def test_each_filter_narrows_the_list(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    http = await sign_in("viewer")
    by_room = await _shown(http, room="room2", order="oldest")
    assert by_room == [str(t.id) for t in made if t.room_id == "room2"]
    by_job = await _shown(http, job="room1:modifiers:Echo", order="oldest")
    assert by_job == [str(t.id) for t in made if t.job_name == "room1:modifiers:Echo"]
    by_status = await _shown(http, status="failed", order="oldest")
    assert by_status == [str(t.id) for t in made if t.status == "failed"]
    worker = str(made[0].worker_id)
    assert await _shown(http, worker=worker, order="oldest") == [str(t.id) for t in made[:3]]
    window = {"from": "2026-01-01T00:04", "to": "2026-01-01T00:06:00", "order": "oldest"}
    assert await _shown(http, **window) == [str(t.id) for t in made[4:7]]
    both = await _shown(http, room="room1", status="failed", order="oldest")
    assert both == [str(t.id) for t in made if t.room_id == "room1" and t.status == "failed"]


async def test_keyset_paging_visits_every_task_once(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core, PAGE_SIZE * 2 + 5)
    http = await sign_in("viewer")
    seen: list[str] = []
    pages: list[str] = []
    url = "/dashboard/tasks?order=oldest"
    while True:
        response = await http.get(url)
        assert response.status_code == 200
        pages.append(response.text)
        seen += [task_id for task_id, _ in _rows(response.text)]
        found = re.search(r'rel="next" data-testid="next-page" href="([^"]+)"', response.text)
        if found is None:
            break
        url = "/dashboard/tasks" + found.group(1).replace("&amp;", "&")
    assert seen == [str(t.id) for t in made]
    assert len(pages) == 3
    # And back: the last page's "previous" shows the middle page again.
    back = re.search(r'rel="prev" data-testid="prev-page" href="([^"]+)"', pages[-1])
    assert back is not None
    again = await http.get("/dashboard/tasks" + back.group(1).replace("&amp;", "&"))
    assert _rows(again.text) == _rows(pages[1])


async def test_search_takes_an_id_prefix(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    http = await sign_in("viewer")
    target = str(made[5].id)
    expected = [str(t.id) for t in made if str(t.id).startswith(target[:10])]
    assert await _shown(http, q=target[:10]) == expected
    assert await _shown(http, q=target.upper()) == [target]
    assert (await http.get("/dashboard/tasks", params={"q": "xyz"})).status_code == 400


async def _bulk(
    http: httpx.AsyncClient, action: str, ids: list[str], *, csrf: bool = True
) -> httpx.Response:
    token = csrf_of((await http.get("/dashboard/tasks")).text)
    headers = {"X-CSRF-Token": token} if csrf else {}
    return await http.post(f"/dashboard/tasks-bulk/{action}", data={"ids": ids}, headers=headers)


async def _statuses(core: Core, ids: list[str]) -> dict[str, str]:
    async with core.sessionmaker() as db:
        rows = await db.execute(
            select(Task.id, Task.status).where(Task.id.in_([uuid.UUID(i) for i in ids]))
        )
        return {str(i): s for i, s in rows}


async def test_bulk_retry_turns_the_failed_tasks_pending_and_says_what_was_refused(
    core: Core, sign_in: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    made = await _seed(core)
    failed = [str(t.id) for t in made if t.status == "failed"]
    pending = str(next(t.id for t in made if t.status == "pending"))
    http = await sign_in("admin")
    with caplog.at_level(logging.INFO, logger="jobserver.audit"):
        response = await _bulk(http, "retry", [*failed, pending])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["done"] == len(failed), body["refused"]
    assert sorted(body["done_ids"]) == sorted(failed)
    assert [r["id"] for r in body["refused"]] == [pending]
    assert body["refused"][0]["status"] == 409
    assert set((await _statuses(core, failed)).values()) == {"pending"}
    [line] = [r for r in caplog.records if r.name == "jobserver.audit"]
    assert line.__dict__["action"] == "bulk_retry"
    assert line.__dict__["count"] == len(failed)
    assert sorted(line.__dict__["task_ids"]) == sorted(failed)
    assert line.__dict__["actor_email"] == "admin-0@example.com"
    assert line.__dict__["refused_ids"] == [pending]


async def test_bulk_cancel_cancels_the_selection(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    chosen = [str(t.id) for t in made if t.status == "pending"][:3]
    http = await sign_in("admin")
    response = await _bulk(http, "cancel", chosen)
    assert response.status_code == 200, response.text
    assert response.json()["done"] == 3
    assert set((await _statuses(core, chosen)).values()) == {"cancelled"}


async def test_a_viewer_is_refused_bulk_actions(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    failed = [str(t.id) for t in made if t.status == "failed"]
    http = await sign_in("viewer")
    response = await _bulk(http, "retry", failed)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert set((await _statuses(core, failed)).values()) == {"failed"}


async def test_a_bulk_action_without_the_csrf_token_is_refused(core: Core, sign_in: SignIn) -> None:
    made = await _seed(core)
    failed = [str(t.id) for t in made if t.status == "failed"]
    http = await sign_in("operator")
    response = await _bulk(http, "retry", failed, csrf=False)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert set((await _statuses(core, failed)).values()) == {"failed"}


async def test_an_operator_is_refused_tasks_of_others_one_by_one(
    core: Core, sign_in: SignIn
) -> None:
    made = await _seed(core)
    failed = [str(t.id) for t in made if t.status == "failed"]
    http = await sign_in("operator")
    response = await _bulk(http, "retry", failed)
    assert response.status_code == 200
    body = response.json()
    assert body["done"] == 0
    assert {r["status"] for r in body["refused"]} == {403}
    assert body["refused"][0]["reason"] == "Not authorized to retry this task"
