"""The dashboard's jobs table: a paused badge, and pause/resume buttons that go through the
REST rules (registrant or admin) behind the session's CSRF token."""

from __future__ import annotations

from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import SignIn, csrf_of


async def test_an_admin_pauses_and_resumes_a_job_and_the_table_shows_the_badge(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    assert (await api.submit(user_headers)).status_code == 202
    admin = await sign_in("admin")
    page = (await admin.get("/dashboard")).text
    assert f'data-action="pause" data-job="{JOB}"' in page
    csrf = {"X-CSRF-Token": csrf_of(page)}
    paused = await admin.post(f"/dashboard/jobs/{JOB}/pause", headers=csrf)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    page = (await admin.get("/dashboard")).text
    assert 'data-field="paused"' in page
    assert f'data-action="resume" data-job="{JOB}"' in page
    resumed = await admin.post(f"/dashboard/jobs/{JOB}/resume", headers=csrf)
    assert resumed.json()["paused"] is False
    assert 'data-field="paused"' not in (await admin.get("/dashboard")).text


async def test_pausing_from_the_dashboard_needs_the_csrf_token(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    admin = await sign_in("admin")
    refused = await admin.post(f"/dashboard/jobs/{JOB}/pause", headers={"X-CSRF-Token": "x"})
    assert refused.status_code == 403


async def test_an_operator_may_not_pause_another_users_job_from_the_dashboard(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    operator = await sign_in("operator")
    page = (await operator.get("/dashboard")).text
    refused = await operator.post(
        f"/dashboard/jobs/{JOB}/pause", headers={"X-CSRF-Token": csrf_of(page)}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_a_viewer_sees_no_pause_button(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    viewer = await sign_in("viewer")
    assert 'data-action="pause"' not in (await viewer.get("/dashboard")).text
