"""EVENTS.md "Wire format": our events carry the client's wire names and exactly the
fields of zndraw-joblib's event models (checked against the installed client)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from zndraw_joblib import events as client_events
from zndraw_socketio import get_event_name

from app.services import events

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
SAMPLES: list[tuple[events.Event, type[BaseModel]]] = [
    (
        events.TaskAvailable(job_name="@global:modifiers:Rotate", room_id="r1", task_id="t"),
        client_events.TaskAvailable,
    ),
    (
        events.TaskStatusEvent(
            id=str(uuid.uuid4()),
            name="@global:modifiers:Rotate",
            room_id="r1",
            status="pending",
            created_at=NOW,
            queue_position=3,
        ),
        client_events.TaskStatusEvent,
    ),
    (events.JobsInvalidate("r1"), client_events.JobsInvalidate),
    (events.ProvidersInvalidate("r1"), client_events.ProvidersInvalidate),
    (
        events.ProviderRequest(
            request_id="a" * 64, provider_name="@global:filesystem:local", params='{"p":"/"}'
        ),
        client_events.ProviderRequest,
    ),
    (
        events.ProviderResultReady(
            provider_name="@global:filesystem:local", request_hash="a" * 64, _room_id="r1"
        ),
        client_events.ProviderResultReady,
    ),
]


@pytest.mark.parametrize(("event", "model"), SAMPLES, ids=lambda v: type(v).__name__)
def test_event_has_the_client_wire_name_and_exactly_its_fields(
    event: events.Event, model: type[BaseModel]
) -> None:
    assert event.event_name == get_event_name(model)
    payload = event.payload()
    assert set(payload) == set(model.model_fields)
    assert model.model_validate(payload).model_dump(mode="json").keys() == payload.keys()


def test_task_status_event_times_are_iso_utc_with_z() -> None:
    payload = SAMPLES[1][0].payload()
    assert payload["created_at"] == "2026-03-01T12:00:00.123456Z"
    assert payload["started_at"] is None


def test_field_less_events_send_an_empty_object_to_the_room() -> None:
    event = events.JobsInvalidate("@global")
    assert (event.payload(), event.room) == ({}, "room:@global")
