"""JOBSERVER_TASK_READ_SCOPE: `all` (the contract) lets every user read every task; with
`own` an operator reads only tasks it submitted or its workers hold (404 otherwise);
admins and viewers read all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.state import Core
from tests.contract.conftest import JOBLIB, claimed, registered_worker, submitted
from tests.dashboard.conftest import dashboard_login

Headers = dict[str, str]
SECRET = {"api_key": "admin-only"}
JOB = "r1:modifiers:Echo"


async def admins_task(client: httpx.AsyncClient, admin_headers: Headers) -> str:
    await registered_worker(client, admin_headers)
    return await submitted(client, admin_headers, job=JOB, payload=SECRET)


async def room_ids(client: httpx.AsyncClient, headers: Headers, path: str) -> tuple[set[str], int]:
    body = (await client.get(f"{JOBLIB}/rooms/r1/{path}", headers=headers)).json()
    return {item["id"] for item in body["items"]}, body["total"]


async def test_with_scope_all_an_operator_reads_the_admins_payload(
    client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
) -> None:
    """The contract's behaviour, kept as the default."""
    task_id = await admins_task(client, admin_headers)
    response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)
    assert response.status_code == 200
    assert response.json()["payload"] == SECRET


class TestOwnScope:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"task_read_scope": "own"}

    async def test_an_operator_cannot_read_the_admins_payload(
        self, client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
    ) -> None:
        """The finding: a registered operator read the admin's payload."""
        task_id = await admins_task(client, admin_headers)
        for prefer in ({}, {"Prefer": "wait=1"}):
            response = await client.get(
                f"{JOBLIB}/tasks/{task_id}", headers={**user_headers, **prefer}
            )
            assert response.status_code == 404, response.text
            assert response.json()["type"] == "/v1/problems/task-not-found"
            assert "admin-only" not in response.text

    async def test_lists_show_an_operator_only_its_own_tasks(
        self, client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
    ) -> None:
        hidden = await admins_task(client, admin_headers)
        mine = await submitted(client, user_headers, job=JOB)
        for path in ("tasks", f"jobs/{JOB}/tasks"):
            assert await room_ids(client, user_headers, path) == ({mine}, 1)
            assert await room_ids(client, admin_headers, path) == ({mine, hidden}, 2)

    async def test_an_operator_reads_tasks_its_worker_holds(
        self, client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
    ) -> None:
        worker_id = await registered_worker(client, user_headers)
        task_id = await submitted(client, admin_headers, job=JOB, payload=SECRET)
        assert (
            await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)
        ).status_code == 404
        assert await claimed(client, user_headers, worker_id) == task_id
        response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=user_headers)
        assert response.status_code == 200
        assert response.json()["payload"] == SECRET
        assert await room_ids(client, user_headers, "tasks") == ({task_id}, 1)

    async def test_admins_and_viewers_read_all(
        self,
        client: httpx.AsyncClient,
        admin_headers: Headers,
        user_headers: Headers,
        viewer_headers: Headers,
    ) -> None:
        await registered_worker(client, user_headers)
        task_id = await submitted(client, user_headers, job=JOB)
        for headers in (admin_headers, viewer_headers):
            response = await client.get(f"{JOBLIB}/tasks/{task_id}", headers=headers)
            assert response.status_code == 200
            assert await room_ids(client, headers, "tasks") == ({task_id}, 1)

    async def test_an_idempotency_key_does_not_reveal_another_users_task(
        self, client: httpx.AsyncClient, admin_headers: Headers, user_headers: Headers
    ) -> None:
        await registered_worker(client, admin_headers)
        body = {"payload": SECRET, "idempotency_key": "k1"}
        first = await client.post(
            f"{JOBLIB}/rooms/r1/tasks/{JOB}", json=body, headers=admin_headers
        )
        assert first.status_code == 202
        again = await client.post(
            f"{JOBLIB}/rooms/r1/tasks/{JOB}", json={"idempotency_key": "k1"}, headers=user_headers
        )
        assert again.status_code == 409, again.text
        assert "admin-only" not in again.text
        bulk = await client.post(
            f"{JOBLIB}/rooms/r1/tasks/{JOB}/bulk",
            json={"items": [{"idempotency_key": "k1"}]},
            headers=user_headers,
        )
        assert bulk.status_code == 409, bulk.text

    async def test_the_dashboard_task_page_keeps_the_scope(
        self, app: Any, client: httpx.AsyncClient, core: Core, admin_headers: Headers
    ) -> None:
        from tests.factories import make_user

        task_id = await admins_task(client, admin_headers)
        async with core.sessionmaker() as session:
            await make_user(session, "op@example.com", role="operator", password="password")
            await session.commit()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await dashboard_login(http, "op@example.com", "password")).status_code == 303
            page = await http.get(f"/dashboard/tasks/{task_id}")
            assert page.status_code == 404
            assert "admin-only" not in page.text
