"""`jobserver serve --workers 2`: a scrape sums the samples of every server process."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live import STARTUP_TIMEOUT, live_server
from tests.observability.test_metrics import samples, value

METRICS_TOKEN = "metrics-token-for-the-multiprocess-test"
TASKS = 12
JOB = "r1:modifiers:Echo"
JOB_LABEL = "modifiers:Echo"  # without the room: test_metric_labels.py
# The second process imports the app after the first answers: as long as a server start
# may take on a loaded 2-core box (other test workers run meanwhile).
STARTUP_SECONDS = STARTUP_TIMEOUT


def _until_both_processes_answered(url: str, samples_dir: Path) -> None:
    """The second process may still be starting after the first answers /health; each
    process that answered a request has its own samples file."""
    deadline = time.monotonic() + STARTUP_SECONDS
    with ThreadPoolExecutor(8) as pool:
        while len(list(samples_dir.glob("histogram_*.db"))) < 2:
            assert time.monotonic() < deadline, "the second server process never answered"
            list(pool.map(lambda _: httpx.get(f"{url}/health"), range(8)))


# Several processes need a shared database and Redis: PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_scrape_counts_the_tasks_of_every_server_process(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    samples_dir = tmp_path / "prometheus"
    samples_dir.mkdir()
    with live_server(
        database_url,
        tmp_path,
        args=["--workers", "2"],
        PROMETHEUS_MULTIPROC_DIR=str(samples_dir),
        JOBSERVER_REDIS_URL=redis_url,
        JOBSERVER_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        _until_both_processes_answered(server.url, samples_dir)
        headers = {"Authorization": f"Bearer {server.token()}"}
        registered = httpx.put(
            f"{server.url}/v1/joblib/rooms/r1/jobs",
            json={"category": "modifiers", "name": "Echo"},
            headers=headers,
        )
        assert registered.status_code in (200, 201), registered.text
        url = f"{server.url}/v1/joblib/rooms/r1/tasks/{JOB}"
        # Concurrent, on separate connections, so that both processes take some.
        with ThreadPoolExecutor(TASKS) as pool:
            statuses = list(
                pool.map(
                    lambda _: httpx.post(url, json={}, headers=headers).status_code, range(TASKS)
                )
            )
        assert statuses == [202] * TASKS
        token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        for _ in range(3):
            text = httpx.get(f"{server.url}/metrics", headers=token).text
            assert value(samples(text), "jobserver_tasks_submitted_total", job=JOB_LABEL) == TASKS
