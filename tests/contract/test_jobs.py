"""REST.md §2 Jobs: registration (order of checks, idempotency, workers), listing, reading."""

from __future__ import annotations

import uuid

import httpx

from tests.contract.conftest import (
    JOBLIB,
    Headers,
    Recorder,
    assert_problem,
    register,
    registered_worker,
    submitted,
)

ALLOWED = "['modifiers', 'selections', 'analysis']"


async def test_register_creates_job_201_with_every_field(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await register(client, user_headers, schema={"type": "object"})
    assert response.status_code == 201
    body = response.json()
    # REST.md: fields may be added (flow control adds some), never renamed or removed.
    assert set(body) >= {
        "id",
        "room_id",
        "category",
        "name",
        "full_name",
        "schema",
        "workers",
        "worker_id",
    }
    assert body["full_name"] == "r1:modifiers:Echo"
    assert body["room_id"] == "r1"
    assert body["schema"] == {"type": "object"}
    assert body["workers"] == [body["worker_id"]]


async def test_register_invalid_room_id_is_400(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    for room in ("a@b", "a:b"):
        response = await register(client, user_headers, room=room, category="nope")
        assert_problem(
            response,
            400,
            "invalid-room-id",
            f"Room ID '{room}' contains invalid characters (@ or :)",
        )


async def test_register_in_global_or_internal_needs_superuser(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    for room in ("@global", "@internal"):
        response = await register(client, user_headers, room=room, category="nope")
        assert_problem(
            response, 403, "forbidden", "Admin required for @global/@internal job registration"
        )


async def test_superuser_registers_in_global_and_internal(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    for room in ("@global", "@internal"):
        response = await register(client, admin_headers, room=room)
        assert response.status_code == 201, response.text
        assert response.json()["full_name"] == f"{room}:modifiers:Echo"


async def test_register_category_outside_allowed_list_is_400_with_list_repr(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await register(client, user_headers, category="nope")
    assert_problem(
        response, 400, "invalid-category", f"Category 'nope' not in allowed list: {ALLOWED}"
    )


async def test_register_same_schema_again_is_200_idempotent(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    first = await register(client, user_headers, schema={"a": [1, {"b": 2}]})
    again = await register(
        client, user_headers, schema={"a": [1, {"b": 2}]}, worker_id=first.json()["worker_id"]
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["workers"] == [first.json()["worker_id"]]


async def test_register_other_schema_is_409_schema_conflict(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers, schema={"a": 1})
    response = await register(client, user_headers, schema={"a": 2})
    assert_problem(response, 409, "schema-conflict", "Schema mismatch for job 'r1:modifiers:Echo'")


async def test_schema_conflict_is_checked_before_the_worker(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers, schema={"a": 1})
    response = await register(client, user_headers, schema={"a": 2}, worker_id=str(uuid.uuid4()))
    assert response.status_code == 409


async def test_register_accepts_schema_and_schema_underscore_preferring_schema(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    plain = await client.put(
        f"{JOBLIB}/rooms/r1/jobs",
        json={"category": "modifiers", "name": "A", "schema": {"k": "plain"}},
        headers=user_headers,
    )
    assert plain.json()["schema"] == {"k": "plain"}
    underscore = await client.put(
        f"{JOBLIB}/rooms/r1/jobs",
        json={"category": "modifiers", "name": "B", "schema_": {"k": "underscore"}},
        headers=user_headers,
    )
    assert underscore.json()["schema"] == {"k": "underscore"}
    both = await client.put(
        f"{JOBLIB}/rooms/r1/jobs",
        json={"category": "modifiers", "name": "C", "schema_": {"k": 1}, "schema": {"k": 2}},
        headers=user_headers,
    )
    assert both.json()["schema"] == {"k": 2}


async def test_register_without_schema_stores_empty_object(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.put(
        f"{JOBLIB}/rooms/r1/jobs", json={"category": "modifiers", "name": "A"}, headers=user_headers
    )
    assert response.status_code == 201
    assert response.json()["schema"] == {}


async def test_register_ignores_unknown_body_keys(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.put(
        f"{JOBLIB}/rooms/r1/jobs",
        json={"category": "modifiers", "name": "A", "bogus": 1, "run_kwargs": {"x": 1}},
        headers=user_headers,
    )
    assert response.status_code == 201


async def test_register_with_another_users_worker_is_404_not_403(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    theirs = (await client.post(f"{JOBLIB}/workers", headers=other_headers)).json()["id"]
    response = await register(client, user_headers, worker_id=theirs)
    assert_problem(
        response, 404, "worker-not-found", f"Worker '{theirs}' not found or not owned by user"
    )


async def test_register_with_unknown_worker_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = str(uuid.uuid4())
    response = await register(client, user_headers, worker_id=worker_id)
    assert_problem(
        response, 404, "worker-not-found", f"Worker '{worker_id}' not found or not owned by user"
    )


async def test_register_without_worker_id_auto_creates_a_new_worker_each_time(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    first = (await register(client, user_headers)).json()
    second = await register(client, user_headers)
    assert second.status_code == 200
    assert second.json()["worker_id"] != first["worker_id"]
    assert sorted(second.json()["workers"]) == sorted(
        [first["worker_id"], second.json()["worker_id"]]
    )


async def test_register_with_own_worker_links_that_worker(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    worker_id = (await client.post(f"{JOBLIB}/workers", headers=user_headers)).json()["id"]
    response = await register(client, user_headers, worker_id=worker_id)
    assert response.status_code == 201
    assert response.json()["worker_id"] == worker_id
    assert response.json()["workers"] == [worker_id]


async def test_register_emits_jobs_invalidate_to_the_path_room_on_201_and_200(
    client: httpx.AsyncClient, admin_headers: Headers, emitted: Recorder
) -> None:
    worker_id = (await register(client, admin_headers, room="@global")).json()["worker_id"]
    again = await register(client, admin_headers, room="@global", worker_id=worker_id)
    assert again.status_code == 200
    assert emitted.emitted == [
        ("jobs_invalidate", {}, "room:@global"),
        ("jobs_invalidate", {}, "room:@global"),
    ]


async def test_same_name_in_different_rooms_may_have_different_schemas(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    a = await register(client, user_headers, room="ra", schema={"v": 1})
    b = await register(client, user_headers, room="rb", schema={"v": 2})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_job_names_may_contain_slashes_and_colons(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers, name="a/b:c")
    response = await client.get(f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:a/b:c", headers=user_headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "a/b:c"


async def test_percent_encoded_paths_work(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    await register(client, admin_headers, room="@global")
    response = await client.get(
        f"{JOBLIB}/rooms/%40global/jobs/%40global%3Amodifiers%3AEcho", headers=admin_headers
    )
    assert response.status_code == 200, response.text


async def test_job_list_from_global_shows_only_global_jobs(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    for room in ("@global", "@internal", "r1"):
        await register(client, admin_headers, room=room)
    names = [
        j["full_name"]
        for j in (await client.get(f"{JOBLIB}/rooms/@global/jobs", headers=admin_headers)).json()[
            "items"
        ]
    ]
    assert names == ["@global:modifiers:Echo"]
    names = [
        j["full_name"]
        for j in (await client.get(f"{JOBLIB}/rooms/@internal/jobs", headers=admin_headers)).json()[
            "items"
        ]
    ]
    assert names == ["@internal:modifiers:Echo"]


async def test_job_list_from_a_room_shows_global_internal_and_its_own_newest_first(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    for room in ("@global", "@internal", "r1", "r2"):
        await register(client, admin_headers, room=room)
    response = await client.get(f"{JOBLIB}/rooms/r1/jobs", headers=admin_headers)
    body = response.json()
    assert body["total"] == 3
    assert [j["full_name"] for j in body["items"]] == [
        "r1:modifiers:Echo",
        "@internal:modifiers:Echo",
        "@global:modifiers:Echo",
    ]
    assert set(body["items"][0]) >= {"full_name", "category", "name", "workers"}


async def test_job_list_invalid_room_is_400(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.get(f"{JOBLIB}/rooms/a@b/jobs", headers=user_headers)
    assert response.status_code == 400


async def test_get_job_has_no_visibility_check_and_null_worker_id(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    registered = (await register(client, user_headers, room="room_999")).json()
    response = await client.get(
        f"{JOBLIB}/rooms/room_123/jobs/room_999:modifiers:Echo", headers=user_headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["worker_id"] is None
    assert body["workers"] == [registered["worker_id"]]
    assert body["schema"] == {}


async def test_get_job_malformed_name_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.get(f"{JOBLIB}/rooms/r1/jobs/r1:Echo", headers=user_headers)
    assert_problem(response, 404, "job-not-found", "Invalid job name format: r1:Echo")


async def test_get_job_absent_is_404(client: httpx.AsyncClient, user_headers: Headers) -> None:
    response = await client.get(f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:Nope", headers=user_headers)
    assert_problem(response, 404, "job-not-found", "Job 'r1:modifiers:Nope' not found")


async def test_get_job_invalid_room_is_400(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.get(f"{JOBLIB}/rooms/a:b/jobs/r1:modifiers:Echo", headers=user_headers)
    assert response.status_code == 400


async def test_job_task_list_is_scoped_to_the_requesting_room(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    await register(client, admin_headers, room="@global")
    job = "@global:modifiers:Echo"
    in_a = await submitted(client, admin_headers, job=job, room="ra")
    await submitted(client, admin_headers, job=job, room="rb")
    response = await client.get(f"{JOBLIB}/rooms/ra/jobs/{job}/tasks", headers=admin_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["id"] == in_a
    assert body["items"][0]["queue_position"] == 1
    scoped = await client.get(f"{JOBLIB}/rooms/@global/jobs/{job}/tasks", headers=admin_headers)
    assert scoped.json()["total"] == 0


async def test_job_task_list_filters_by_status_and_rejects_unknown_status(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers)
    await submitted(client, user_headers)
    url = f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:Echo/tasks"
    assert (await client.get(url, params={"status": "pending"}, headers=user_headers)).json()[
        "total"
    ] == 1
    assert (await client.get(url, params={"status": "running"}, headers=user_headers)).json()[
        "total"
    ] == 0
    bad = await client.get(url, params={"status": "bogus"}, headers=user_headers)
    assert bad.status_code == 422


async def test_job_task_list_of_absent_job_is_404(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await client.get(
        f"{JOBLIB}/rooms/r1/jobs/r1:modifiers:X/tasks", headers=user_headers
    )
    assert_problem(response, 404, "job-not-found", "Job 'r1:modifiers:X' not found")


async def test_room_workers_are_the_distinct_workers_of_visible_jobs(
    client: httpx.AsyncClient, admin_headers: Headers
) -> None:
    shared = await registered_worker(client, admin_headers, room="@global", name="A")
    await register(client, admin_headers, room="r1", name="B", worker_id=shared)
    elsewhere = await registered_worker(client, admin_headers, room="r2", name="C")
    response = await client.get(f"{JOBLIB}/rooms/r1/workers", headers=admin_headers)
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["id"] == shared
    assert body["items"][0]["job_count"] == 2
    other = await client.get(f"{JOBLIB}/rooms/r2/workers", headers=admin_headers)
    assert {w["id"] for w in other.json()["items"]} == {shared, elsewhere}


async def test_room_workers_is_empty_without_visible_jobs(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await register(client, user_headers, room="r2")
    response = await client.get(f"{JOBLIB}/rooms/r1/workers", headers=user_headers)
    assert response.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
