"""Dependencies between tasks (issue 19, item 5): `depends_on` on submit keeps a task
`waiting` until every parent completed; a failed or cancelled parent cancels it, and
that cascades. Over HTTP on both databases; the sweeper's repair called directly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.db.models import Task, TaskDependency
from app.services.events import TaskAvailable, TaskStatusEvent
from app.state import Core
from tests.beyond.conftest import JOB, ROOM, Api
from tests.recorder import Recorder

Headers = dict[str, str]


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


async def submitted(api: Api, headers: Headers, *parents: str, **body: Any) -> dict[str, Any]:
    response = await api.submit(headers, depends_on=list(parents), **body)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def run(api: Api, headers: Headers, worker: str, status: str = "completed") -> str:
    """Claim the next task and end it with `status`; returns its id."""
    task = await api.claim(headers, worker)
    assert task is not None
    assert (await api.patch(headers, task["id"], status="running")).status_code == 200
    ended = await api.patch(headers, task["id"], status=status, error="boom")
    assert ended.status_code == 200, ended.text
    task_id: str = task["id"]
    return task_id


async def status_of(api: Api, headers: Headers, task_id: str) -> str:
    status: str = (await api.get(headers, task_id))["status"]
    return status


async def bulk(api: Api, headers: Headers, items: list[dict[str, Any]]) -> httpx.Response:
    return await api.client.post(
        f"/v1/joblib/rooms/{ROOM}/tasks/{JOB}/bulk", json={"items": items}, headers=headers
    )


async def test_a_chain_of_three_completes_in_order(api: Api, user_headers: Headers) -> None:
    worker = await api.register(user_headers)
    first = await submitted(api, user_headers)
    second = await submitted(api, user_headers, first["id"])
    third = await submitted(api, user_headers, second["id"])
    assert (second["status"], second["queue_position"]) == ("waiting", None)
    for link in (first, second, third):
        task = await api.claim(user_headers, worker)
        assert task is not None
        assert task["id"] == link["id"]
        assert await api.claim(user_headers, worker) is None, "the next link still waits"
        await api.patch(user_headers, task["id"], status="running")
        await api.patch(user_headers, task["id"], status="completed")
    assert await status_of(api, user_headers, third["id"]) == "completed"


async def test_a_child_made_pending_wakes_its_jobs_workers(
    api: Api, user_headers: Headers, core: Core
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    published = Recorder.install(core)
    await run(api, user_headers, worker)
    woken = [e for e in published.events if isinstance(e, TaskAvailable)]
    assert [e.task_id for e in woken] == [child["id"]]
    statuses = [(e.id, e.status) for e in published.events if isinstance(e, TaskStatusEvent)]
    assert (child["id"], "pending") in statuses


async def test_a_fan_in_child_becomes_pending_only_when_all_ten_parents_completed(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parents = [(await submitted(api, user_headers))["id"] for _ in range(10)]
    child = await submitted(api, user_headers, *parents)
    for done in range(10):
        assert await status_of(api, user_headers, child["id"]) == "waiting", done
        await run(api, user_headers, worker)
    assert await status_of(api, user_headers, child["id"]) == "pending"
    assert await run(api, user_headers, worker) == child["id"]


async def test_parents_completing_at_once_leave_no_child_waiting(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parents = [(await submitted(api, user_headers))["id"] for _ in range(10)]
    child = await submitted(api, user_headers, *parents)
    for _ in parents:
        task = await api.claim(user_headers, worker)
        assert task is not None
        await api.patch(user_headers, task["id"], status="running")
    await asyncio.gather(*(api.patch(user_headers, p, status="completed") for p in parents))
    assert await status_of(api, user_headers, child["id"]) == "pending"


async def test_a_child_submitted_while_its_parent_ends_is_settled(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    for end in ("completed", "failed") * 5:
        parent = await submitted(api, user_headers)
        task = await api.claim(user_headers, worker)
        assert task is not None
        await api.patch(user_headers, parent["id"], status="running")
        child, _ = await asyncio.gather(
            api.submit(user_headers, depends_on=[parent["id"]]),
            api.patch(user_headers, parent["id"], status=end),
        )
        if child.status_code == 409:  # the parent had failed before the submit's check
            continue
        expected = "pending" if end == "completed" else "cancelled"
        assert await status_of(api, user_headers, child.json()["id"]) == expected
        if expected == "pending":
            await run(api, user_headers, worker)


async def test_a_failed_parent_cancels_its_dependants_and_theirs(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    grandchild = await submitted(api, user_headers, child["id"])
    await run(api, user_headers, worker, "failed")
    child_now = await api.get(user_headers, child["id"])
    assert child_now["status"] == "cancelled"
    assert child_now["error"] == f"parent {parent['id']} failed"
    grand_now = await api.get(user_headers, grandchild["id"])
    assert grand_now["status"] == "cancelled"
    assert grand_now["error"] == f"parent {child['id']} cancelled"


async def test_a_cancelled_parent_cancels_its_dependants(api: Api, user_headers: Headers) -> None:
    await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    cancel = await api.client.post(f"/v1/joblib/tasks/{parent['id']}/cancel", headers=user_headers)
    assert cancel.status_code == 200
    child_now = await api.get(user_headers, child["id"])
    assert child_now["status"] == "cancelled"
    assert child_now["error"] == f"parent {parent['id']} cancelled"


async def test_a_parent_failed_by_the_loss_of_its_worker_cancels_its_dependants(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    assert await api.claim(user_headers, worker) is not None
    deleted = await api.client.delete(f"/v1/joblib/workers/{worker}", headers=user_headers)
    assert deleted.status_code == 204
    child_now = await api.get(user_headers, child["id"])
    assert child_now["status"] == "cancelled"
    assert child_now["error"] == f"parent {parent['id']} failed"


async def test_a_parent_failing_with_attempts_left_keeps_its_child_waiting(
    api: Api, user_headers: Headers, admin_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers, max_attempts=2)
    child = await submitted(api, user_headers, parent["id"])
    task = await api.claim(user_headers, worker)
    assert task is not None
    await api.patch(user_headers, parent["id"], status="running")
    await api.patch(user_headers, parent["id"], status="failed", error="flaky")
    assert await status_of(api, user_headers, parent["id"]) == "pending"
    assert await status_of(api, user_headers, child["id"]) == "waiting"
    # The second attempt (an admin's claim: no wait for the backoff) completes.
    for status in ("claimed", "running", "completed"):
        assert (await api.patch(admin_headers, parent["id"], status=status)).status_code == 200
    assert await status_of(api, user_headers, child["id"]) == "pending"


async def test_a_parent_completed_before_the_submit_gives_a_pending_child(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    await run(api, user_headers, worker)
    child = await submitted(api, user_headers, parent["id"])
    assert (child["status"], child["queue_position"]) == ("pending", 1)


async def test_bulk_items_may_depend_on_earlier_items_by_index(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    outside = await submitted(api, user_headers)
    response = await bulk(
        api,
        user_headers,
        [{"payload": {"n": 0}}, {"depends_on": [0, outside["id"]]}, {"depends_on": [1]}],
    )
    assert response.status_code == 202, response.text
    items = [item["status"] for item in response.json()["items"]]
    assert items == ["pending", "waiting", "waiting"]
    ids = [item["id"] for item in response.json()["items"]]
    assert {await run(api, user_headers, worker), await run(api, user_headers, worker)} == {
        outside["id"],
        ids[0],
    }
    assert await run(api, user_headers, worker) == ids[1]
    assert await run(api, user_headers, worker) == ids[2]


async def test_a_resent_bulk_links_new_items_to_the_tasks_its_keys_name(
    api: Api, user_headers: Headers
) -> None:
    worker = await api.register(user_headers)
    items = [{"idempotency_key": "parent"}, {"depends_on": [0]}]
    first = (await bulk(api, user_headers, items)).json()["items"]
    again = (await bulk(api, user_headers, items)).json()["items"]
    assert again[0]["id"] == first[0]["id"]
    assert await run(api, user_headers, worker) == first[0]["id"]
    assert await status_of(api, user_headers, first[1]["id"]) == "pending"
    assert await status_of(api, user_headers, again[1]["id"]) == "pending"


async def test_an_unknown_parent_is_422_naming_it(api: Api, user_headers: Headers) -> None:
    await api.register(user_headers)
    missing = str(uuid.uuid4())
    response = await api.submit(user_headers, depends_on=[missing])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert missing in response.json()["detail"]


@pytest.mark.parametrize("index", [1, 2])
async def test_a_bulk_index_that_is_not_an_earlier_item_is_422(
    api: Api, user_headers: Headers, index: int
) -> None:
    await api.register(user_headers)
    response = await bulk(api, user_headers, [{}, {"depends_on": [index]}])
    assert response.status_code == 422, response.text
    assert "items[1]" in response.json()["detail"]


async def test_an_index_in_a_single_submit_is_422(api: Api, user_headers: Headers) -> None:
    await api.register(user_headers)
    assert (await api.submit(user_headers, depends_on=[0])).status_code == 422


async def test_more_than_a_hundred_parents_is_422(api: Api, user_headers: Headers) -> None:
    await api.register(user_headers)
    parents = [str(uuid.uuid4()) for _ in range(101)]
    assert (await api.submit(user_headers, depends_on=parents)).status_code == 422


async def test_a_parent_already_failed_is_409_naming_it(api: Api, user_headers: Headers) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    await run(api, user_headers, worker, "failed")
    response = await api.submit(user_headers, depends_on=[parent["id"]])
    assert response.status_code == 409
    assert parent["id"] in response.json()["detail"]


class TestOwnReadScope:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"task_read_scope": "own"}

    async def test_another_users_task_is_no_parent(
        self, api: Api, user_headers: Headers, other_headers: Headers
    ) -> None:
        await api.register(user_headers)
        theirs = await submitted(api, other_headers)
        response = await api.submit(user_headers, depends_on=[theirs["id"]])
        assert response.status_code == 422
        assert theirs["id"] in response.json()["detail"]
        mine = await submitted(api, user_headers)
        assert (await submitted(api, user_headers, mine["id"]))["status"] == "waiting"


async def test_a_waiting_task_is_never_claimed(api: Api, user_headers: Headers) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers, run_at="2100-01-01T00:00:00Z")
    await submitted(api, user_headers, parent["id"])
    assert await api.claim(user_headers, worker) is None


async def test_a_worker_cannot_report_on_a_waiting_task(
    api: Api, user_headers: Headers, admin_headers: Headers
) -> None:
    await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    for status in ("claimed", "running", "completed"):
        response = await api.patch(admin_headers, child["id"], status=status)
        assert response.status_code == 409, status
    assert await status_of(api, user_headers, child["id"]) == "waiting"


async def test_cancelling_a_waiting_task_cancels_its_own_dependants(
    api: Api, user_headers: Headers
) -> None:
    await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    grandchild = await submitted(api, user_headers, child["id"])
    cancel = await api.client.post(f"/v1/joblib/tasks/{child['id']}/cancel", headers=user_headers)
    assert cancel.json()["status"] == "cancelled"
    assert await status_of(api, user_headers, parent["id"]) == "pending"
    assert await status_of(api, user_headers, grandchild["id"]) == "cancelled"


async def test_the_sweeper_settles_a_child_whose_parent_ended_unsettled(
    api: Api, user_headers: Headers, core: Core
) -> None:
    await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    still = await submitted(api, user_headers, child["id"])
    async with core.sessionmaker() as session:
        await session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(parent["id"]))
            .values(status="completed", completed_at=datetime.now(UTC))
        )
        await session.commit()
    assert await status_of(api, user_headers, child["id"]) == "waiting"
    assert await core.tasks.settle_waiting(1000) == 1
    assert await status_of(api, user_headers, child["id"]) == "pending"
    assert await status_of(api, user_headers, still["id"]) == "waiting"


async def test_a_settled_task_keeps_no_dependency_rows(
    api: Api, user_headers: Headers, core: Core
) -> None:
    worker = await api.register(user_headers)
    parent = await submitted(api, user_headers)
    child = await submitted(api, user_headers, parent["id"])
    grandchild = await submitted(api, user_headers, child["id"])
    await run(api, user_headers, worker)
    async with core.sessionmaker() as session:
        edges = (await session.execute(select(TaskDependency.child_id))).scalars().all()
    assert edges == [uuid.UUID(grandchild["id"])]
