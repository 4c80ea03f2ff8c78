"""Ends open Socket.IO connections whose user was revoked (logout, password or role change,
deactivation) after they connected.

Every `interval` seconds one query reads the token generation and state of the users with
open sockets in this process; a socket whose user is gone, inactive or past the generation
it connected with is disconnected. Polling the database rather than passing a message
between replicas covers every writer alike: another replica, the CLI, a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import socketio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import User
from app.realtime.auth import SocketUser

log = logging.getLogger(__name__)

# Users per query: keeps each IN list well below any driver's parameter limit.
CHUNK = 500


class SocketRevocation:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        sessionmaker: async_sessionmaker[AsyncSession],
        interval: float,
    ) -> None:
        self._sio = sio
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._sockets: dict[str, SocketUser] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, sid: str, user: SocketUser) -> None:
        self._sockets[sid] = user

    def remove(self, sid: str) -> None:
        self._sockets.pop(sid, None)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._check_forever(), name="socket-revocation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> list[str]:
        """Disconnect the sockets of revoked users now; returns their sids."""
        if not self._sockets:
            return []
        current = await self._generations({user.id for user in self._sockets.values()})
        revoked = [
            sid
            for sid, user in list(self._sockets.items())
            if current.get(user.id) != user.generation
        ]
        for sid in revoked:
            self._sockets.pop(sid, None)
            log.info("socket %s: its user's tokens were revoked; disconnecting", sid)
            with contextlib.suppress(Exception):
                await self._sio.disconnect(sid)
        return revoked

    async def _generations(self, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Token generation of each active user among `user_ids` (inactive ones are left out)."""
        found: dict[uuid.UUID, int] = {}
        ordered = sorted(user_ids)
        async with self._sessionmaker() as session:
            for start in range(0, len(ordered), CHUNK):
                rows = await session.execute(
                    select(User.id, User.token_generation).where(
                        User.id.in_(ordered[start : start + CHUNK]), User.is_active.is_(True)
                    )
                )
                found.update({user_id: generation for user_id, generation in rows.tuples()})
        return found

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database blip must not end the watch for good
                log.warning("socket revocation check failed: %r", exc)
