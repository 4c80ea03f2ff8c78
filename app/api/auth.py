"""Users and JWT auth through fastapi-users, laid out as zndraw-auth under /v1 (AUTH.md).

No `from __future__ import annotations` here: FastAPI must resolve the dependencies
declared inside build_auth_routers at definition time.
"""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from pydantic import AfterValidator, BaseModel

from app.api.deps import CurrentActor, Session, Settings
from app.db.models import User
from app.errors import Forbidden, UserNotFound
from app.services import tokens, users

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _check_email(value: str) -> str:
    """Lenient on purpose: self-hosted accounts like admin@localhost must work."""
    if not EMAIL.match(value):
        raise ValueError("value is not a valid email address")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
Role = Literal["admin", "operator", "viewer"]


class UserRead(schemas.BaseUser[uuid.UUID]):
    email: str  # accounts may live on non-public domains
    role: Role = "operator"


class UserCreate(schemas.BaseUserCreate):
    email: Email


class UserUpdate(schemas.BaseUserUpdate):
    email: Email | None = None
    role: Role | None = None

    def create_update_dict(self) -> dict[str, Any]:
        # A user updating itself must not change its own role.
        update: dict[str, Any] = super().create_update_dict()  # type: ignore[no-untyped-call]
        update.pop("role", None)
        return update


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


# mypy reads our Mapped[...] columns as not matching fastapi-users' UserProtocol, hence
# the type-var ignores below; at runtime the User model has every attribute it reads.
class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):  # type: ignore[type-var]
    """fastapi-users' manager; the password helper shares our hashers."""


def build_auth_routers(secret: str, lifetime_seconds: int) -> list[tuple[APIRouter, str]]:
    """(router, prefix) pairs for the fastapi-users routes and our admin routes."""

    async def get_user_db(
        session: Session,
    ) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:  # type: ignore[type-var]
        yield SQLAlchemyUserDatabase(session, User)  # type: ignore[type-var]

    async def get_user_manager(
        user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],  # type: ignore[type-var]
    ) -> AsyncIterator[UserManager]:
        manager = UserManager(user_db, PasswordHelper(users.PASSWORDS))
        manager.reset_password_token_secret = secret
        manager.verification_token_secret = secret
        yield manager

    def get_strategy() -> JWTStrategy[User, uuid.UUID]:  # type: ignore[type-var]
        return JWTStrategy(secret=secret, lifetime_seconds=lifetime_seconds)

    backend = AuthenticationBackend(  # type: ignore[type-var]
        name="jwt",
        transport=BearerTransport(tokenUrl="/v1/auth/jwt/login"),
        get_strategy=get_strategy,
    )
    fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])  # type: ignore[type-var]
    # Router dependencies bind when routes are added, so the guard wraps the finished
    # router instead of being appended to it (appending would silently do nothing).
    register = APIRouter(dependencies=[Depends(_registration_allowed)])
    register.include_router(fastapi_users.get_register_router(UserRead, UserCreate))
    users_router = fastapi_users.get_users_router(UserRead, UserUpdate)
    return [
        (fastapi_users.get_auth_router(backend), "/v1/auth/jwt"),
        (register, "/v1/auth"),
        (users_router, "/v1/auth/users"),
        (users_router, "/v1/users"),
        (admin_router, "/v1/admin"),
    ]


async def _registration_allowed(settings: Settings) -> None:
    if not settings.allow_registration:
        raise Forbidden("Registration is disabled on this server")


admin_router = APIRouter(tags=["admin"])


@admin_router.post("/users/{user_id}/token")
async def mint_token(
    user_id: uuid.UUID, request: Request, session: Session, actor: CurrentActor, settings: Settings
) -> TokenOut:
    """Mint a token for another user (e.g. a worker account). Admins only."""
    actor.require_admin()
    user = await users.get_active(session, user_id)
    if user is None:
        raise UserNotFound("User not found")
    secret: str = request.app.state.core.secret
    token = tokens.mint(user.id, secret, settings.token_lifetime_seconds, impersonated_by=actor.id)
    return TokenOut(access_token=token)


def include(app: FastAPI, secret: str, lifetime_seconds: int) -> None:
    for router, prefix in build_auth_routers(secret, lifetime_seconds):
        app.include_router(router, prefix=prefix, tags=["auth"])
