"""Annotated dependency aliases: Session, CurrentActor, Caller, Uow, Settings, Page.

Every dependency is `async def`, even trivial ones: FastAPI runs a plain `def`
dependency in a worker thread, which costs more than the work itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app import logs
from app.errors import NotAuthenticated
from app.services import tokens, users
from app.services.actors import Actor
from app.services.events import Event
from app.services.pages import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from app.settings import Settings as SettingsModel
from app.state import Core

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/jwt/login", auto_error=False)


async def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


CoreDep = Annotated[Core, Depends(get_core)]


async def get_settings(core: CoreDep) -> SettingsModel:
    return core.settings


Settings = Annotated[SettingsModel, Depends(get_settings)]


async def get_session(core: CoreDep) -> AsyncIterator[AsyncSession]:
    async with core.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


async def current_actor(core: CoreDep, token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """The caller: a valid token naming an existing active user, else 401. A token seen
    within the cache's lifetime costs no database read (nor a session)."""
    if not token:
        raise NotAuthenticated("Unauthorized")
    cached = core.actor_cache.get(token)
    if cached is not None:
        logs.set_user(cached.id)
        return cached
    claims = tokens.read(token, core.secret)
    user = None
    if claims is not None:
        async with core.sessionmaker() as session:
            user = await users.get_active(session, claims.user_id)
    # A token minted before the user's latest revocation (logout, password or role change)
    # is over; the cache above serves it for at most its TTL after that.
    if user is None or claims is None or claims.generation != user.token_generation:
        raise NotAuthenticated("Unauthorized")
    actor = users.actor_of(user)
    core.actor_cache.put(token, actor)
    logs.set_user(actor.id)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, and the server they call: the workers' hot routes take this one
    dependency instead of several (each costs FastAPI a resolution per request)."""

    core: Core
    actor: Actor


async def caller(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> Caller:
    core: Core = request.app.state.core
    return Caller(core, await current_actor(core, token))


CallerDep = Annotated[Caller, Depends(caller)]


class UnitOfWork:
    """The request's session plus publishing: commit, then publish the events."""

    def __init__(self, session: AsyncSession, core: Core) -> None:
        self.session = session
        self.core = core

    async def commit(self, events: Iterable[Event] = ()) -> None:
        await self.session.commit()
        await self.core.publisher.publish(events)


async def get_uow(session: Session, core: CoreDep) -> UnitOfWork:
    return UnitOfWork(session, core)


Uow = Annotated[UnitOfWork, Depends(get_uow)]


async def page_request(
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageQuery = Annotated[PageRequest, Depends(page_request)]
