"""Users and JWT auth through fastapi-users, laid out as zndraw-auth under /v1 (AUTH.md).

No `from __future__ import annotations` here: FastAPI must resolve the dependencies
declared inside build_auth_routers at definition time.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, exceptions, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.jwt import generate_jwt
from fastapi_users.password import PasswordHelper
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from pydantic import AfterValidator, BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import CoreDep, CurrentActor, Session, Settings
from app.api.json_route import make_strict
from app.api.openapi_document import errors
from app.db.models import User
from app.errors import Forbidden, TooManyRequests, UserNotFound
from app.services import passwords, tokens, users
from app.services.throttle import Limit, limits_for
from app.state import Core

CURRENT_PASSWORD_REQUIRED = "UPDATE_USER_CURRENT_PASSWORD_REQUIRED"
BAD_CURRENT_PASSWORD = "UPDATE_USER_BAD_CURRENT_PASSWORD"


def _check_email(value: str) -> str:
    if not users.is_email(value):
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
    # A user changing its own password or email proves it knows the current password, so
    # a stolen token alone cannot take the account over.
    current_password: str | None = None

    def create_update_dict(self) -> dict[str, Any]:
        # A user updating itself must not change its own role.
        update: dict[str, Any] = super().create_update_dict()  # type: ignore[no-untyped-call]
        update.pop("role", None)
        update.pop("current_password", None)
        return update

    def create_update_dict_superuser(self) -> dict[str, Any]:
        update: dict[str, Any] = super().create_update_dict_superuser()  # type: ignore[no-untyped-call]
        update.pop("current_password", None)
        return update


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


def client_address(request: Request | None) -> str | None:
    """The caller's address: the socket peer, or the forwarded client when uvicorn trusts
    the proxy (`serve` runs with proxy headers, trusted from FORWARDED_ALLOW_IPS)."""
    return request.client.host if request is not None and request.client else None


# mypy reads our Mapped[...] columns as not matching fastapi-users' UserProtocol, hence
# the type-var ignores below; at runtime the User model has every attribute it reads.
class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):  # type: ignore[type-var]
    """fastapi-users' manager with our rules: the password policy, hashing on the password
    pool (never on the event loop), throttled logins and registrations, the current
    password for self-service changes of password or email."""

    def __init__(
        self,
        user_db: SQLAlchemyUserDatabase[User, uuid.UUID],  # type: ignore[type-var]
        core: Core,
        address: str | None,
    ) -> None:
        super().__init__(user_db, PasswordHelper(passwords.PASSWORDS))
        self.core = core
        self.address = address

    # --- policy and throttle -------------------------------------------------------
    async def validate_password(self, password: str, user: Any) -> None:
        try:
            passwords.check_policy(password, self.core.settings.password_min_length)
        except passwords.PasswordPolicyError as exc:
            raise exceptions.InvalidPasswordException(reason=str(exc)) from None

    def _limits(self, action: str, email: str) -> list[Limit]:
        settings = self.core.settings
        account, address = limits_for(
            action,
            email,
            self.address,
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
        )
        return [account] if address is None else [account, address]

    async def _admit(self, limits: list[Limit]) -> None:
        wait = await self.core.throttle.retry_after(limits)
        if wait is not None:
            raise TooManyRequests(
                f"Too many failed attempts; try again in {wait} s", retry_after=wait
            )

    # --- login ----------------------------------------------------------------------
    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        limits = self._limits("login", credentials.username)
        await self._admit(limits)
        try:
            user: User | None = await self.get_by_email(credentials.username)
        except exceptions.UserNotExists:
            user = None
        # An unknown email is hashed too: it answers in the time a wrong password takes.
        verified, better_hash = await passwords.verify_user(
            credentials.password, user.hashed_password if user is not None else None
        )
        if user is None or not verified or not user.is_active:
            await self.core.throttle.failed(limits)
            return None
        await self.core.throttle.succeeded(limits[0])
        if better_hash is not None:
            await self._store_rehash(user, better_hash)
        return user

    async def _store_rehash(self, user: User, hashed: str) -> None:
        """The same password under a stronger hash: written past the ORM, since it is no
        password change and must not end the user's tokens."""
        session: AsyncSession = self.user_db.session  # type: ignore[attr-defined]
        await session.execute(update(User).where(User.id == user.id).values(hashed_password=hashed))
        await session.commit()

    # --- registration ---------------------------------------------------------------
    async def create(
        self,
        user_create: schemas.BaseUserCreate,
        safe: bool = False,
        request: Request | None = None,
    ) -> User:
        limits = self._limits("register", user_create.email)
        await self._admit(limits)
        try:
            await self.validate_password(user_create.password, user_create)
            if await self.user_db.get_by_email(user_create.email) is not None:
                raise exceptions.UserAlreadyExists()
        except (exceptions.InvalidPasswordException, exceptions.UserAlreadyExists):
            await self.core.throttle.failed(limits)
            raise
        values = _changes(user_create, safe)
        values["hashed_password"] = await passwords.hash_password(values.pop("password"))
        created: User = await self.user_db.create(values)
        await self.on_after_register(created, request)
        return created

    # --- updates --------------------------------------------------------------------
    async def update(
        self,
        user_update: schemas.BaseUserUpdate,
        user: User,
        safe: bool = False,
        request: Request | None = None,
    ) -> User:
        # fastapi-users passes safe=True exactly for PATCH /users/me.
        changes = _changes(user_update, safe)
        changes_credentials = changes.get("password") is not None or (
            changes.get("email") is not None and changes["email"] != user.email
        )
        if safe and changes_credentials:
            current = getattr(user_update, "current_password", None)
            await self._check_current_password(user, current)
        updated: User = await self._update(user, changes)
        await self.on_after_update(updated, changes, request)
        return updated

    async def _check_current_password(self, user: User, current: str | None) -> None:
        if current is None:
            raise HTTPException(
                400,
                detail={
                    "code": CURRENT_PASSWORD_REQUIRED,
                    "reason": "Changing the password or email needs current_password",
                },
            )
        limits = self._limits("login", user.email)
        await self._admit(limits)
        verified, _ = await passwords.verify(current, user.hashed_password)
        if not verified:
            await self.core.throttle.failed(limits)
            raise HTTPException(
                400,
                detail={"code": BAD_CURRENT_PASSWORD, "reason": "current_password is wrong"},
            )

    async def _update(self, user: User, update_dict: dict[str, Any]) -> User:
        values = dict(update_dict)
        password = values.pop("password", None)
        if password is not None:
            await self.validate_password(password, user)
            values["hashed_password"] = await passwords.hash_password(password)
        # A new password, role or active flag also raises the token generation (db/models.py).
        updated: User = await super()._update(user, values)
        return updated


