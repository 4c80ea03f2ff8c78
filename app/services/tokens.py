"""JWTs exactly as fastapi-users writes and reads them (AUTH.md, Token)."""

from __future__ import annotations

import time
import uuid

import jwt

AUDIENCE = "fastapi-users:auth"
ALGORITHM = "HS256"


def mint(
    user_id: uuid.UUID,
    secret: str,
    lifetime_seconds: int,
    *,
    impersonated_by: uuid.UUID | None = None,
) -> str:
    """A token for scripts and workers: string audience plus `iat`, like zndraw-auth's."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    if impersonated_by is not None:
        claims["impersonated_by"] = str(impersonated_by)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_subject(token: str, secret: str) -> uuid.UUID | None:
    """The user id a valid token names, or None (bad signature, expired, wrong audience)."""
    try:
        claims = jwt.decode(token, secret, audience=AUDIENCE, algorithms=[ALGORITHM])
        return uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
