"""The dashboard's job page: counts, queue, throughput, percentiles, workers, schedules,
pause and resume; and the chart library served by the server itself."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import update

from app.db.models import Task
from app.services.job_page import percentiles
from app.state import Core
from tests.beyond.conftest import JOB, Api
from tests.dashboard.conftest import SignIn, csrf_of

PAGE = f"/dashboard/jobs/{quote(JOB)}"
RUNS = (1.0, 2.0, 3.0)
WAITS = (10.0, 20.0, 30.0)


async def _seed(api: Api, core: Core, headers: dict[str, str]) -> None:
    """Three tasks completed with known run and wait times, one failed, one pending
    for two minutes: written straight to the rows (the triggers keep the counters)."""
    await api.register(headers)
    ids = [uuid.UUID((await api.submit(headers, payload={"n": n})).json()["id"]) for n in range(5)]
    now = datetime.now(UTC)
    async with core.sessionmaker() as db:
        for task_id, run, wait in zip(ids, RUNS, WAITS, strict=False):
            started = now - timedelta(seconds=run)
            await db.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(
                    status="completed",
                    run_at=started - timedelta(seconds=wait),
                    started_at=started,
                    completed_at=now,
                )
            )
        await db.execute(
            update(Task)
            .where(Task.id == ids[3])
            .values(status="failed", started_at=now, completed_at=now, error="boom")
        )
        await db.execute(
            update(Task).where(Task.id == ids[4]).values(created_at=now - timedelta(seconds=120))
        )
        await db.commit()


def _cell(page: str, attribute: str) -> str:
    match = re.search(rf'{attribute}">([^<]*)<', page)
    assert match is not None, attribute
    return match.group(1)


async def test_the_page_shows_counts_queue_depth_and_oldest_pending(
    sign_in: SignIn, api: Api, core: Core, user_headers: dict[str, str]
) -> None:
    await _seed(api, core, user_headers)
    page = (await (await sign_in("viewer")).get(PAGE)).text
    assert _cell(page, 'data-count="completed') == "3"
    assert _cell(page, 'data-count="failed') == "1"
    assert _cell(page, 'data-count="pending') == "1"
    assert _cell(page, 'data-field="queue-depth') == "1"
    assert _cell(page, 'data-field="oldest-pending') == "2 min"


async def test_the_page_shows_throughput_and_failure_rate_of_the_last_hour_and_day(
    sign_in: SignIn, api: Api, core: Core, user_headers: dict[str, str]
) -> None:
    await _seed(api, core, user_headers)
    page = (await (await sign_in("viewer")).get(PAGE)).text
    for window in ("last hour", "last day"):
        row = page[page.index(f'data-window="{window}"') :]
        assert _cell(row, 'data-field="completed') == "3"
        assert _cell(row, 'data-field="failed') == "1"
        assert _cell(row, 'data-field="failure-rate') == "25.0%"
    assert "&#34;completed&#34;: [0, " in page  # the chart's series, oldest minute first


async def test_the_page_shows_run_and_wait_time_percentiles_of_completed_tasks(
    sign_in: SignIn, api: Api, core: Core, user_headers: dict[str, str]
) -> None:
    await _seed(api, core, user_headers)
    page = (await (await sign_in("viewer")).get(PAGE)).text
    run = page[page.index('data-kind="run"') :]
    assert [_cell(run, f'data-quantile="p{q}') for q in (50, 95, 99)] == ["2.0 s", "3.0 s", "3.0 s"]
    wait = page[page.index('data-kind="wait"') :]
    assert [_cell(wait, f'data-quantile="p{q}') for q in (50, 95, 99)] == [
        "20.0 s",
        "30.0 s",
        "30.0 s",
    ]


def test_percentiles_are_nearest_rank_values_that_were_measured() -> None:
    assert percentiles([]) == {}
    assert percentiles([5.0]) == {50: 5.0, 95: 5.0, 99: 5.0}
    values = [float(n) for n in range(1, 101)]
    assert percentiles(values) == {50: 50.0, 95: 95.0, 99: 99.0}


async def test_the_page_lists_the_workers_serving_the_job_and_its_schedules(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    made = await api.client.post(
        "/v1/joblib/schedules",
        json={"job_name": JOB, "room_id": "r1", "every_seconds": 60},
        headers=user_headers,
    )
    page = (await (await sign_in("viewer")).get(PAGE)).text
    assert "no worker serves it" not in page
    assert made.status_code == 201, made.text
    assert f'data-schedule="{made.json()["id"]}"' in page


async def test_an_unknown_job_is_a_404(sign_in: SignIn) -> None:
    viewer = await sign_in("viewer")
    response = await viewer.get("/dashboard/jobs/r1:modifiers:Nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_page_needs_a_session(api: Api, user_headers: dict[str, str]) -> None:
    await api.register(user_headers)
    response = await api.client.get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"


async def test_a_viewer_sees_the_page_but_no_pause_button_and_may_not_pause(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    viewer = await sign_in("viewer")
    page = (await viewer.get(PAGE)).text
    assert 'data-testid="job-name"' in page
    assert 'data-action="pause"' not in page
    refused = await viewer.post(f"{PAGE}/pause", headers={"X-CSRF-Token": csrf_of(page)})
    assert refused.status_code == 403


async def test_an_admin_pauses_and_resumes_from_the_job_page(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    admin = await sign_in("admin")
    page = (await admin.get(PAGE)).text
    assert f'data-action="pause" data-job="{JOB}"' in page
    csrf = {"X-CSRF-Token": csrf_of(page)}
    assert (await admin.post(f"{PAGE}/pause", headers=csrf)).json()["paused"] is True
    page = (await admin.get(PAGE)).text
    assert 'data-field="paused"' in page
    assert f'data-action="resume" data-job="{JOB}"' in page
    assert (await admin.post(f"{PAGE}/resume", headers=csrf)).json()["paused"] is False
    assert 'data-field="paused"' not in (await admin.get(PAGE)).text


async def test_the_overview_links_each_job_to_its_page(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    await api.submit(user_headers)
    page = (await (await sign_in("viewer")).get("/dashboard")).text
    assert 'href="/dashboard/jobs/r1%3Amodifiers%3AEcho"' in page


async def test_the_chart_library_is_served_locally_with_its_content_types(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    page = (await (await sign_in("viewer")).get(PAGE)).text
    for path, kind in (
        ("/dashboard/static/vendor/uplot/uPlot.iife.min.js", "javascript"),
        ("/dashboard/static/vendor/uplot/uPlot.min.css", "text/css"),
        ("/dashboard/static/charts.js", "javascript"),
    ):
        assert f'"{path}"' in page
        response = await api.client.get(path)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
