"""Payload validation (issue 20): a job registered or declared with `validate_payload`
refuses submits whose payload does not match its JSON Schema (422 problem+json listing
each mismatch); other jobs take any payload. A submit body of fields without `payload`,
and a bulk item with a field it does not know, are refused by name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import update

from app.db.models import Job
from app.state import Core
from tests.contract.conftest import JOBLIB, Headers

ROOM = "r1"
JOB = "r1:modifiers:Shape"
SUBMIT = f"{JOBLIB}/rooms/{ROOM}/tasks/{JOB}"
PROBLEM = "application/problem+json"


class Point(BaseModel):
    x: int
    y: int


class Shape(BaseModel):
    """Its JSON Schema keeps Point under `$defs` and points at it with `$ref`."""

    sides: int
    label: str = "shape"
    corner: Point | None = None


SCHEMA = Shape.model_json_schema()
GOOD = {"sides": 3, "corner": {"x": 1, "y": 2}}


async def register(
    client: httpx.AsyncClient, headers: Headers, schema: Any = SCHEMA, **fields: Any
) -> httpx.Response:
    body = {"category": "modifiers", "name": "Shape", "schema": schema, **fields}
    return await client.put(f"{JOBLIB}/rooms/{ROOM}/jobs", json=body, headers=headers)


async def registered(client: httpx.AsyncClient, headers: Headers, **fields: Any) -> None:
    response = await register(client, headers, **fields)
    assert response.status_code in (200, 201), response.text


async def submit(client: httpx.AsyncClient, headers: Headers, body: Any) -> httpx.Response:
    return await client.post(SUBMIT, json=body, headers=headers)


async def bulk(client: httpx.AsyncClient, headers: Headers, items: Any) -> httpx.Response:
    return await client.post(f"{SUBMIT}/bulk", json={"items": items}, headers=headers)


async def stored(client: httpx.AsyncClient, headers: Headers) -> int:
    listed = await client.get(f"{JOBLIB}/rooms/{ROOM}/tasks", headers=headers)
    assert listed.status_code == 200, listed.text
    total: int = listed.json()["total"]
    return total


def problem(response: httpx.Response, slug: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/v1/problems/{slug}"
    assert (body["status"], body["title"]) == (422, "Unprocessable Content")
    return body


def mismatches(response: httpx.Response) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = problem(response, "invalid-payload")["errors"]
    return errors


async def test_a_field_of_the_wrong_type_is_422_listing_the_error(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    response = await submit(client, user_headers, {"payload": {"sides": "one"}})
    assert mismatches(response) == [
        {"path": "/payload/sides", "message": "'one' is not of type 'integer'"}
    ]
    assert "/payload/sides: 'one' is not of type 'integer'" in response.json()["detail"]
    assert await stored(client, user_headers) == 0


async def test_a_missing_required_field_is_422(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    response = await submit(client, user_headers, {"payload": {"label": "x"}})
    assert mismatches(response) == [
        {"path": "/payload", "message": "'sides' is a required property"}
    ]


async def test_a_matching_payload_is_accepted(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    response = await submit(client, user_headers, {"payload": GOOD})
    assert response.status_code == 202, response.text
    assert response.json()["payload"] == GOOD


async def test_a_nested_model_is_checked_through_its_ref(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    assert "$defs" in SCHEMA
    await registered(client, user_headers, validate_payload=True)
    response = await submit(client, user_headers, {"payload": {"sides": 4, "corner": {"x": 1}}})
    errors = mismatches(response)
    assert [e["path"] for e in errors] == ["/payload/corner"]
    assert await stored(client, user_headers) == 0


async def test_every_mismatch_of_a_payload_is_listed(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    payload = {"sides": "many", "label": 7}
    response = await submit(client, user_headers, {"payload": payload})
    assert [e["path"] for e in mismatches(response)] == ["/payload/label", "/payload/sides"]


async def test_a_job_without_validate_payload_accepts_any_payload(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers)
    response = await submit(client, user_headers, {"payload": {"sides": "one", "other": []}})
    assert response.status_code == 202, response.text


async def test_the_job_shows_whether_it_validates(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    response = await register(client, user_headers, validate_payload=True)
    assert response.json()["validate_payload"] is True
    read = await client.get(f"{JOBLIB}/rooms/{ROOM}/jobs/{JOB}", headers=user_headers)
    assert read.json()["validate_payload"] is True
    listed = await client.get(f"{JOBLIB}/rooms/{ROOM}/jobs", headers=user_headers)
    assert [j["validate_payload"] for j in listed.json()["items"]] == [True]


async def test_a_registration_without_the_field_does_not_validate(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    """The contract's client never sends the field."""
    response = await register(client, user_headers)
    assert response.json()["validate_payload"] is False


