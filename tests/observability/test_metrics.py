"""GET /metrics: who may read it, and what the counters, histograms and gauges say."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import SCRAPE_CACHE_SECONDS
from tests.beyond.conftest import Api

JOB = "modifiers:Echo"  # the `job` label: the job without its room (test_metric_labels.py)

METRICS_TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"metrics_token": METRICS_TOKEN}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[Any, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_are_readable_by_an_admin_or_the_metrics_token_only(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
    viewer_headers: dict[str, str],
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    bad = {"Authorization": "Bearer not-the-metrics-token"}
    assert (await client.get("/metrics", headers=bad)).status_code == 401
    for headers in (user_headers, viewer_headers):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/metrics", headers=admin_headers)).status_code == 200
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await client.get("/metrics", headers=token)).status_code == 200


async def test_metrics_count_transitions_by_job_and_read_queue_depth_from_the_database(
    api: Api, user_headers: dict[str, str]
) -> None:
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    before = await scrape(api.client, token)
    worker = await api.register(user_headers)
    for _ in range(3):
        assert (await api.submit(user_headers)).status_code == 202
    task = await api.claim(user_headers, worker)
    assert task is not None
    await api.patch(user_headers, task["id"], status="running")
    await api.patch(user_headers, task["id"], status="completed")
    await asyncio.sleep(SCRAPE_CACHE_SECONDS)  # the database part is cached this long
    after = await scrape(api.client, token)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("jobserver_tasks_submitted_total", job=JOB) == 3
    assert delta("jobserver_tasks_claimed_total", job=JOB) == 1
    assert delta("jobserver_tasks_completed_total", job=JOB) == 1
    assert delta("jobserver_task_claim_to_start_seconds_count", job=JOB) == 1
    assert delta("jobserver_task_end_to_end_seconds_count", job=JOB, status="completed") == 1
    assert value(after, "jobserver_queue_depth", job=JOB, status="pending") == 2
    assert value(after, "jobserver_queue_depth", job=JOB, status="completed") == 1
    assert value(after, "jobserver_workers_live") == 1
    route = "/v1/joblib/tasks/{task_id}"
    assert (
        delta(
            "jobserver_http_request_duration_seconds_count",
            method="PATCH",
            route=route,
            status="200",
        )
        == 2
    )


async def test_failed_and_retried_tasks_are_counted_by_job(
    api: Api, user_headers: dict[str, str]
) -> None:
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    before = await scrape(api.client, token)
    worker = await api.register(user_headers)
    # The first fails with an attempt left (retried, due later); the second fails for good.
    for max_attempts in (2, 1):
        assert (await api.submit(user_headers, max_attempts=max_attempts)).status_code == 202
        task = await api.claim(user_headers, worker)
        assert task is not None
        await api.patch(user_headers, task["id"], status="running")
        await api.patch(user_headers, task["id"], status="failed", error="boom")
    after = await scrape(api.client, token)
    for name in ("jobserver_tasks_failed_total", "jobserver_tasks_retried_total"):
        assert value(after, name, job=JOB) - value(before, name, job=JOB) == 1, name
