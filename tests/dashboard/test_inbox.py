"""The error inbox: every failed task grouped by fingerprint with exact counts, each
group's tasks in the task list, and retry all / cancel all over the whole group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.dashboard import inbox
from app.db.models import Job, Task
from app.services.failure_groups import groups
from app.services.tasks.fingerprints import fingerprint_of
from tests.dashboard.conftest import SignIn, csrf_of
from tests.factories import failed_rows, make_job, make_task

TRACE = 'Traceback (most recent call last):\n  File "w.py", line 3, in run\n    boom()\n'
VALUE_ERROR = fingerprint_of("ValueError: x", TRACE)


async def _failures(core: Any) -> tuple[list[str], list[str]]:
    """Two tasks failing with ValueError (different messages, same top frame), one KeyError."""
    async with core.sessionmaker() as db:
        job = await make_job(db)
        values = [
            await make_task(db, job, status="failed", error=f"ValueError: bad {n}", traceback=TRACE)
            for n in range(2)
        ]
        keys = [await make_task(db, job, status="failed", error="KeyError: 'x'")]
        await db.commit()
    return [str(t.id) for t in values], [str(t.id) for t in keys]


async def _many_failures(core: Any, count: int, job: Job | None = None) -> Job:
    """`count` ValueError failures, inserted in one flush, finishing a second apart."""
    start = datetime.now(UTC) - timedelta(days=1)
    async with core.sessionmaker() as db:
        job = job or await make_job(db)
        rows = failed_rows(
            job,
            (f"ValueError: bad {n}" for n in range(count)),
            traceback=TRACE,
            error_fingerprint=VALUE_ERROR,
        )
        for n, row in enumerate(rows):
            row.completed_at = start + timedelta(seconds=n)
        db.add_all(rows)
        await db.commit()
    return job


async def _statuses(core: Any, job: Job) -> dict[str, int]:
    async with core.sessionmaker() as db:
        found = await db.scalars(select(Task.status).where(Task.job_id == job.id))
        counts: dict[str, int] = {}
        for status in found:
            counts[status] = counts.get(status, 0) + 1
        return counts


async def test_failures_are_grouped_by_fingerprint(core: Any, sign_in: SignIn) -> None:
    await _failures(core)
    async with core.sessionmaker() as db:
        found = await groups(db)
    assert [g.count for g in found] == [2, 1]
    assert found[0].fingerprint == VALUE_ERROR
    assert found[0].label == 'ValueError @ File "w.py", line 3, in run'
    http = await sign_in("viewer")
    page = await http.get("/dashboard/failures")
    assert page.status_code == 200
    assert "KeyError: &#39;x&#39;" in page.text
    assert 'data-action="retry-all"' not in page.text


async def test_counts_are_exact_beyond_a_thousand_failures(core: Any, sign_in: SignIn) -> None:
    job = await _many_failures(core, 1205)
    async with core.sessionmaker() as db:
        other = await make_job(db, "room2")
        await make_task(db, other, status="failed", error="KeyError: 'x'")
        await db.commit()
    async with core.sessionmaker() as db:
        [values, keys] = await groups(db)
    assert (values.count, keys.count) == (1205, 1)
    assert values.jobs == {job.full_name}
    assert values.first_seen is not None
    assert values.last_seen is not None
    assert (values.last_seen - values.first_seen).total_seconds() == pytest.approx(1204)
    page = await (await sign_in("viewer")).get("/dashboard/failures")
    assert 'data-field="count">1205<' in page.text


async def test_a_group_lists_the_jobs_it_affects(core: Any) -> None:
    first = await _many_failures(core, 2)
    async with core.sessionmaker() as db:
        second = await make_job(db, "room2")
        await db.commit()
    await _many_failures(core, 3, second)
    async with core.sessionmaker() as db:
        [group] = await groups(db)
    assert (group.count, group.jobs) == (5, {first.full_name, second.full_name})


async def test_opening_a_group_lists_its_tasks_in_the_task_list(core: Any, sign_in: SignIn) -> None:
    values, keys = await _failures(core)
    http = await sign_in("viewer")
    inbox_page = (await http.get("/dashboard/failures")).text
    link = f"/dashboard/tasks?fingerprint={VALUE_ERROR}"
    assert link in inbox_page
    listed = (await http.get(link)).text
    assert all(task_id in listed for task_id in values)
    assert keys[0] not in listed


async def _post(http: Any, action: str, key: str, csrf: str | None) -> Any:
    data = {"csrf_token": csrf} if csrf is not None else {}
    return await http.post(f"/dashboard/failures/{key}/{action}", data=data)


async def test_retry_all_retries_the_whole_group_batch_by_batch(
    core: Any, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "GROUP_BATCH", 3)
    job = await _many_failures(core, 8)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    answer = await _post(http, "retry", VALUE_ERROR, csrf)
    assert answer.status_code == 200
    assert "Retried 8 task(s)." in answer.text
    assert await _statuses(core, job) == {"pending": 8}
    async with core.sessionmaker() as db:
        assert await groups(db) == []


async def test_retry_all_stops_at_the_action_limit_and_says_more_remain(
    core: Any, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "GROUP_BATCH", 3)
    monkeypatch.setattr(inbox, "GROUP_ACTION_LIMIT", 5)
    job = await _many_failures(core, 7)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    answer = await _post(http, "retry", VALUE_ERROR, csrf)
    assert "More of the group remain" in answer.text
    assert await _statuses(core, job) == {"pending": 5, "failed": 2}
    await _post(http, "retry", VALUE_ERROR, csrf)
    assert await _statuses(core, job) == {"pending": 7}


async def test_cancel_all_cancels_the_groups_retried_tasks(core: Any, sign_in: SignIn) -> None:
    job = await _many_failures(core, 4)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    page = (await _post(http, "retry", VALUE_ERROR, csrf)).text
    assert 'data-action="cancel-all"' in page
    marker = 'name="task_ids" value="'
    start = page.index(marker) + len(marker)
    retried = page[start : page.index('"', start)]
    assert len(retried.split()) == 4
    response = await http.post(
        "/dashboard/failures/cancel", data={"csrf_token": csrf, "task_ids": retried}
    )
    assert response.status_code == 303
    assert await _statuses(core, job) == {"cancelled": 4}


async def test_group_actions_are_audited(
    core: Any, sign_in: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    await _many_failures(core, 2)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    with caplog.at_level("INFO", logger="jobserver.audit"):
        await _post(http, "retry", VALUE_ERROR, csrf)
    [line] = [r for r in caplog.records if r.name == "jobserver.audit"]
    assert (line.action, line.count, line.fingerprint) == ("group_retry", 2, VALUE_ERROR)  # type: ignore[attr-defined]


async def test_viewer_is_refused_403(core: Any, sign_in: SignIn) -> None:
    await _failures(core)
    http = await sign_in("viewer")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    assert (await _post(http, "retry", VALUE_ERROR, csrf)).status_code == 403
    cancel = {"csrf_token": csrf, "task_ids": "00000000-0000-0000-0000-000000000000"}
    assert (await http.post("/dashboard/failures/cancel", data=cancel)).status_code == 403


async def test_missing_csrf_is_refused(core: Any, sign_in: SignIn) -> None:
    await _failures(core)
    http = await sign_in("admin")
    assert (await _post(http, "retry", VALUE_ERROR, None)).status_code == 403
    assert (await _post(http, "retry", VALUE_ERROR, "forged")).status_code == 403


async def test_cancel_all_refuses_text_that_is_no_task_id(core: Any, sign_in: SignIn) -> None:
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    data = {"csrf_token": csrf, "task_ids": "not-an-id"}
    response = await http.post("/dashboard/failures/cancel", data=data)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
