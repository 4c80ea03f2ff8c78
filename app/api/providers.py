"""Providers: register, list, info, read (long-poll over the result cache), upload, delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from pydantic import AliasChoices, BaseModel, Field

from app.api.deps import (
    CoreDep,
    CurrentActor,
    PageQuery,
    Session,
    Settings,
    Uow,
)
from app.api.json_route import StrictJsonRoute
from app.api.openapi_document import errors
from app.api.openapi_examples import PROVIDER_READ, PROVIDER_UPLOAD
from app.api.schemas import Paginated, paginated
from app.api.tasks import prefer_wait
from app.db.models import Provider
from app.errors import Forbidden, InvalidCategory, InvalidRoomId, ProviderNotFound, ProviderTimeout
from app.services import providers
from app.services.providers import DEFAULT_CONTENT_TYPE, ProviderRegistration, ReadRequest

router = APIRouter(prefix="/v1/joblib", tags=["providers"], route_class=StrictJsonRoute)


# The caller is checked without holding a session (api/deps.py), so a long read holds no
# database connection while it waits.


class ProviderRegisterRequest(BaseModel):
    category: str
    name: str
    # The reference client sends `schema_`; others send `schema`. Prefer `schema`.
    schema_: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("schema", "schema_")
    )
    content_type: str = DEFAULT_CONTENT_TYPE
    worker_id: uuid.UUID | None = None


class ProviderResponse(BaseModel):
    id: uuid.UUID
    room_id: str
    category: str
    name: str
    full_name: str
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    worker_id: uuid.UUID
    created_at: datetime

    @classmethod
    def of(cls, provider: Provider) -> ProviderResponse:
        return cls(
            id=provider.id,
            room_id=provider.room_id,
            category=provider.category,
            name=provider.name,
            full_name=provider.full_name,
            schema_=provider.schema_,
            worker_id=provider.worker_id,
            created_at=provider.created_at,
        )


@router.put(
    "/rooms/{room_id}/providers",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ProviderResponse, "description": "An existing registration, updated"},
        **errors(InvalidCategory, InvalidRoomId),
    },
)
async def register_provider(
    room_id: str,
    body: ProviderRegisterRequest,
    response: Response,
    uow: Uow,
    actor: CurrentActor,
    settings: Settings,
) -> ProviderResponse:
    """Register a provider in a room: 201 when new, 200 when an existing registration
    (same room, category and name) was updated; its id is kept."""
    settings.json_limits.schema(body.schema_)
    spec = ProviderRegistration(
        body.category, body.name, body.schema_, body.content_type, body.worker_id
    )
    registered = await providers.register(
        uow.session, actor, room_id, spec, settings.allowed_provider_categories
    )
    await uow.commit(registered.events)
    response.status_code = status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK
    return ProviderResponse.of(registered.provider)


@router.get("/rooms/{room_id}/providers", responses=errors(InvalidRoomId))
async def list_providers(
    room_id: str, session: Session, _: CurrentActor, page: PageQuery
) -> Paginated[ProviderResponse]:
    """Providers visible from the room: its own and @global ones, newest first."""
    result = await providers.list_visible(session, room_id, page)
    return Paginated[ProviderResponse].model_validate(paginated(result, ProviderResponse.of))


# Routes ending in /info must be declared before the bare {provider_name:path} route.
@router.get(
    "/rooms/{room_id}/providers/{provider_name:path}/info",
    responses=errors(InvalidRoomId, ProviderNotFound),
)
async def get_provider_info(
    room_id: str, provider_name: str, session: Session, _: CurrentActor
) -> ProviderResponse:
    """One provider by its full name, with the schema exactly as registered."""
    return ProviderResponse.of(await providers.resolve(session, room_id, provider_name))


@router.get(
    "/rooms/{room_id}/providers/{provider_name:path}",
    response_class=Response,
    responses={
        200: {
            "description": "The provider's result, in its declared content type",
            "content": {DEFAULT_CONTENT_TYPE: {"schema": {}, "example": PROVIDER_READ}},
        },
        **errors(InvalidRoomId, ProviderNotFound, Forbidden, ProviderTimeout),
    },
)
async def read_provider(
    room_id: str,
    provider_name: str,
    request: Request,
    core: CoreDep,
    actor: CurrentActor,
    prefer: Annotated[str | None, Header()] = None,
) -> Response:
    """Read from a provider; the query string is the read's parameters. Answers from the
    cache, or asks the provider and waits (`Prefer: wait=N`, capped) for its upload;
    504 with `Retry-After` when it does not answer in time."""
    settings = core.settings
    provider = await providers.resolve_for_read(core.store, room_id, provider_name)
    read = ReadRequest.of(provider, dict(request.query_params))
    found = await providers.lookup(
        core.results, read, settings.provider_inflight_ttl_seconds, actor
    )
    media_type, headers = providers.delivery(read.content_type)
    if found.cached is not None:
        return Response(found.cached, media_type=media_type, headers=headers)
    await core.publisher.publish(found.events)
    wait = prefer_wait(prefer)
    timeout = providers.read_timeout(
        wait, settings.provider_long_poll_default_seconds, settings.provider_long_poll_max_seconds
    )
    data = await providers.await_result(core.results, read, timeout, provider_name, core.lifecycle)
    if wait is not None:
        headers["Preference-Applied"] = f"wait={timeout}"
    return Response(data, media_type=media_type, headers=headers)


@router.post(
    "/providers/{provider_id}/results",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(ProviderNotFound),
    # The body is read raw (stored verbatim), so FastAPI cannot see it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The result, in the provider's content type",
            "content": {DEFAULT_CONTENT_TYPE: {"schema": {}, "example": PROVIDER_UPLOAD}},
        }
    },
)
async def upload_provider_result(
    provider_id: uuid.UUID,
    request: Request,
    core: CoreDep,
    actor: CurrentActor,
    x_request_hash: Annotated[str, Header()],
) -> Response:
    """Upload the result of a read (raw bytes, stored verbatim) for the request hash the
    provider was sent; waiting reads answer with it."""
    provider = await providers.get_owned_for_upload(core.store, actor, provider_id)
    data = await request.body()
    events = await providers.upload(
        core.results, provider, x_request_hash, data, core.settings.provider_result_ttl_seconds
    )
    await core.publisher.publish(events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/providers/{provider_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(ProviderNotFound),
)
async def delete_provider(provider_id: uuid.UUID, uow: Uow, actor: CurrentActor) -> Response:
    """Unregister a provider (owner or superuser). Its cached results expire on their own."""
    events = await providers.delete_one(uow.session, actor, provider_id)
    await uow.commit(events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
