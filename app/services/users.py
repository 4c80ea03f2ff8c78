"""Users: creation, roles, passwords and the start-up bootstrap of the admin."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ROLES, User
from app.errors import BadRequest, UserNotFound
from app.services import passwords
from app.services.actors import Actor

log = logging.getLogger(__name__)

# Lenient on purpose: self-hosted accounts like admin@localhost must work.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_email(value: str) -> bool:
    return EMAIL.match(value) is not None


def check_email(value: str) -> str:
    if not is_email(value):
        raise BadRequest(f"'{value}' is not a valid email address")
    return value


def check_password(password: str, min_length: int) -> str:
    """The password policy as a domain error (400), for the CLI."""
    try:
        passwords.check_policy(password, min_length)
    except passwords.PasswordPolicyError as exc:
        raise BadRequest(str(exc)) from None
    return password


def revoke_tokens(user: User) -> None:
    """End every token, cookie and socket of the user (flushed with the session)."""
    user.token_generation = (user.token_generation or 0) + 1


def hash_password(password: str) -> str:
    """Synchronous hashing, for fixtures and scripts; the server uses passwords.hash_password."""
    return passwords.hash_now(password)


def actor_of(user: User) -> Actor:
    return Actor(id=user.id, role=user.role, is_active=user.is_active)


async def get_active(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(func.lower(User.email) == email.lower()))
    return result.scalar_one_or_none()


async def require_by_email(session: AsyncSession, email: str) -> User:
    user = await get_by_email(session, email)
    if user is None:
        raise UserNotFound(f"User '{email}' not found")
    return user


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"Role '{role}' is not one of {list(ROLES)}")
    return role


async def create(
    session: AsyncSession, email: str, password: str, *, role: str = "operator"
) -> User:
    """Create an active, verified user. Runs in the caller's transaction; never commits."""
    if await get_by_email(session, email) is not None:
        raise BadRequest(f"User '{email}' already exists")
    user = User(
        email=email,
        hashed_password=await passwords.hash_password(password),
        role=check_role(role),
        is_active=True,
        is_verified=True,
    )
    session.add(user)
    await session.flush()
    return user


async def list_all(session: AsyncSession) -> Sequence[User]:
    return (
        (await session.execute(select(User).order_by(User.created_at, User.email))).scalars().all()
    )


async def set_role(session: AsyncSession, email: str, role: str) -> User:
    user = await require_by_email(session, email)
    user.role = check_role(role)
    await session.flush()
    return user


async def set_password(session: AsyncSession, email: str, password: str) -> User:
    user = await require_by_email(session, email)
    user.hashed_password = await passwords.hash_password(password)
    await session.flush()
    return user


@dataclass(frozen=True)
class AdminBootstrap:
    email: str
    created: bool
    # An account with that email exists and is no admin: it is left as it is (promoting it
    # would hand admin to whoever got that email first, with their own password).
    refused: bool = False
    # No account yet, but the configured password breaks the policy: nothing created.
    weak_password: str | None = None


async def ensure_admin(
    session: AsyncSession, email: str, password: str, min_length: int = 1
) -> AdminBootstrap:
    """Create the admin when no account has that email; never change an existing one."""
    user = await get_by_email(session, email)
    if user is None:
        try:
            passwords.check_policy(password, min_length)
        except passwords.PasswordPolicyError as exc:
            return AdminBootstrap(email, created=False, weak_password=str(exc))
        await create(session, email, password, role="admin")
        return AdminBootstrap(email, created=True)
    return AdminBootstrap(email, created=False, refused=user.role != "admin")
