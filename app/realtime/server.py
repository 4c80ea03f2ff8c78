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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.db.models import Worker
from app.errors import BadRequest, JobserverError
from app.realtime.auth import authenticate
from app.realtime.presence import Presence
from app.realtime.revocation import SocketRevocation
from app.services.rooms import validate_room_id

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
    async def join_job_room(self, sid: str, data: object) -> None:
        join = _parse(JobRoomIn, data)
        if join is not None and await self._hold(sid, join.worker_id):
            await self.sio.enter_room(sid, f"jobs:{join.job_name}")

    async def leave_job_room(self, sid: str, data: object) -> None:
        leave = _parse(JobRoomIn, data)
        if leave is not None:
            await self.sio.leave_room(sid, f"jobs:{leave.job_name}")

    async def join_provider_room(self, sid: str, data: object) -> None:
        join = _parse(ProviderRoomIn, data)
        if join is not None and await self._hold(sid, join.worker_id):
            await self.sio.enter_room(sid, f"providers:{join.provider_name}")

    async def leave_provider_room(self, sid: str, data: object) -> None:
        leave = _parse(ProviderRoomIn, data)
        if leave is not None:
            await self.sio.leave_room(sid, f"providers:{leave.provider_name}")

    async def _hold(self, sid: str, worker_id: uuid.UUID) -> bool:
        """Honour a join only for a worker of the socket's user; remember it for disconnect."""
        if worker_id not in self.presence.workers_of(sid):
            session = await self.sio.get_session(sid)
            async with self._sessionmaker() as db:
                owner = await db.scalar(select(Worker.user_id).where(Worker.id == worker_id))
            if owner is None or str(owner) != session.get("user_id"):
                log.info("socket %s: ignored join for worker %s (not its own)", sid, worker_id)
                return False
        await self.presence.hold(sid, worker_id)
        return True

    # --- UI rooms (ours; EVENTS.md "room:{room_id} subscription") ----------------------
    async def room_join(self, sid: str, data: object) -> dict[str, Any]:
        room_id = _room_id(data)
        if isinstance(room_id, JobserverError):
            return _error_ack(room_id)
        await self.sio.enter_room(sid, f"room:{room_id}")
        return {"room_id": room_id}

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
