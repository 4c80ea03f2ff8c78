"""Who a Socket.IO connection is: the same JWT as REST, from auth, header or query."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import tokens, users

BEARER = "bearer "


@dataclass(frozen=True, slots=True)
class SocketUser:
    """Whom a connection authenticated as, and the token generation it connected with."""

    id: uuid.UUID
    generation: int


def token_of(environ: Mapping[str, Any], auth: object) -> str | None:
    """The token from `auth={"token"}` (the Python client's way), else an
    `Authorization: Bearer` header, else a `?token=` query parameter."""
    if isinstance(auth, Mapping):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token
    header = environ.get("HTTP_AUTHORIZATION")
    if isinstance(header, str) and header.lower().startswith(BEARER):
        return header[len(BEARER) :].strip() or None
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    values = query.get("token")
    return values[0] if values and values[0] else None


async def authenticate(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret: str,
    environ: Mapping[str, Any],
    auth: object,
) -> SocketUser | None:
    """The active user the connection's token names (its generation current), or None."""
    token = token_of(environ, auth)
    claims = tokens.read(token, secret) if token else None
    if claims is None:
        return None
    async with sessionmaker() as session:
        user = await users.get_active(session, claims.user_id)
    if user is None or user.token_generation != claims.generation:
        return None
    return SocketUser(user.id, user.token_generation)
