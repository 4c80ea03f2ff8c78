"""Events a service asks its caller to publish after commit.

Wire names are the snake_case class names (EVENTS.md); `room` is the Socket.IO room.
`TaskChanged` never goes on the wire: it wakes long-polls and @internal dispatch.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


_WIRE_FIELDS: dict[type, tuple[str, ...]] = {}


def _wire_fields(cls: type) -> tuple[str, ...]:
    found = _WIRE_FIELDS.get(cls)
    if found is None:
        found = _WIRE_FIELDS[cls] = tuple(f.name for f in fields(cls) if f.name[0] != "_")
    return found


@dataclass(frozen=True)
class Event:
    """Base: subclasses are frozen dataclasses whose fields are the wire payload."""

    on_wire: ClassVar[bool] = True

    @property
    def event_name(self) -> str:
        return _snake(type(self).__name__)

    @property
    def room(self) -> str:
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        # The fields' values are flat (str, int, datetime, UUID): no deep copy needed.
        return {name: _jsonable(getattr(self, name)) for name in _wire_fields(type(self))}


@dataclass(frozen=True)
class TaskAvailable(Event):
    job_name: str
    room_id: str
    task_id: str

    @property
    def room(self) -> str:
        return f"jobs:{self.job_name}"


@dataclass(frozen=True)
class TaskStatusEvent(Event):
    id: str
    name: str
    room_id: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    queue_position: int | None = None
    worker_id: str | None = None
    error: str | None = None

    @property
    def room(self) -> str:
        return f"room:{self.room_id}"


@dataclass(frozen=True)
class TaskProgress(Event):
    """Beyond the contract: a running task's progress report, as stored (at most one
    per second per task)."""

    id: str
    room_id: str
    job_name: str
    attempt: int
    progress: float
    message: str | None = None
    progress_at: datetime | None = None

    @property
    def room(self) -> str:
        return f"room:{self.room_id}"


@dataclass(frozen=True)
class JobsInvalidate(Event):
    _room_id: str = field(default="")

    @property
    def room(self) -> str:
        return f"room:{self._room_id}"


@dataclass(frozen=True)
class ProvidersInvalidate(Event):
    _room_id: str = field(default="")

    @property
    def room(self) -> str:
        return f"room:{self._room_id}"


@dataclass(frozen=True)
class ProviderRequest(Event):
    request_id: str
    provider_name: str
    params: str

    @property
    def room(self) -> str:
        return f"providers:{self.provider_name}"


@dataclass(frozen=True)
class ProviderResultReady(Event):
    provider_name: str
    request_hash: str
    _room_id: str = field(default="")

    @property
    def room(self) -> str:
        return f"room:{self._room_id}"


@dataclass(frozen=True)
class TaskChanged(Event):
    """A task's row changed: wakes long-polls; an internal task may need dispatch."""

    on_wire: ClassVar[bool] = False
    task_id: str
    status: str
    internal: bool = False
    # For logs and metrics only: left out of equality, so de-duplication is unchanged.
    job_name: str = field(default="", compare=False)
    attempt: int = field(default=1, compare=False)
    created_at: datetime | None = field(default=None, compare=False)
    claimed_at: datetime | None = field(default=None, compare=False)
    started_at: datetime | None = field(default=None, compare=False)
    completed_at: datetime | None = field(default=None, compare=False)
    # Tasks wait on it (depends_on): its end settles them (TaskService).
    has_dependants: bool = field(default=False, compare=False)

    @property
    def room(self) -> str:
        return ""


def dedupe(events: Iterable[Event]) -> list[Event]:
    """Identical event + room is sent once (EVENTS.md); order otherwise kept."""
    seen: set[Event] = set()
    out: list[Event] = []
    for event in events:
        if event not in seen:
            seen.add(event)
            out.append(event)
    return out
