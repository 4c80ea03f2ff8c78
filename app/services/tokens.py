"""JWTs as fastapi-users writes and reads them (AUTH.md, Token), plus our `gen` claim: the
user's token generation when the token was minted. Raising a user's generation (logout,
password or role change, deactivation) ends every token minted before."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

AUDIENCE = "fastapi-users:auth"
ALGORITHM = "HS256"
GENERATION_CLAIM = "gen"


class LifetimeRefused(ValueError):
    """A requested token lifetime is not positive or exceeds the maximum."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    generation: int


def check_lifetime(seconds: int, maximum: int) -> int:
    if seconds <= 0:
        raise LifetimeRefused(f"Token lifetime must be a positive number of seconds, not {seconds}")
    if seconds > maximum:
        raise LifetimeRefused(
            f"Token lifetime {seconds} s exceeds the maximum of {maximum} s "
            "(JOBSERVER_MAX_TOKEN_LIFETIME_SECONDS)"
        )
    return seconds


def mint(
    user_id: uuid.UUID,
    secret: str,
    lifetime_seconds: int,
    *,
    generation: int = 0,
    impersonated_by: uuid.UUID | None = None,
) -> str:
    """A token for scripts and workers: string audience plus `iat`, like zndraw-auth's."""
    if lifetime_seconds <= 0:
        raise LifetimeRefused("Token lifetime must be positive")
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime_seconds,
        GENERATION_CLAIM: generation,
    }
    if impersonated_by is not None:
        claims["impersonated_by"] = str(impersonated_by)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(token: str, secret: str, audience: str) -> dict[str, object] | None:
    """The claims of a valid token that carries `exp` and `sub`, else None."""
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            secret,
            audience=audience,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    return claims


def generation_of(claims: dict[str, object]) -> int | None:
    """The `gen` claim; tokens minted before generations existed carry none and count as
    generation 0 (a user's first). None when the claim is malformed."""
    value = claims.get(GENERATION_CLAIM, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read(token: str, secret: str, audience: str = AUDIENCE) -> TokenClaims | None:
    """Subject and generation of a valid token, or None (bad signature, expired, no `exp`,
    wrong audience, malformed claims)."""
    claims = decode(token, secret, audience)
    if claims is None:
        return None
    generation = generation_of(claims)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except (KeyError, ValueError):
        return None
    return None if generation is None else TokenClaims(user_id, generation)