async def test_a_bulk_submit_with_one_bad_payload_is_422_naming_its_index_and_stores_nothing(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    items = [{"payload": GOOD}, {"payload": {"sides": "two"}}, {"payload": GOOD}]
    response = await bulk(client, user_headers, items)
    assert mismatches(response) == [
        {"path": "/items/1/payload/sides", "message": "'two' is not of type 'integer'"}
    ]
    assert await stored(client, user_headers) == 0
    accepted = await bulk(client, user_headers, [items[0], items[2]])
    assert accepted.status_code == 202, accepted.text


async def test_a_large_bulk_submit_is_checked_item_by_item_too(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    """Large batches are checked off the event loop; the answer is the same."""
    await registered(client, user_headers, validate_payload=True)
    items: list[dict[str, Any]] = [{"payload": GOOD} for _ in range(200)]
    items[150] = {"payload": {"sides": None}}
    response = await bulk(client, user_headers, items)
    assert [e["path"] for e in mismatches(response)] == ["/items/150/payload/sides"]
    assert await stored(client, user_headers) == 0


async def test_a_body_without_the_payload_wrapper_is_422_naming_its_fields(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers)
    response = await submit(client, user_headers, {"sides": 3, "label": "x"})
    body = problem(response, "unprocessable-content")
    assert "'label', 'sides'" in body["detail"]
    assert "payload" in body["detail"]
    assert [e["path"] for e in body["errors"]] == [""]
    assert await stored(client, user_headers) == 0


async def test_an_unknown_field_beside_the_payload_is_ignored_as_the_contract_says(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    """REST.md: unknown body keys are ignored (tests/contract holds the rule too)."""
    await registered(client, user_headers)
    response = await submit(client, user_headers, {"payload": {"sides": 1}, "note": 3})
    assert response.status_code == 202, response.text
    assert response.json()["payload"] == {"sides": 1}


async def test_an_empty_body_is_still_an_empty_payload(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers)
    response = await submit(client, user_headers, {})
    assert response.status_code == 202, response.text


async def test_an_unknown_bulk_item_field_is_422_naming_the_index(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers)
    response = await bulk(client, user_headers, [{"payload": {}}, {"sides": 3}])
    body = problem(response, "unprocessable-content")
    assert "items[1]" in body["detail"]
    assert "'sides'" in body["detail"]
    assert "items[0]" not in body["detail"]
    assert [e["path"] for e in body["errors"]] == ["/items/1"]
    assert await stored(client, user_headers) == 0


async def test_bulk_items_are_typed_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    items = schemas["BulkSubmitIn"]["properties"]["items"]["items"]
    item = schemas[items["$ref"].rsplit("/", 1)[1]]
    assert {"payload", "priority", "depends_on"} <= set(item["properties"])
    assert item["additionalProperties"] is False


async def test_a_declared_job_with_validate_payload_checks_submits(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    body = {"category": "modifiers", "name": "Shape", "schema": SCHEMA, "validate_payload": True}
    declared = await client.put(
        f"{JOBLIB}/rooms/{ROOM}/job-definitions", json=body, headers=user_headers
    )
    assert declared.status_code == 201, declared.text
    assert declared.json()["validate_payload"] is True
    refused = await submit(client, user_headers, {"payload": {"sides": 2.5}})
    assert [e["path"] for e in mismatches(refused)] == ["/payload/sides"]
    assert (await submit(client, user_headers, {"payload": GOOD})).status_code == 202


async def test_its_registrant_turns_validation_off_and_submits_then_take_any_payload(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    assert (await submit(client, user_headers, {"payload": GOOD})).status_code == 202
    await registered(client, user_headers, validate_payload=False)
    response = await submit(client, user_headers, {"payload": {"sides": "one"}})
    assert response.status_code == 202, response.text


async def test_validation_turned_on_applies_to_the_next_submit(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers)
    assert (await submit(client, user_headers, {"payload": {"sides": "one"}})).status_code == 202
    await registered(client, user_headers, validate_payload=True)
    assert mismatches(await submit(client, user_headers, {"payload": {"sides": "one"}}))


async def test_a_registration_without_the_field_keeps_the_jobs_setting(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    """A contract client serving the job re-registers without the field on every reconnect."""
    await registered(client, user_headers, validate_payload=True)
    again = await register(client, other_headers)
    assert again.status_code == 200, again.text
    assert again.json()["validate_payload"] is True


async def test_another_user_may_not_change_whether_the_job_validates(
    client: httpx.AsyncClient, user_headers: Headers, other_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    response = await register(client, other_headers, validate_payload=False)
    assert response.status_code == 403, response.text
    assert "validate_payload" in response.json()["detail"]


async def test_submits_follow_the_jobs_stored_schema_not_a_remembered_one(
    client: httpx.AsyncClient, core: Core, user_headers: Headers
) -> None:
    """A server remembers which schema a job validates against; a job brought back with
    another schema (here: changed in the database) is checked against the new one."""
    await registered(client, user_headers, validate_payload=True)
    assert (await submit(client, user_headers, {"payload": GOOD})).status_code == 202
    renamed = {
        "type": "object",
        "properties": {"edges": {"type": "integer"}},
        "required": ["edges"],
    }
    async with core.sessionmaker() as session:
        await session.execute(update(Job).where(Job.full_name == JOB).values(schema_=renamed))
        await session.commit()
    refused = await submit(client, user_headers, {"payload": GOOD})
    assert mismatches(refused) == [
        {"path": "/payload", "message": "'edges' is a required property"}
    ]
    accepted = await submit(client, user_headers, {"payload": {"edges": 3}})
    assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "objekt"}, "/type"),
        ({"$ref": "#/$defs/Missing"}, "#/$defs/Missing"),
        # Never fetched: a remote reference does not resolve.
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "http://127.0.0.1:9/schema.json"),
    ],
)
async def test_a_schema_that_cannot_check_payloads_is_refused_at_registration(
    client: httpx.AsyncClient, user_headers: Headers, schema: dict[str, Any], named: str
) -> None:
    response = await register(client, user_headers, schema=schema, validate_payload=True)
    assert named in problem(response, "unusable-schema")["detail"]
    without = await register(client, user_headers, schema=schema)
    assert without.status_code == 201, without.text


async def test_a_schedule_with_a_mismatching_payload_is_refused(
    client: httpx.AsyncClient, user_headers: Headers
) -> None:
    await registered(client, user_headers, validate_payload=True)
    body = {"job_name": JOB, "room_id": ROOM, "every_seconds": 60, "payload": {"sides": "x"}}
    response = await client.post(f"{JOBLIB}/schedules", json=body, headers=user_headers)
    assert [e["path"] for e in mismatches(response)] == ["/payload/sides"]
    body["payload"] = GOOD
    created = await client.post(f"{JOBLIB}/schedules", json=body, headers=user_headers)
    assert created.status_code == 201, created.text
    changed = await client.patch(
        f"{JOBLIB}/schedules/{created.json()['id']}",
        json={"payload": {"sides": []}},
        headers=user_headers,
    )
    assert [e["path"] for e in mismatches(changed)] == ["/payload/sides"]
