"""Room ids, full names and which rooms see which jobs and providers."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import InvalidRoomId

GLOBAL_ROOM = "@global"
INTERNAL_ROOM = "@internal"
SPECIAL_ROOMS = frozenset({GLOBAL_ROOM, INTERNAL_ROOM})


def validate_room_id(room_id: str) -> str:
    """Any non-empty id without '@' or ':', or exactly @global / @internal."""
    if room_id in SPECIAL_ROOMS:
        return room_id
    if not room_id or "@" in room_id or ":" in room_id:
        raise InvalidRoomId(f"Room ID '{room_id}' contains invalid characters (@ or :)")
    return room_id


@dataclass(frozen=True)
class FullName:
    room_id: str
    category: str
    name: str

    def __str__(self) -> str:
        return f"{self.room_id}:{self.category}:{self.name}"


def parse_full_name(full_name: str) -> FullName | None:
    """Split `room:category:name` at the first two colons; None when malformed."""
    parts = full_name.split(":", 2)
    if len(parts) < 3:
        return None
    return FullName(*parts)


def visible_job_rooms(room_id: str) -> tuple[str, ...]:
    """Rooms whose jobs are listed from `room_id` (REST.md, GET /rooms/{room}/jobs)."""
    if room_id in SPECIAL_ROOMS:
        return (room_id,)
    return (GLOBAL_ROOM, INTERNAL_ROOM, room_id)


def visible_provider_rooms(room_id: str) -> tuple[str, ...]:
    """Rooms whose providers are listed from `room_id` (no @internal merging)."""
    if room_id == GLOBAL_ROOM:
        return (GLOBAL_ROOM,)
    return (GLOBAL_ROOM, room_id)
