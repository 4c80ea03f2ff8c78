"""The dashboard's session: a signed cookie (HttpOnly, SameSite=Strict) naming the user,
and a CSRF token derived from it that every state-changing request must send back."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from app.services import tokens
from app.services.actors import Actor

COOKIE = "jobserver_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Not the API's audience: the cookie is no bearer token for the REST API.
AUDIENCE = "jobserver:dashboard"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class DashboardSession:
    actor: Actor
    email: str
    csrf: str


@dataclass(frozen=True)
class Cookie:
    user_id: uuid.UUID
    session_id: str
    generation: int


def mint(user_id: uuid.UUID, secret: str, lifetime_seconds: int, generation: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "sid": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + lifetime_seconds,
        tokens.GENERATION_CLAIM: generation,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read(cookie: str, secret: str) -> Cookie | None:
    """User, session id and token generation of a valid cookie, else None."""
    claims = tokens.decode(cookie, secret, AUDIENCE)
    if claims is None:
        return None
    generation = tokens.generation_of(claims)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = str(claims["sid"])
    except (KeyError, ValueError):
        return None
    return None if generation is None else Cookie(user_id, session_id, generation)


def csrf_token(session_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(expected: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(expected, sent)
