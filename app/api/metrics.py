"""GET /metrics for Prometheus: readable with JOBSERVER_METRICS_TOKEN or an admin's token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from app import metrics
from app.api.deps import CoreDep, current_actor, oauth2
from app.settings import Settings

router = APIRouter(tags=["observability"])


def _is_metrics_token(settings: Settings, token: str | None) -> bool:
    if token is None or settings.metrics_token is None:
        return False
    return hmac.compare_digest(token.encode(), settings.metrics_token.get_secret_value().encode())


@router.get("/metrics", response_class=Response)
async def scrape(core: CoreDep, token: Annotated[str | None, Depends(oauth2)]) -> Response:
    """Prometheus exposition: task counters and latencies, HTTP durations, Socket.IO
    connections, and queue depth and live workers read from the database (cached 1 s)."""
    if not _is_metrics_token(core.settings, token):
        actor = await current_actor(core, token)
        actor.require_admin()
    assert core.scrape_cache is not None
    snapshot = await core.scrape_cache.current()
    return Response(metrics.exposition(snapshot), media_type=metrics.CONTENT_TYPE)
