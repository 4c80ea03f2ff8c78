"""Providers: register, list, resolve, delete, and reads/uploads through the result cache.

DB functions take the session first and never commit; cache functions take the
ResultBackend. Every function returns the events its caller publishes.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import insert_ignoring_conflicts
from app.db.models import Provider
from app.errors import Forbidden, InvalidCategory, ProviderNotFound, ProviderTimeout
from app.lifecycle import Lifecycle
from app.results import ResultBackend
from app.services import workers
from app.services.actors import Actor
from app.services.events import Event, ProviderRequest, ProviderResultReady, ProvidersInvalidate
from app.services.pages import Page, PageRequest, fetch
from app.services.rooms import (
    GLOBAL_ROOM,
    SPECIAL_ROOMS,
    parse_full_name,
    validate_room_id,
    visible_provider_rooms,
)
from app.services.tasks.store import ProviderRef, TaskStore

DEFAULT_CONTENT_TYPE = "application/json"
T = TypeVar("T")


@dataclass(frozen=True)
class ProviderRegistration:
    category: str
    name: str
    schema: dict[str, Any] = field(default_factory=dict)
    content_type: str = DEFAULT_CONTENT_TYPE
    worker_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Registered:
    provider: Provider
    created: bool
    events: list[Event]


async def register(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    spec: ProviderRegistration,
    allowed_categories: Sequence[str] | None,
) -> Registered:
    """PUT /rooms/{room}/providers, checks in the contract's order. Never commits.

    Beyond the contract (which opened @internal to anyone), @internal needs an admin too:
    its providers are the server's own.
    """
    validate_room_id(room_id)
    actor.require_writer()
    if room_id in SPECIAL_ROOMS and not actor.is_superuser:
        raise Forbidden(f"Admin required for {room_id} provider registration")
    if allowed_categories is not None and spec.category not in allowed_categories:
        raise InvalidCategory(
            f"Provider category '{spec.category}' not in allowed list: {list(allowed_categories)}"
        )
    worker = await workers.owned_or_new(session, actor, spec.worker_id)
    provider, created = await _upsert(session, actor, room_id, spec, worker.id)
    return Registered(provider, created, [ProvidersInvalidate(room_id)])


async def _upsert(
    session: AsyncSession,
    actor: Actor,
    room_id: str,
    spec: ProviderRegistration,
    worker_id: uuid.UUID,
) -> tuple[Provider, bool]:
    full_name = f"{room_id}:{spec.category}:{spec.name}"
    # Insert-or-nothing first, so two first registrations racing end as one row.
    created = await insert_ignoring_conflicts(
        session,
        Provider,
        {
            "id": uuid.uuid4(),
            "room_id": room_id,
            "category": spec.category,
            "name": spec.name,
            "full_name": full_name,
            "schema_": spec.schema,
            "content_type": spec.content_type,
            "user_id": actor.id,
            "worker_id": worker_id,
        },
    )
    provider = await _by_full_name(session, full_name, lock=True)
    assert provider is not None
    if created:
        return provider, True
    if provider.user_id != actor.id and not actor.is_superuser:
        raise Forbidden("Provider already registered by another user")
    provider.schema_ = spec.schema
    provider.content_type = spec.content_type
    provider.worker_id = worker_id
    provider.user_id = actor.id
    await session.flush()
    return provider, False


async def _by_full_name(
    session: AsyncSession, full_name: str, *, lock: bool = False
) -> Provider | None:
    query = select(Provider).where(Provider.full_name == full_name)
    if lock:
        query = query.with_for_update()
    query = query.execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def list_visible(session: AsyncSession, room_id: str, page: PageRequest) -> Page[Provider]:
    """@global lists only @global; any other room lists @global and itself."""
    validate_room_id(room_id)
    query = (
        select(Provider)
        .where(Provider.room_id.in_(visible_provider_rooms(room_id)))
        .order_by(Provider.created_at.desc(), Provider.id.desc())
    )
    rows, total = await fetch(session, query, page)
    return Page([row[0] for row in rows], total, page.limit, page.offset)


def visible_name(room_id: str, provider_name: str) -> str:
    """The full name of `provider_name` if it may be resolved from `room_id` (REST.md
    resolution), else 404. [quirk] from @global every provider is visible."""
    validate_room_id(room_id)
    parsed = parse_full_name(provider_name)
    if parsed is None:
        raise ProviderNotFound(f"Invalid provider name format: {provider_name}")
    if room_id != GLOBAL_ROOM and parsed.room_id not in (GLOBAL_ROOM, room_id):
        raise ProviderNotFound(f"Provider '{provider_name}' not accessible from room '{room_id}'")
    return str(parsed)


def _found(provider: T | None, missing: str) -> T:
    if provider is None:
        raise ProviderNotFound(missing)
    return provider


def _owned(actor: Actor, owner: object, forbidden: str) -> None:
    if str(owner) != str(actor.id) and not actor.is_superuser:
        raise Forbidden(forbidden)


async def resolve(session: AsyncSession, room_id: str, provider_name: str) -> Provider:
    """The provider named `provider_name`, as seen from `room_id` (GET .../info)."""
    full_name = visible_name(room_id, provider_name)
    provider = await _by_full_name(session, full_name)
    return _found(provider, f"Provider '{provider_name}' not found")


async def resolve_for_read(store: TaskStore, room_id: str, provider_name: str) -> ProviderRef:
    """The same resolution for a read, through the task store (the hot path)."""
    full_name = visible_name(room_id, provider_name)
    provider = await store.provider_by_name(full_name)
    return _found(provider, f"Provider '{provider_name}' not found")


async def get_owned(
    session: AsyncSession, actor: Actor, provider_id: uuid.UUID, forbidden: str
) -> Provider:
    """The provider if the caller owns it or is a superuser; 404, else 403 `forbidden`."""
    provider = _found(
        await session.get(Provider, provider_id), f"Provider '{provider_id}' not found"
    )
    _owned(actor, provider.user_id, forbidden)
    return provider


async def get_owned_for_upload(
    store: TaskStore, actor: Actor, provider_id: uuid.UUID
) -> ProviderRef:
    """The same check for an upload of results, through the task store (the hot path);
    viewers upload nothing, whatever they own."""
    actor.require_writer()
    provider = _found(
        await store.provider_by_id(str(provider_id)), f"Provider '{provider_id}' not found"
    )
    _owned(actor, provider.user_id, "Not authorized to upload results for this provider")
    return provider


async def delete_one(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> list[Event]:
    """DELETE /providers/{id}. Cached results are left to expire. Never commits."""
    actor.require_writer()
    provider = await get_owned(session, actor, provider_id, "Provider belongs to different user")
    room_id = provider.room_id
    await session.delete(provider)
    await session.flush()
    return [ProvidersInvalidate(room_id)]


# --- reads and uploads through the result cache ------------------------------------------


def canonical_params(params: Mapping[str, str]) -> str:
    """The one JSON spelling of read parameters: keys sorted, no spaces, ASCII-escaped.
    The hash and the provider_request payload both come from it (REST.md read, step 2)."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def request_hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


