"""The Socket.IO server (EVENTS.md): connection auth, the client events, disconnect.

Built in create_app; fan-out goes through Redis when REDIS_URL is set.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.errors import BadRequest, JobserverError, NotAuthenticated
from app.realtime.auth import authenticate
from app.realtime.presence import Presence
from app.realtime.revocation import SocketRevocation
from app.services import room_access
from app.services.rooms import INTERNAL_ROOM, validate_room_id

log = logging.getLogger(__name__)

M = TypeVar("M", bound="BaseModel")


class JobRoomIn(BaseModel):
    job_name: str
    worker_id: uuid.UUID


class ProviderRoomIn(BaseModel):
    provider_name: str
    worker_id: uuid.UUID


class RoomIn(BaseModel):
    room_id: str


def make_server() -> socketio.AsyncServer:
    """An ASGI AsyncServer for this process's sockets. Emits reach other replicas through
    our fan-out (realtime/fanout.py), one Redis message per batch, not Socket.IO's own
    Redis manager (one round trip per emit)."""
    return socketio.AsyncServer(async_mode="asgi")


def asgi_app(sio: socketio.AsyncServer) -> socketio.ASGIApp:
    """The Engine.IO endpoint, mounted at /socket.io by create_app (routing is the mount's)."""
    return socketio.ASGIApp(sio, socketio_path=None)


def _error_ack(error: JobserverError) -> dict[str, Any]:
    return {
        "error": {
            "type": error.problem_type(),
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
        }
    }


class Realtime:
    """The Socket.IO server with its handlers, and what they need from the app."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        presence: Presence,
        sessionmaker: async_sessionmaker[AsyncSession],
        secret: str,
        revocation_check_seconds: float = 2.0,
    ) -> None:
        self.sio = sio
        self.revocation = SocketRevocation(sio, sessionmaker, revocation_check_seconds)
        self.presence = presence
        self._sessionmaker = sessionmaker
        self._secret = secret
        handlers = {
            "connect": self.connect,
            "disconnect": self.disconnect,
            "join_job_room": self.join_job_room,
            "leave_job_room": self.leave_job_room,
            "join_provider_room": self.join_provider_room,
            "leave_provider_room": self.leave_provider_room,
            "room_join": self.room_join,
            "room_leave": self.room_leave,
        }
        for event, handler in handlers.items():
            sio.on(event, handler)

    async def start(self) -> None:
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()
        await self.revocation.start()

    async def stop(self) -> None:
        await self.revocation.stop()
        await self.sio.shutdown()
        await self.presence.stop()

    # --- connection ------------------------------------------------------------------
    async def connect(self, sid: str, environ: Mapping[str, Any], auth: object = None) -> None:
        user = await authenticate(self._sessionmaker, self._secret, environ, auth)
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("Unauthorized")
        await self.sio.save_session(sid, {"user_id": str(user.id)})
        await self.sio.enter_room(sid, f"user:{user.id}")
        self.revocation.add(sid, user)
        metrics.SOCKETIO_CONNECTIONS.inc()

    async def disconnect(self, sid: str, reason: object = None) -> None:
        metrics.SOCKETIO_CONNECTIONS.dec()
        self.revocation.remove(sid)
        await self.presence.release(sid)

    # --- worker rooms (zndraw-joblib client) -------------------------------------------
    # A refused join answers an error ack (the joblib client emits without a callback and
    # never sees it) and leaves the socket out of the room; services/room_access.py rules.
    async def join_job_room(self, sid: str, data: object) -> dict[str, Any] | None:
        join = _parse(JobRoomIn, data)
        if join is None:
            return _error_ack(BadRequest("Expected {'job_name': <string>, 'worker_id': <uuid>}"))
        refusal = await self._join(sid, join.worker_id, f"jobs:{join.job_name}", join.job_name)
        return None if refusal is None else _error_ack(refusal)

    async def leave_job_room(self, sid: str, data: object) -> None:
        leave = _parse(JobRoomIn, data)
        if leave is not None:
            await self.sio.leave_room(sid, f"jobs:{leave.job_name}")

    async def join_provider_room(self, sid: str, data: object) -> dict[str, Any] | None:
        join = _parse(ProviderRoomIn, data)
        if join is None:
            return _error_ack(
                BadRequest("Expected {'provider_name': <string>, 'worker_id': <uuid>}")
            )
        room = f"providers:{join.provider_name}"
        refusal = await self._join(sid, join.worker_id, room, join.provider_name)
        return None if refusal is None else _error_ack(refusal)

    async def leave_provider_room(self, sid: str, data: object) -> None:
        leave = _parse(ProviderRoomIn, data)
        if leave is not None:
            await self.sio.leave_room(sid, f"providers:{leave.provider_name}")

    async def _join(
        self, sid: str, worker_id: uuid.UUID, room: str, full_name: str
    ) -> JobserverError | None:
        """Enter `room` if the socket's user may (room_access); the socket then holds
        the worker (for disconnect cleanup) when it is the user's own."""
        session = await self.sio.get_session(sid)
        async with self._sessionmaker() as db:
            who = await room_access.actor(db, session.get("user_id"))
            if who is None:
                decision = room_access.Decision(NotAuthenticated("Unauthorized"))
            elif room.startswith("jobs:"):
                decision = await room_access.job_room_join(db, who, full_name, worker_id)
            else:
                decision = await room_access.provider_room_join(db, who, full_name, worker_id)
        if decision.refusal is not None:
            log.info("socket %s: refused %s for worker %s", sid, room, worker_id)
            return decision.refusal
        if decision.holds_worker:
            await self.presence.hold(sid, worker_id)
        await self.sio.enter_room(sid, room)
        return None

    # --- UI rooms (ours; EVENTS.md "room:{room_id} subscription") ----------------------
    async def room_join(self, sid: str, data: object) -> dict[str, Any]:
        room_id = _room_id(data)
        if isinstance(room_id, JobserverError):
            return _error_ack(room_id)
        if room_id == INTERNAL_ROOM:
            refusal = await self._watch_internal(sid)
            if refusal is not None:
                return _error_ack(refusal)
        await self.sio.enter_room(sid, f"room:{room_id}")
        return {"room_id": room_id}

    async def _watch_internal(self, sid: str) -> JobserverError | None:
        session = await self.sio.get_session(sid)
        async with self._sessionmaker() as db:
            who = await room_access.actor(db, session.get("user_id"))
        if who is None:
            return NotAuthenticated("Unauthorized")
        return room_access.room_join(who, INTERNAL_ROOM)

    async def room_leave(self, sid: str, data: object) -> dict[str, Any]:
        room_id = _room_id(data)
        if isinstance(room_id, JobserverError):
            return _error_ack(room_id)
        await self.sio.leave_room(sid, f"room:{room_id}")
        return {"room_id": room_id}


def _room_id(data: object) -> str | JobserverError:
    room = _parse(RoomIn, data)
    if room is None:
        return BadRequest("Expected {'room_id': <string>}")
    try:
        return validate_room_id(room.room_id)
    except JobserverError as error:
        return error


def _parse(model: type[M], data: object) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
