"""REST.md §0 Pagination: limits, counting with limit=0, newest first with a stable tiebreak."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from app.db.models import Job, Task, Worker
from app.state import Core
from tests.contract.conftest import JOBLIB, Headers, register, submitted

LISTS = [
    f"{JOBLIB}/workers",
    f"{JOBLIB}/rooms/r1/jobs",
    f"{JOBLIB}/rooms/r1/workers",
    f"{JOBLIB}/rooms/r1/tasks",
    f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:J0/tasks",
]
SAME_TIME = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(client: httpx.AsyncClient, headers: Headers, count: int = 3) -> None:
    for i in range(count):
        await register(client, headers, name=f"J{i}")
        await submitted(client, headers, job="r1:modifiers:J0")


@pytest.mark.parametrize("url", LISTS)
async def test_list_envelope_defaults_to_limit_50_offset_0(
    client: httpx.AsyncClient, user_headers: Headers, url: str
) -> None:
    await _fill(client, user_headers)
    body = (await client.get(url, headers=user_headers)).json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert (body["total"], body["limit"], body["offset"], len(body["items"])) == (3, 50, 0, 3)


@pytest.mark.parametrize("url", LISTS)
async def test_limit_zero_only_counts(
    client: httpx.AsyncClient, user_headers: Headers, url: str
) -> None:
    await _fill(client, user_headers)
    body = (await client.get(url, params={"limit": 0}, headers=user_headers)).json()
    assert body == {"items": [], "total": 3, "limit": 0, "offset": 0}


@pytest.mark.parametrize("url", LISTS)
async def test_offset_beyond_total_is_an_empty_page(
    client: httpx.AsyncClient, user_headers: Headers, url: str
) -> None:
    await _fill(client, user_headers)
    body = (await client.get(url, params={"offset": 10}, headers=user_headers)).json()
    assert body == {"items": [], "total": 3, "limit": 50, "offset": 10}


@pytest.mark.parametrize(
    "params",
    [{"limit": 501}, {"limit": -1}, {"offset": -1}, {"limit": "x"}, {"offset": "1.5"}],
)
async def test_out_of_range_or_non_integer_paging_is_422(
    client: httpx.AsyncClient, user_headers: Headers, params: dict[str, object]
) -> None:
    response = await client.get(f"{JOBLIB}/workers", params=params, headers=user_headers)
    assert response.status_code == 422
    assert response.json()["type"] == "/v1/problems/unprocessable-content"


async def test_limit_500_is_allowed(client: httpx.AsyncClient, user_headers: Headers) -> None:
    response = await client.get(f"{JOBLIB}/workers", params={"limit": 500}, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["limit"] == 500


async def test_lists_are_newest_first_and_pages_do_not_overlap(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await _fill(client, user_headers, 5)
    whole = (await client.get(f"{JOBLIB}/rooms/r1/tasks", headers=user_headers)).json()["items"]
    created = [item["created_at"] for item in whole]
    assert created == sorted(created, reverse=True)
    pages = [
        (
            await client.get(
                f"{JOBLIB}/rooms/r1/tasks", params={"limit": 2, "offset": o}, headers=user_headers
            )
        ).json()["items"]
        for o in (0, 2, 4)
    ]
    assert [t["id"] for page in pages for t in page] == [t["id"] for t in whole]


@pytest.mark.parametrize("url", LISTS)
async def test_equal_timestamps_keep_a_deterministic_order_newest_insert_first(
    client: httpx.AsyncClient, core: Core, user_headers: Headers, url: str
) -> None:
    await _fill(client, user_headers, 4)
    async with core.sessionmaker() as session:
        for model in (Task, Job, Worker):
            await session.execute(update(model).values(created_at=SAME_TIME))
        await session.commit()
    whole = (await client.get(url, headers=user_headers)).json()["items"]
    key = "full_name" if "jobs" in url and not url.endswith("/tasks") else "id"
    one_by_one = [
        (await client.get(url, params={"limit": 1, "offset": o}, headers=user_headers)).json()[
            "items"
        ][0][key]
        for o in range(len(whole))
    ]
    assert one_by_one == [item[key] for item in whole]
    again = (await client.get(url, headers=user_headers)).json()["items"]
    assert again == whole


async def test_equal_timestamp_tasks_list_the_later_insert_first(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    await register(client, user_headers, name="J0")
    ids = [await submitted(client, user_headers, job="r1:modifiers:J0") for _ in range(3)]
    async with core.sessionmaker() as session:
        await session.execute(update(Task).values(created_at=SAME_TIME))
        await session.commit()
    items = (await client.get(f"{JOBLIB}/rooms/r1/tasks", headers=user_headers)).json()["items"]
    assert [t["id"] for t in items] == ids[::-1]
