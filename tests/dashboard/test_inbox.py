"""The error inbox: recent failures grouped by fingerprint, retried or cancelled per group."""

from __future__ import annotations

from typing import Any

from app.dashboard.inbox import fingerprint_of, groups, key_of
from tests.dashboard.conftest import SignIn, csrf_of
from tests.factories import make_job, make_task

TRACE = 'Traceback (most recent call last):\n  File "w.py", line 3, in run\n    boom()\n'


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


def test_fingerprint_is_the_type_and_top_frame_or_the_first_line() -> None:
    assert fingerprint_of("ValueError: a 1", TRACE) == fingerprint_of("ValueError: a 2", TRACE)
    assert fingerprint_of("KeyError: 'x'\nmore", None) == "KeyError: 'x'"


async def test_failures_are_grouped_by_fingerprint(core: Any, sign_in: SignIn) -> None:
    values, keys = await _failures(core)
    async with core.sessionmaker() as db:
        found = await groups(db)
    assert sorted(g.count for g in found) == [1, 2]
    assert {str(i) for i in found[0].task_ids} == set(values)
    http = await sign_in("viewer")
    page = await http.get("/dashboard/failures")
    assert page.status_code == 200
    assert "KeyError: &#39;x&#39;" in page.text
    assert 'data-action="retry-all"' not in page.text
    opened = await http.get(f"/dashboard/failures?group={found[1].key}")
    assert keys[0] in opened.text


async def _post(http: Any, action: str, key: str, csrf: str | None) -> Any:
    data = {"csrf_token": csrf} if csrf is not None else {}
    return await http.post(f"/dashboard/failures/{key}/{action}", data=data)


async def test_retry_all_turns_the_groups_tasks_pending(core: Any, sign_in: SignIn) -> None:
    values, _keys = await _failures(core)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    key = key_of(fingerprint_of("ValueError: x", TRACE))
    assert (await _post(http, "retry", key, csrf)).status_code == 303
    async with core.sessionmaker() as db:
        found = await groups(db)
    assert [g.count for g in found] == [1]
    for task_id in values:
        assert (
            'data-field="status"><span class="pill pending"'
            in (await http.get(f"/dashboard/tasks/{task_id}")).text
        )


async def test_cancel_all_cancels_the_groups_retried_tasks(core: Any, sign_in: SignIn) -> None:
    values, _ = await _failures(core)
    http = await sign_in("admin")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    key = key_of(fingerprint_of("ValueError: x", TRACE))
    retried = await _post(http, "retry", key, csrf)
    page = (await http.get(retried.headers["location"])).text
    assert 'data-action="cancel-all"' in page
    response = await http.post(
        "/dashboard/failures/cancel", data={"csrf_token": csrf, "task_id": values}
    )
    assert response.status_code == 303
    for task_id in values:
        page = (await http.get(f"/dashboard/tasks/{task_id}")).text
        assert 'class="pill cancelled"' in page


async def test_viewer_is_refused_403(core: Any, sign_in: SignIn) -> None:
    await _failures(core)
    http = await sign_in("viewer")
    csrf = csrf_of((await http.get("/dashboard/failures")).text)
    key = key_of(fingerprint_of("ValueError: x", TRACE))
    assert (await _post(http, "retry", key, csrf)).status_code == 403
    cancel = {"csrf_token": csrf, "task_id": "00000000-0000-0000-0000-000000000000"}
    assert (await http.post("/dashboard/failures/cancel", data=cancel)).status_code == 403


async def test_missing_csrf_is_refused(core: Any, sign_in: SignIn) -> None:
    await _failures(core)
    http = await sign_in("admin")
    key = key_of(fingerprint_of("ValueError: x", TRACE))
    assert (await _post(http, "retry", key, None)).status_code == 403
    assert (await _post(http, "retry", key, "forged")).status_code == 403