def _changes(model: schemas.CreateUpdateDictModel, safe: bool) -> dict[str, Any]:
    """The fields a create or update sets; `safe` leaves out the privileged ones."""
    found: dict[str, Any] = (
        model.create_update_dict()  # type: ignore[no-untyped-call]
        if safe
        else model.create_update_dict_superuser()  # type: ignore[no-untyped-call]
    )
    return found


class GenerationJWTStrategy(JWTStrategy[User, uuid.UUID]):  # type: ignore[type-var]
    """fastapi-users' JWTs plus the user's token generation (`gen`): a token is valid only
    while the generation it names is the user's current one. Logout raises it."""

    def __init__(self, secret: str, lifetime_seconds: int, session: AsyncSession) -> None:
        super().__init__(secret=secret, lifetime_seconds=lifetime_seconds)
        self.session = session

    async def read_token(
        self,
        token: str | None,
        user_manager: BaseUserManager[User, uuid.UUID],  # type: ignore[type-var]
    ) -> User | None:
        claims = tokens.read(token, str(self.secret)) if token else None
        if claims is None:
            return None
        try:
            user: User = await user_manager.get(claims.user_id)
        except exceptions.UserNotExists:
            return None
        return user if user.token_generation == claims.generation else None

    async def write_token(self, user: User) -> str:
        data = {
            "sub": str(user.id),
            "aud": self.token_audience,
            tokens.GENERATION_CLAIM: user.token_generation,
        }
        return generate_jwt(data, self.encode_key, self.lifetime_seconds, algorithm=self.algorithm)

    async def destroy_token(self, token: str, user: User) -> None:
        """Logout ends every token of the user, on every replica (after the auth cache)."""
        found = await self.session.get(User, user.id)
        if found is not None:
            users.revoke_tokens(found)
            await self.session.commit()


def build_auth_routers(secret: str, lifetime_seconds: int) -> list[tuple[APIRouter, str]]:
    """(router, prefix) pairs for the fastapi-users routes and our admin routes."""

    async def get_user_db(
        session: Session,
    ) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:  # type: ignore[type-var]
        yield SQLAlchemyUserDatabase(session, User)  # type: ignore[type-var]

    async def get_user_manager(
        request: Request,
        core: CoreDep,
        user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],  # type: ignore[type-var]
    ) -> AsyncIterator[UserManager]:
        manager = UserManager(user_db, core, client_address(request))
        manager.reset_password_token_secret = secret
        manager.verification_token_secret = secret
        yield manager

    async def get_strategy(session: Session) -> JWTStrategy[User, uuid.UUID]:  # type: ignore[type-var]
        return GenerationJWTStrategy(secret, lifetime_seconds, session)

    backend = AuthenticationBackend(  # type: ignore[type-var]
        name="jwt",
        transport=BearerTransport(tokenUrl="/v1/auth/jwt/login"),
        get_strategy=get_strategy,
    )
    fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])  # type: ignore[type-var]
    # Router dependencies bind when routes are added, so the guard wraps the finished
    # router instead of being appended to it (appending would silently do nothing).
    register = APIRouter(dependencies=[Depends(_registration_allowed)])
    # Strict JSON: a lone surrogate in a password or email answered 500 (json_route.py).
    register.include_router(make_strict(fastapi_users.get_register_router(UserRead, UserCreate)))
    users_router = make_strict(fastapi_users.get_users_router(UserRead, UserUpdate))
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


@admin_router.post("/users/{user_id}/token", responses=errors(Forbidden, UserNotFound))
async def mint_token(
    user_id: uuid.UUID, request: Request, session: Session, actor: CurrentActor, settings: Settings
) -> TokenOut:
    """Mint a token for another user (e.g. a worker account). Admins only."""
    actor.require_admin()
    user = await users.get_active(session, user_id)
    if user is None:
        raise UserNotFound("User not found")
    secret: str = request.app.state.core.secret
    token = tokens.mint(
        user.id,
        secret,
        settings.token_lifetime_seconds,
        generation=user.token_generation,
        impersonated_by=actor.id,
    )
    return TokenOut(access_token=token)


def include(app: FastAPI, secret: str, lifetime_seconds: int) -> None:
    for router, prefix in build_auth_routers(secret, lifetime_seconds):
        app.include_router(router, prefix=prefix, tags=["auth"])
