"""Users: creation, roles, passwords and the start-up bootstrap of the admin."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ROLES, User
from app.errors import BadRequest, UserNotFound
from app.services.actors import Actor

log = logging.getLogger(__name__)

# The same hashers fastapi-users uses: argon2 for new hashes, bcrypt still accepted.
PASSWORDS = PasswordHash((Argon2Hasher(), BcryptHasher()))


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


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
        hashed_password=hash_password(password),
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
    user.hashed_password = hash_password(password)
    await session.flush()
    return user


@dataclass(frozen=True)
class AdminBootstrap:
    email: str
    created: bool
    promoted: bool


async def ensure_admin(session: AsyncSession, email: str, password: str) -> AdminBootstrap:
    """Create the admin, or promote an existing user; never overwrite a password."""
    user = await get_by_email(session, email)
    if user is None:
        await create(session, email, password, role="admin")
        return AdminBootstrap(email, created=True, promoted=False)
    if user.role != "admin":
        user.role = "admin"
        await session.flush()
        return AdminBootstrap(email, created=False, promoted=True)
    return AdminBootstrap(email, created=False, promoted=False)
