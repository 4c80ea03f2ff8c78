"""Issue 18: the `job` label of the metrics is bounded. It grew with every room (one per
ZnDraw session); now it names the job without its room, and a process keeps at most
`MAX_JOB_LABELS` distinct values, the rest counted as `other`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app import metrics
from app.metrics import SCRAPE_CACHE_SECONDS
from tests.beyond.conftest import Api
from tests.observability.test_metrics import METRICS_TOKEN, scrape, value

TOKEN = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"metrics_token": METRICS_TOKEN}


def job_labels(found: dict[Any, float], name: str) -> set[str]:
    return {dict(labels)["job"] for metric, labels in found if metric == name}


async def submit_in(api: Api, headers: dict[str, str], room: str, name: str = "Echo") -> None:
    registered = await api.client.put(
        f"/v1/joblib/rooms/{room}/jobs",
        json={"category": "modifiers", "name": name},
        headers=headers,
    )
    assert registered.status_code in (200, 201), registered.text
    submitted = await api.submit(headers, job=f"{room}:modifiers:{name}", room=room)
    assert submitted.status_code == 202, submitted.text


async def test_the_job_label_does_not_grow_with_rooms(
    api: Api, user_headers: dict[str, str]
) -> None:
    before = await scrape(api.client, TOKEN)
    rooms = [f"session-{index}" for index in range(5)]
    for room in rooms:
        await submit_in(api, user_headers, room)
    await asyncio.sleep(SCRAPE_CACHE_SECONDS)
    after = await scrape(api.client, TOKEN)
    for name in ("jobserver_tasks_submitted_total", "jobserver_queue_depth"):
        labels = job_labels(after, name)
        assert not [label for label in labels if label.startswith("session-")], labels
    submitted = "jobserver_tasks_submitted_total"
    job = "modifiers:Echo"
    assert value(after, submitted, job=job) - value(before, submitted, job=job) == len(rooms)
    assert value(after, "jobserver_queue_depth", job=job, status="pending") == len(rooms)


async def test_job_labels_beyond_the_cap_are_counted_as_other(
    api: Api, user_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "JOB_LABELS", metrics.JobLabels(cap=2))
    before = await scrape(api.client, TOKEN)
    names = [f"Name{index}" for index in range(5)]
    for name in names:
        await submit_in(api, user_headers, "r1", name)
    await asyncio.sleep(SCRAPE_CACHE_SECONDS)
    after = await scrape(api.client, TOKEN)
    submitted = "jobserver_tasks_submitted_total"
    new = {
        label
        for label in job_labels(after, submitted)
        if value(after, submitted, job=label) > value(before, submitted, job=label)
    }
    assert new == {"modifiers:Name0", "modifiers:Name1", metrics.OTHER_JOB}
    other = value(after, submitted, job=metrics.OTHER_JOB)
    assert other - value(before, submitted, job=metrics.OTHER_JOB) == 3
    depth = job_labels(after, "jobserver_queue_depth")
    assert depth <= {"modifiers:Name0", "modifiers:Name1", metrics.OTHER_JOB}
