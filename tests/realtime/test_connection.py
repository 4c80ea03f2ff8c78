"""EVENTS.md "Connection authentication" and "Transport": the REST JWT, three ways in."""

from __future__ import annotations

import json

import httpx
import socketio

from tests.live import LiveServer
from tests.realtime.conftest import make_token

TIMEOUT = 10


async def connects(url: str, **options: object) -> bool:
    sio = socketio.AsyncClient(reconnection=False)
    options.setdefault("transports", ["websocket"])
    try:
        await sio.connect(url, wait_timeout=TIMEOUT, **options)  # type: ignore[arg-type]
    except socketio.exceptions.ConnectionError:
        return False
    ok = sio.connected
    await sio.disconnect()
    return bool(ok)


async def test_token_in_auth_connects(live: LiveServer, user_token: str) -> None:
    assert await connects(live.url, auth={"token": user_token})


async def test_bearer_header_connects(live: LiveServer, user_token: str) -> None:
    assert await connects(live.url, headers={"Authorization": f"Bearer {user_token}"})


async def test_token_query_parameter_connects(live: LiveServer, user_token: str) -> None:
    assert await connects(f"{live.url}?token={user_token}")


async def test_websocket_transport_is_served(live: LiveServer, user_token: str) -> None:
    assert await connects(live.url, auth={"token": user_token}, transports=["websocket"])


def test_polling_transport_is_served(live: LiveServer, user_token: str) -> None:
    # Raw Engine.IO v4 long-polling; a polling client's disconnect waits out a ping
    # interval, so the protocol is spoken by hand here.
    with httpx.Client(base_url=f"{live.url}/socket.io/", timeout=TIMEOUT) as http:
        opened = http.get("", params={"EIO": "4", "transport": "polling"})
        assert opened.status_code == 200
        assert opened.text.startswith("0{")
        sid = json.loads(opened.text[1:])["sid"]
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        sent = http.post("", params=query, content="40" + json.dumps({"token": user_token}))
        assert sent.status_code == 200
        assert http.get("", params=query).text.startswith('40{"sid"')
        http.post("", params=query, content="1")


async def test_missing_token_is_refused(live: LiveServer) -> None:
    assert not await connects(live.url)


async def test_bad_token_is_refused(live: LiveServer, user_token: str) -> None:
    assert not await connects(live.url, auth={"token": user_token[:-4] + "AAAA"})


async def test_inactive_user_is_refused(live: LiveServer, live_database: str) -> None:
    token = await make_token(live_database, active=False)
    assert not await connects(live.url, auth={"token": token})
