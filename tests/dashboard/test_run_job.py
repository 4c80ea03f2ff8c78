"""Run a job from the dashboard over ASGI: the form's page, and its submit through the same
service as the REST submit (roles, CSRF, payload validation, the chosen room, audit)."""

from __future__ import annotations

import html
import json
import logging
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from app.db.models import Task
from app.state import Core
from tests.dashboard.conftest import SignIn, csrf_of
from tests.dashboard.greet_job import JOB, SCHEMA
from tests.factories import make_job

PAGE = f"/dashboard/jobs/{quote(JOB)}"
GOOD = {"name": "Ada", "count": 3, "tags": ["a", "b"], "size": {"w": 4}}


async def make_greet(core: Core, *, validates: bool = True) -> None:
    """The job, registered in room `lab` with SCHEMA, checking payloads when `validates`."""
    async with core.sessionmaker() as db:
        job = await make_job(db, "lab", name="Greet", schema=SCHEMA)
        job.validate_payload = validates
        await db.commit()


async def _tasks(core: Core) -> list[Task]:
    async with core.sessionmaker() as db:
        return list((await db.scalars(select(Task).where(Task.job_name == JOB))).all())


async def _run(
    http: httpx.AsyncClient, body: dict[str, Any], *, csrf: bool = True
) -> httpx.Response:
    token = csrf_of((await http.get(f"{PAGE}/run")).text)
    headers = {"X-CSRF-Token": token} if csrf else {}
    return await http.post(f"{PAGE}/run", json=body, headers=headers)


def _form_schema(page: str) -> Any:
    match = re.search(r'data-schema="([^"]*)"', page)
    assert match is not None
    return json.loads(html.unescape(match.group(1)))


async def test_the_run_page_carries_the_jobs_schema_and_suggests_its_room(
    core: Core, sign_in: SignIn
) -> None:
    await make_greet(core)
    response = await (await sign_in("operator")).get(f"{PAGE}/run")
    assert response.status_code == 200, response.text
    assert _form_schema(response.text) == SCHEMA
    assert 'name="room_id" list="run-rooms" value="lab"' in response.text
    assert '<option value="lab">' in response.text
    assert 'src="/dashboard/static/run.js"' in response.text
    assert 'data-testid="run-submit"' in response.text


async def test_the_run_page_of_an_unknown_job_is_404(sign_in: SignIn) -> None:
    response = await (await sign_in("operator")).get("/dashboard/jobs/lab:x:Nope/run")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_job_page_links_the_run_form_for_operators_only(
    core: Core, sign_in: SignIn
) -> None:
    await make_greet(core)
    assert f'href="{PAGE}/run"' in (await (await sign_in("operator")).get(PAGE)).text
    viewer_page = (await (await sign_in("viewer")).get(PAGE)).text
    assert 'data-testid="run-link"' not in viewer_page


async def test_a_viewer_is_refused_a_run_and_nothing_is_stored(core: Core, sign_in: SignIn) -> None:
    await make_greet(core)
    viewer = await sign_in("viewer")
    assert 'data-testid="run-submit"' not in (await viewer.get(f"{PAGE}/run")).text
    response = await _run(viewer, {"room_id": "lab", "payload": GOOD})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert await _tasks(core) == []


