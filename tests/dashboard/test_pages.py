"""The dashboard over ASGI: sign-in, the session cookie, CSRF, and roles enforced by the
server (not just hidden buttons)."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.beyond.conftest import JOB, Api
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.dashboard.conftest import PASSWORD, SignIn, csrf_of, dashboard_login
from tests.factories import make_user


async def _pending_task(api: Api, headers: dict[str, str]) -> str:
    await api.register(headers)
    response = await api.submit(headers)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_unauthenticated_visits_go_to_the_login_page(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard", "/dashboard/users", "/dashboard/stream", "/dashboard/tasks/x"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/dashboard/login"
    assert (await client.get("/dashboard/login")).status_code == 200


async def test_session_cookie_is_httponly_and_samesite_strict(
    client: httpx.AsyncClient,
) -> None:
    response = await dashboard_login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/dashboard" in cookie


async def test_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await dashboard_login(client, ADMIN_EMAIL, "nope")
    assert response.status_code == 400
    assert "jobserver_session" not in response.headers.get("set-cookie", "")


async def test_the_dashboard_cookie_is_no_api_token(sign_in: SignIn) -> None:
    http = await sign_in("admin")
    cookie = http.cookies["jobserver_session"]
    response = await http.get("/v1/joblib/stats", headers={"Authorization": f"Bearer {cookie}"})
    assert response.status_code == 401


async def test_overview_shows_the_stats_numbers(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await _pending_task(api, user_headers)
    await api.submit(user_headers)
    http = await sign_in("viewer")
    page = (await http.get("/dashboard")).text
    stats = (await api.client.get("/v1/joblib/stats", headers=user_headers)).json()
    counts = next(j for j in stats["jobs"] if j["job_name"] == JOB)["counts"]
    row = re.search(rf'<tr data-job="{re.escape(JOB)}">(.*?)</tr>', page, re.S)
    assert row is not None
    shown = dict(re.findall(r'data-status="(\w+)">(\d+)<', row[1]))
    assert {k: int(v) for k, v in shown.items()} == counts


async def test_viewer_sees_no_action_buttons_and_gets_403_problem_for_actions(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    task_id = await _pending_task(api, user_headers)
    http = await sign_in("viewer")
    page = (await http.get("/dashboard")).text
    assert task_id in page
    assert 'data-action="cancel"' not in page
    response = await http.post(
        f"/dashboard/tasks/{task_id}/cancel", headers={"X-CSRF-Token": csrf_of(page)}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.get(user_headers, task_id))["status"] == "pending"


async def test_state_change_without_csrf_token_is_refused(sign_in: SignIn, api: Api) -> None:
    http = await sign_in("admin")
    page = (await http.get("/dashboard")).text
    task_id = "00000000-0000-0000-0000-000000000000"
    for sent in ({}, {"X-CSRF-Token": "forged"}):
        response = await http.post(f"/dashboard/tasks/{task_id}/cancel", headers=sent)
        assert response.status_code == 403
        assert response.json()["detail"] == "CSRF token missing or invalid"
    response = await http.post("/dashboard/logout", data={"csrf_token": "forged"})
    assert response.status_code == 403
    response = await http.post("/dashboard/logout", data={"csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert (await http.get("/dashboard")).status_code == 303


async def test_operator_cancels_and_retries_a_task(
    client: httpx.AsyncClient, core: Any, api: Api
) -> None:
    async with core.sessionmaker() as session:
        await make_user(session, "op@example.com", role="operator", password=PASSWORD)
        await session.commit()
    login = await client.post(
        "/v1/auth/jwt/login", data={"username": "op@example.com", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    task_id = await _pending_task(api, headers)
    await dashboard_login(client, "op@example.com", PASSWORD)
    page = (await client.get("/dashboard")).text
    assert f'data-action="cancel" data-task="{task_id}"' in page
    csrf = {"X-CSRF-Token": csrf_of(page)}
    cancelled = await client.post(f"/dashboard/tasks/{task_id}/cancel", headers=csrf)
    assert cancelled.status_code == 200, cancelled.text
    assert (await api.get(headers, task_id))["status"] == "cancelled"
    retried = await client.post(f"/dashboard/tasks/{task_id}/retry", headers=csrf)
    assert retried.json()["status"] == "pending"
    detail = await client.get(f"/dashboard/tasks/{task_id}")
    assert detail.status_code == 200
    assert "2 of 2" in detail.text


async def test_only_admins_see_users_change_roles_and_mint_tokens(sign_in: SignIn) -> None:
    operator = await sign_in("operator")
    assert (await operator.get("/dashboard/users")).status_code == 403
    viewer = await sign_in("viewer")
    admin = await sign_in("admin")
    page = (await admin.get("/dashboard/users")).text
    csrf = csrf_of(page)
    found = re.search(r'data-user="viewer-1@example.com" data-user-id="([^"]+)"', page)
    assert found is not None
    viewer_id = found[1]
    refused = await operator.post(
        f"/dashboard/users/{viewer_id}/role",
        data={"role": "admin", "csrf_token": csrf_of((await operator.get("/dashboard")).text)},
    )
    assert refused.status_code == 403
    changed = await admin.post(
        f"/dashboard/users/{viewer_id}/role", data={"role": "operator", "csrf_token": csrf}
    )
    assert changed.status_code == 303
    # A role change ends the user's session (issue 18); signing in again shows the new role.
    assert (await viewer.get("/dashboard")).status_code == 303
    assert (await dashboard_login(viewer, "viewer-1@example.com", PASSWORD)).status_code == 303
    assert "viewer-1@example.com (operator)" in (await viewer.get("/dashboard")).text
    minted = await admin.post(f"/dashboard/users/{viewer_id}/token", data={"csrf_token": csrf})
    token = re.search(r"<textarea readonly rows=\"3\">([^<]+)</textarea>", minted.text)
    assert token is not None
    me = await admin.get("/v1/auth/users/me", headers={"Authorization": f"Bearer {token[1]}"})
    assert me.json()["email"] == "viewer-1@example.com"


async def test_a_task_is_found_by_id_with_payload_attempts_and_error(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    worker = await api.register(user_headers)
    submitted = await api.submit(user_headers, payload={"answer": 42})
    task_id = submitted.json()["id"]
    assert await api.claim(user_headers, worker) is not None
    await api.patch(user_headers, task_id, status="running")
    await api.patch(user_headers, task_id, status="failed", error="went wrong")
    http = await sign_in("viewer")
    found = await http.get("/dashboard/find", params={"task_id": f" {task_id} "})
    assert found.status_code == 303
    page = await http.get(found.headers["location"])
    assert page.status_code == 200
    assert '"answer": 42' in html.unescape(page.text)
    assert "went wrong" in page.text
    assert "1 of 1" in page.text
    assert (await http.get("/dashboard/find", params={"task_id": "nope"})).status_code == 404


async def test_sign_in_without_the_forms_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await client.get("/dashboard/login")  # the browser holds the cookie, not the token
    response = await client.post(
        "/dashboard/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "jobserver_session" not in response.headers.get("set-cookie", "")
