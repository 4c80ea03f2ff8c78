"""Schedules over REST: create, list, read, change, delete, and every refusal as
problem+json."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx

from app.state import Core
from tests.factories import make_job
from tests.flow.schedules import JOB, ROOM, SCHEDULES, create, created, register_job

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, str] = response.json()
    return body


async def test_a_created_schedule_has_its_fields_and_next_fire_time(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    response = await create(
        client,
        user_headers,
        every_seconds=None,
        cron="0 9 * * *",
        timezone="Europe/Berlin",
        payload={"x": 1},
        priority=3,
        max_attempts=2,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["job_name"] == JOB
    assert body["room_id"] == ROOM
    assert body["payload"] == {"x": 1}
    assert (body["cron"], body["timezone"], body["every_seconds"]) == (
        "0 9 * * *",
        "Europe/Berlin",
        None,
    )
    assert (body["enabled"], body["catch_up"]) == (True, False)
    assert (body["priority"], body["max_attempts"]) == (3, 2)
    assert body["last_fired_at"] is None
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert next_fire > datetime.fromisoformat(body["created_at"])
    assert (next_fire.minute, next_fire.second) == (0, 0)


async def test_a_schedule_can_be_read_listed_and_filtered(
    client: httpx.AsyncClient, user_headers: dict[str, str], viewer_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    first = await created(client, user_headers)
    second = await created(client, user_headers, room_id="r2")
    one = await client.get(f"{SCHEDULES}/{first}", headers=viewer_headers)
    assert one.status_code == 200
    assert one.json()["id"] == first
    listed = (await client.get(SCHEDULES, headers=viewer_headers)).json()
    assert [item["id"] for item in listed["items"]] == [second, first]
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    in_r2 = (await client.get(SCHEDULES, params={"room_id": "r2"}, headers=user_headers)).json()
    assert [item["id"] for item in in_r2["items"]] == [second]
    by_job = await client.get(SCHEDULES, params={"job_name": "r9:x:y"}, headers=user_headers)
    assert by_job.json()["total"] == 0


async def test_a_declared_job_without_workers_can_be_scheduled(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    async with core.sessionmaker() as session:
        job = await make_job(session, ROOM, name="Declared")
        job.declared = True
        await session.commit()
    response = await create(client, user_headers, job_name="r1:modifiers:Declared")
    assert response.status_code == 201, response.text


async def test_a_bad_cron_expression_is_422_naming_it(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    response = await create(client, user_headers, every_seconds=None, cron="61 * * * *")
    body = problem(response, 422)
    assert "Bad cron expression" in body["detail"]
    assert body["type"].endswith("/invalid-schedule")


async def test_an_unknown_timezone_is_422_naming_it(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    response = await create(
        client, user_headers, every_seconds=None, cron="* * * * *", timezone="Mars/Olympus"
    )
    assert "Unknown timezone 'Mars/Olympus'" in problem(response, 422)["detail"]


async def test_both_rules_or_neither_is_422(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    both = await create(client, user_headers, cron="* * * * *")
    neither = await create(client, user_headers, every_seconds=None)
    assert "exactly one" in problem(both, 422)["detail"]
    assert "exactly one" in problem(neither, 422)["detail"]


async def test_a_period_under_one_second_is_422(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    response = await create(client, user_headers, every_seconds=0.5)
    assert "at least 1" in problem(response, 422)["detail"]


async def test_an_unknown_job_is_404(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await create(client, user_headers, job_name="r1:modifiers:Nobody")
    assert problem(response, 404)["type"].endswith("/job-not-found")


async def test_a_bad_room_id_is_400(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    problem(await create(client, user_headers, room_id="a:b"), 400)


async def test_a_payload_over_the_limit_is_413(
    client: httpx.AsyncClient, user_headers: dict[str, str], core: Core
) -> None:
    await register_job(client, user_headers)
    size = core.settings.max_payload_bytes
    response = await create(client, user_headers, payload={"blob": "x" * size})
    problem(response, 413)


async def test_viewers_may_not_create_change_or_delete(
    client: httpx.AsyncClient, user_headers: dict[str, str], viewer_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    problem(await create(client, viewer_headers), 403)
    schedule = await created(client, user_headers)
    patched = await client.patch(
        f"{SCHEDULES}/{schedule}", json={"enabled": False}, headers=viewer_headers
    )
    problem(patched, 403)
    problem(await client.delete(f"{SCHEDULES}/{schedule}", headers=viewer_headers), 403)


async def test_only_the_creator_or_an_admin_may_change_or_delete(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers)
    url = f"{SCHEDULES}/{schedule}"
    problem(await client.patch(url, json={"enabled": False}, headers=other_headers), 403)
    problem(await client.delete(url, headers=other_headers), 403)
    by_admin = await client.patch(url, json={"catch_up": True}, headers=admin_headers)
    assert by_admin.status_code == 200, by_admin.text
    assert (await client.delete(url, headers=admin_headers)).status_code == 204


async def test_an_unknown_schedule_is_404(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    url = f"{SCHEDULES}/{uuid.uuid4()}"
    assert problem(await client.get(url, headers=user_headers), 404)["type"].endswith(
        "/schedule-not-found"
    )
    problem(await client.patch(url, json={"enabled": False}, headers=user_headers), 404)
    problem(await client.delete(url, headers=user_headers), 404)


async def test_reads_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    problem(await client.get(SCHEDULES), 401)


async def test_a_deleted_schedule_is_gone(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers)
    url = f"{SCHEDULES}/{schedule}"
    assert (await client.delete(url, headers=user_headers)).status_code == 204
    problem(await client.get(url, headers=user_headers), 404)


async def test_disabling_clears_the_next_fire_time_and_enabling_counts_from_now(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers, every_seconds=3600)
    url = f"{SCHEDULES}/{schedule}"
    off = await client.patch(url, json={"enabled": False}, headers=user_headers)
    assert (off.json()["enabled"], off.json()["next_fire_at"]) == (False, None)
    on = (await client.patch(url, json={"enabled": True}, headers=user_headers)).json()
    gap = datetime.fromisoformat(on["next_fire_at"]) - datetime.fromisoformat(on["updated_at"])
    assert on["enabled"]
    assert abs(gap.total_seconds() - 3600) < 1


async def test_a_changed_rule_recomputes_the_next_fire_time(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers, every_seconds=3600)
    url = f"{SCHEDULES}/{schedule}"
    to_cron = await client.patch(
        url, json={"cron": "*/5 * * * *", "timezone": "Asia/Tokyo"}, headers=user_headers
    )
    body = to_cron.json()
    assert (body["cron"], body["timezone"], body["every_seconds"]) == (
        "*/5 * * * *",
        "Asia/Tokyo",
        None,
    )
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert next_fire.minute % 5 == 0
    assert (next_fire - datetime.fromisoformat(body["updated_at"])).total_seconds() <= 300
    back = (await client.patch(url, json={"every_seconds": 10}, headers=user_headers)).json()
    assert (back["cron"], back["every_seconds"]) == (None, 10)
    bad = await client.patch(url, json={"cron": "nope"}, headers=user_headers)
    problem(bad, 422)


async def test_a_change_keeps_the_fields_it_does_not_name(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers, payload={"a": 1}, priority=4)
    url = f"{SCHEDULES}/{schedule}"
    before = (await client.get(url, headers=user_headers)).json()
    after = (
        await client.patch(url, json={"payload": {"b": 2}, "catch_up": True}, headers=user_headers)
    ).json()
    assert (after["payload"], after["catch_up"], after["priority"]) == ({"b": 2}, True, 4)
    assert after["next_fire_at"] == before["next_fire_at"]


async def test_a_null_clears_priority_and_max_attempts_and_leaves_the_rest(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    await register_job(client, user_headers)
    schedule = await created(client, user_headers, priority=4, max_attempts=2, catch_up=True)
    changed = await client.patch(
        f"{SCHEDULES}/{schedule}",
        json={"priority": None, "max_attempts": None, "catch_up": None, "payload": None},
        headers=user_headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["priority"], body["max_attempts"]) == (None, None)
    assert (body["catch_up"], body["payload"]) == (True, {})