async def test_a_run_without_the_csrf_token_is_refused(core: Core, sign_in: SignIn) -> None:
    await make_greet(core)
    response = await _run(
        await sign_in("operator"), {"room_id": "lab", "payload": GOOD}, csrf=False
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert await _tasks(core) == []


async def test_a_payload_that_mismatches_the_schema_is_422_with_each_error_and_stores_nothing(
    core: Core, sign_in: SignIn
) -> None:
    await make_greet(core)
    bad = {"count": 0, "tags": ["a", 5], "size": {}}
    response = await _run(await sign_in("operator"), {"room_id": "lab", "payload": bad})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("invalid-payload")
    errors = {(e["path"], e["message"]) for e in problem["errors"]}
    assert ("/payload", "'name' is a required property") in errors
    assert ("/payload/count", "0 is less than the minimum of 1") in errors
    assert ("/payload/tags/1", "5 is not of type 'string'") in errors
    assert ("/payload/size", "{} is not valid under any of the given schemas") in errors
    assert await _tasks(core) == []


async def test_a_bad_priority_is_422_naming_its_field(core: Core, sign_in: SignIn) -> None:
    await make_greet(core)
    body = {"room_id": "lab", "priority": 10**9, "payload": GOOD}
    response = await _run(await sign_in("operator"), body)
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["errors"]] == ["/priority"]
    assert await _tasks(core) == []


async def test_a_valid_run_creates_the_task_in_the_chosen_room_and_is_audited(
    core: Core, sign_in: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    await make_greet(core)
    http = await sign_in("operator")
    with caplog.at_level(logging.INFO, logger="jobserver.audit"):
        response = await _run(http, {"room_id": "elsewhere", "priority": 7, "payload": GOOD})
    assert response.status_code == 202, response.text
    answer = response.json()
    [task] = await _tasks(core)
    assert answer["id"] == str(task.id)
    assert (task.room_id, task.priority, task.status) == ("elsewhere", 7, "pending")
    assert task.payload == GOOD
    [line] = [r for r in caplog.records if r.name == "jobserver.audit"]
    assert line.__dict__["action"] == "run"
    assert line.__dict__["task_ids"] == [str(task.id)]
    assert line.__dict__["room_id"] == "elsewhere"
    assert line.__dict__["actor_email"] == "operator-0@example.com"


async def test_an_invalid_room_id_is_refused_and_stores_nothing(
    core: Core, sign_in: SignIn
) -> None:
    await make_greet(core)
    response = await _run(await sign_in("operator"), {"room_id": "a:b", "payload": GOOD})
    assert response.status_code == 400
    assert response.json()["type"].endswith("invalid-room-id")
    assert await _tasks(core) == []


async def test_the_task_state_is_the_tasks_rest_shape(core: Core, sign_in: SignIn) -> None:
    await make_greet(core)
    http = await sign_in("operator")
    task_id = (await _run(http, {"room_id": "lab", "payload": GOOD})).json()["id"]
    state = await http.get(f"/dashboard/tasks/{task_id}/state")
    assert state.status_code == 200, state.text
    assert (state.json()["id"], state.json()["status"]) == (task_id, "pending")
    assert state.json()["payload"] == GOOD


async def test_the_task_state_of_an_unknown_task_is_404(sign_in: SignIn) -> None:
    http = await sign_in("viewer")
    response = await http.get(f"/dashboard/tasks/{uuid.uuid4()}/state")
    assert response.status_code == 404


async def test_the_task_state_without_a_session_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/dashboard/tasks/{uuid.uuid4()}/state")
    assert response.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"task_read_scope": "own"}])
async def test_the_task_state_keeps_the_read_scope(core: Core, sign_in: SignIn) -> None:
    await make_greet(core)
    submitter = await sign_in("operator")
    task_id = (await _run(submitter, {"room_id": "lab", "payload": GOOD})).json()["id"]
    other = await sign_in("operator")
    assert (await other.get(f"/dashboard/tasks/{task_id}/state")).status_code == 404
    assert (await submitter.get(f"/dashboard/tasks/{task_id}/state")).status_code == 200


async def test_a_job_that_does_not_validate_takes_any_payload_as_over_rest(
    core: Core, sign_in: SignIn
) -> None:
    await make_greet(core, validates=False)
    http = await sign_in("operator")
    assert 'data-testid="unchecked"' in (await http.get(f"{PAGE}/run")).text
    response = await _run(http, {"room_id": "lab", "payload": {"count": "many"}})
    assert response.status_code == 202, response.text
    [task] = await _tasks(core)
    assert task.payload == {"count": "many"}
