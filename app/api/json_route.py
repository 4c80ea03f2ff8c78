"""Request bodies parsed by orjson: strict JSON, and faster than the standard library.

Strict matters: the standard parser turns `"\\ud800"` (a lone UTF-16 surrogate) into a
string that no encoder can write back, so it failed later, when stored or read (500, and
a task list that no longer read). orjson refuses it, invalid UTF-8, `NaN` and integers
beyond 64 bits, and nesting beyond 1024, as a JSONDecodeError, which FastAPI answers with
422. Every router of app/api that takes a JSON body uses this route class."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


def make_strict(router: APIRouter) -> APIRouter:
    """The strict parser for a router built elsewhere (fastapi-users' routers choose their
    own route class). FastAPI builds a route's handler from its class each time the route
    is included, so the class itself is swapped (StrictJsonRoute adds no state)."""
    for route in router.routes:
        if type(route) is APIRoute:
            route.__class__ = StrictJsonRoute
    return router
