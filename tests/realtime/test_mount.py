"""create_app serves Socket.IO at /socket.io next to the REST API, embedded and with Redis
(the lifespan starts and stops the Redis manager cleanly)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture(params=["embedded", "redis"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def test_socketio_is_served_by_the_rest_app_at_socket_io(
    client: httpx.AsyncClient,
) -> None:
    opened = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert opened.status_code == 200
    assert opened.text.startswith('0{"sid"')
    assert '"upgrades":["websocket"]' in opened.text
    assert (await client.get("/health")).status_code == 200
