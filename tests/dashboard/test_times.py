"""Every timestamp on the dashboard is one `<time>` element: ISO UTC for readers without
JavaScript, turned into "3 s ago" by static/times.js."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from app.dashboard import sitemap
from app.dashboard.times import time_tag
from tests.beyond.conftest import JOB, ROOM, Api
from tests.dashboard.conftest import SignIn

TIME_TAG = re.compile(r'<time datetime="([^"]+)" title="([^"]+) UTC">\1</time>')
# Elements whose times are for the script, not the reader: <time> and the server's clock.
FOR_THE_SCRIPT = re.compile(r"<time\b[^>]*>.*?</time>|<meta\b[^>]*>", re.DOTALL)
RAW_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def test_a_timestamp_renders_as_a_time_element_in_utc() -> None:
    moment = datetime(2026, 11, 30, 20, 5, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert time_tag(moment) == (
        '<time datetime="2026-11-30T18:05:07Z" title="2026-11-30 18:05:07 UTC">'
        "2026-11-30T18:05:07Z</time>"
    )


def test_a_naive_timestamp_is_read_as_utc() -> None:
    assert 'datetime="2026-01-01T00:00:00Z"' in time_tag(datetime(2026, 1, 1))


def test_a_missing_timestamp_renders_as_a_dash() -> None:
    assert time_tag(None) == "-"


async def test_the_task_page_shows_its_times_as_time_elements(
    sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    await api.register(user_headers)
    task = (await api.submit(user_headers)).json()
    admin = await sign_in("admin")
    page = (await admin.get(f"/dashboard/tasks/{task['id']}")).text
    created = page[page.index("<dt>created</dt>") :]
    found = TIME_TAG.search(created)
    assert found is not None, created[:300]
    submitted = datetime.fromisoformat(task["created_at"]).astimezone(UTC)
    assert found.group(1) == submitted.isoformat(timespec="seconds").replace("+00:00", "Z")


async def test_the_overviews_live_part_dates_itself_with_a_time_element(
    sign_in: SignIn,
) -> None:
    page = (await (await sign_in("viewer")).get("/dashboard")).text
    generated = page[page.index('data-testid="generated-at"') :]
    assert TIME_TAG.search(generated[:200]) is not None


async def test_no_page_shows_a_timestamp_outside_a_time_element(
    app: Any, sign_in: SignIn, api: Api, user_headers: dict[str, str]
) -> None:
    task = await api.failed_task(user_headers, "ValueError: no")
    schedule = {"job_name": JOB, "room_id": ROOM, "cron": "0 6 * * *"}
    created = await api.client.post("/v1/joblib/schedules", json=schedule, headers=user_headers)
    assert created.status_code == 201, created.text
    admin = await sign_in("admin")
    examples = {"task_id": task["id"], "job_name": JOB}
    for path in sitemap.pages(app):
        html = (await admin.get(sitemap.fill(path, examples))).text
        left = RAW_TIME.findall(FOR_THE_SCRIPT.sub("", html))
        assert left == [], f"{path}: {left}"