def result_key(full_name: str, request_hash: str) -> str:
    return f"provider-result:{full_name}:{request_hash}"


def inflight_key(full_name: str, request_hash: str) -> str:
    return f"provider-inflight:{full_name}:{request_hash}"


@dataclass(frozen=True)
class ReadRequest:
    """One read of one provider with its parameters, as the cache sees it."""

    full_name: str
    content_type: str
    params: str
    request_hash: str

    @classmethod
    def of(cls, provider: ProviderRef, params: Mapping[str, str]) -> ReadRequest:
        canonical = canonical_params(params)
        return cls(provider.full_name, provider.content_type, canonical, request_hash(canonical))

    @property
    def result_key(self) -> str:
        return result_key(self.full_name, self.request_hash)

    @property
    def inflight_key(self) -> str:
        return inflight_key(self.full_name, self.request_hash)


@dataclass(frozen=True)
class Lookup:
    cached: bytes | None
    events: list[Event]


async def lookup(
    results: ResultBackend, read: ReadRequest, inflight_ttl: int, actor: Actor
) -> Lookup:
    """A cache hit, or a miss with provider_request to publish if this read won the
    in-flight lock. The lock is never released on timeout: it expires, so reads within
    its TTL do not dispatch again (REST.md read, step 5). A viewer reads cached results
    only: a miss would set a provider to work (403)."""
    cached = await results.get(read.result_key)
    if cached is not None:
        return Lookup(cached, [])
    actor.require_writer()
    if not await results.acquire_inflight(read.inflight_key, inflight_ttl):
        return Lookup(None, [])
    # An upload may have stored and released between our miss and our acquire (it stores
    # before it releases): look again rather than dispatch a request already answered.
    cached = await results.get(read.result_key)
    if cached is not None:
        await results.release_inflight(read.inflight_key)
        return Lookup(cached, [])
    return Lookup(None, [ProviderRequest(read.request_hash, read.full_name, read.params)])


