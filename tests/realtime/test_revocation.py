"""Issue 18: revoked users lose their Socket.IO connections (logout, deactivation by any
writer), and a revoked token cannot connect."""

from __future__ import annotations

import asyncio
import time

import httpx
import socketio
from sqlalchemy import update

from app.db.models import User
from app.db.session import make_engine
from app.services import tokens
from tests.conftest import TEST_SECRET
from tests.live import LiveServer
from tests.realtime.conftest import headers, make_token, recorder
from tests.realtime.test_connection import connects

# The live server checks open sockets every 2 s (JOBSERVER_SOCKET_AUTH_CHECK_SECONDS).
DISCONNECT_WITHIN = 6.0


async def disconnected(sio: socketio.AsyncClient) -> bool:
    deadline = time.monotonic() + DISCONNECT_WITHIN
    while time.monotonic() < deadline:
        if not sio.connected:
            return True
        await asyncio.sleep(0.05)
    return False


def logout(live: LiveServer, token: str) -> None:
    response = httpx.post(f"{live.url}/v1/auth/jwt/logout", headers=headers(token))
    assert response.status_code == 204, response.text


async def test_token_revoked_by_logout_cannot_connect(live: LiveServer, user_token: str) -> None:
    assert await connects(live.url, auth={"token": user_token})
    logout(live, user_token)
    assert not await connects(live.url, auth={"token": user_token})


async def test_logout_disconnects_the_users_open_sockets(
    live: LiveServer, user_token: str, other_token: str, room_id: str
) -> None:
    mine = await recorder(live.url, user_token, room_id)
    theirs = await recorder(live.url, other_token, room_id)
    try:
        logout(live, user_token)
        assert await disconnected(mine.sio)
        assert theirs.sio.connected
    finally:
        for rec in (mine, theirs):
            if rec.sio.connected:
                await rec.sio.disconnect()


async def test_deactivated_users_socket_is_disconnected(
    live: LiveServer, live_database: str, room_id: str
) -> None:
    token = await make_token(live_database)
    rec = await recorder(live.url, token, room_id)
    claims = tokens.read(token, TEST_SECRET)
    assert claims is not None
    subject = claims.user_id
    # Written straight to the database, as another replica or the CLI would.
    engine = make_engine(live_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(update(User).where(User.id == subject).values(is_active=False))
    finally:
        await engine.dispose()
    try:
        assert await disconnected(rec.sio)
    finally:
        if rec.sio.connected:
            await rec.sio.disconnect()
