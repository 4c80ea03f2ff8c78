"""The SDK and payload validation against a live server: a job class registers and
declares itself with `validate_payload`, so a submit that does not match its model is
refused by the server (422, every mismatch listed) whoever sends it."""

from __future__ import annotations

import pytest
from jobserver_sdk import ApiError, JobService

from tests.sdk.conftest import Server
from tests.sdk.helpers import workers
from tests.sdk.jobs import Corner, Place

pytestmark = pytest.mark.slow


def service_for(server: Server, room: str) -> JobService:
    return JobService(server.url, server.token, room=room)


async def test_a_worker_registers_its_job_with_validation_and_a_bad_rest_submit_is_refused(
    server: Server, room: str
) -> None:
    async with (
        service_for(server, room) as service,
        workers(server.url, server.token, room, [Place]),
    ):
        job_path = f"/v1/joblib/rooms/{room}/jobs/{Place.full_name(room)}"
        job = await service.client.request("GET", job_path)
        assert job["validate_payload"] is True
        submit_path = f"/v1/joblib/rooms/{room}/tasks/{Place.full_name(room)}"
        bad = {"payload": {"corner": {"x": "one", "y": 2}}}
        with pytest.raises(ApiError) as refused:
            await service.client.request("POST", submit_path, json=bad)
        assert (refused.value.status, refused.value.slug) == (422, "invalid-payload")
        assert refused.value.errors == [
            {"path": "/payload/corner/x", "message": "'one' is not of type 'integer'"}
        ]
        task = await service.submit(Place(corner=Corner(x=1, y=2)))
        assert await task.result(timeout=20) == 3


async def test_declare_asks_the_server_to_validate(server: Server, room: str) -> None:
    async with service_for(server, room) as service:
        job = await service.declare(Place)
    assert job["validate_payload"] is True