def read_timeout(prefer_wait: int | None, default: int, maximum: int) -> int:
    """Prefer: wait=N (0 allowed) capped at `maximum`; without it, `default`."""
    return default if prefer_wait is None else min(prefer_wait, maximum)


async def await_result(
    results: ResultBackend,
    read: ReadRequest,
    wait_seconds: int,
    provider_name: str,
    lifecycle: Lifecycle,
) -> bytes:
    """The uploaded result, or ProviderTimeout (504) naming the provider as the path did.
    A server that starts stopping gives the same 504 at once: Retry-After sends the reader
    back, to the restarted server or another replica, where the result is cached."""
    data = await lifecycle.unless_stopping(results.wait_for_key(read.result_key, wait_seconds))
    if data is None and lifecycle.stopping:
        raise ProviderTimeout(f"Server stopping before provider '{provider_name}' answered")
    if data is None:
        raise ProviderTimeout(f"Provider '{provider_name}' did not respond within {wait_seconds}s")
    return data


async def upload(
    results: ResultBackend, provider: ProviderRef, request_hash: str, data: bytes, ttl: int
) -> list[Event]:
    """Store the raw bytes verbatim, then release the lock, then wake waiters, in the
    contract's order (BACKGROUND.md §3). The hash is not checked against any request."""
    full_name = provider.full_name
    await results.store(result_key(full_name, request_hash), data, ttl)
    await results.release_inflight(inflight_key(full_name, request_hash))
    await results.notify_key(result_key(full_name, request_hash))
    return [ProviderResultReady(full_name, request_hash, provider.room_id)]


# --- serving results -----------------------------------------------------------------------

# A media type as RFC 9110 spells it (type/subtype, optional parameters), nothing else:
# a declared type that is not one is never put in a header.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?")
_ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript")
FALLBACK_CONTENT_TYPE = "application/octet-stream"


def is_active_content(content_type: str) -> bool:
    """Types a browser would render or run in our origin: HTML, XHTML, SVG, XML, scripts."""
    essence = content_type.split(";", 1)[0].strip().lower()
    return any(marker in essence for marker in _ACTIVE_MARKERS)


def delivery(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type and headers a provider result is served with. Browsers may not
    sniff it (`nosniff`); a type they would render as active content (a provider may
    declare any) keeps its type for API clients but comes as an attachment in a
    sandbox, never inline in our origin; a malformed type becomes octet-stream."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if not _MEDIA_TYPE.fullmatch(content_type):
        return FALLBACK_CONTENT_TYPE, headers
    if is_active_content(content_type):
        headers["Content-Disposition"] = "attachment"
        headers["Content-Security-Policy"] = "sandbox"
    return content_type, headers
