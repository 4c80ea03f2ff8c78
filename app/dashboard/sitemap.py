"""The dashboard's pages as the router knows them (every GET route under /dashboard that
answers HTML), for the tests that visit them all and the screenshot script: a new page is
covered the moment it is routed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.dashboard.routes import PREFIX

PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


class MissingExample(LookupError):
    """A page's path names a parameter the caller gave no example value for."""


def _api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        # FastAPI includes routers lazily: the app's list holds the included router whole.
        elif (inner := getattr(route, "original_router", None)) is not None:
            context = getattr(route, "include_context", None)
            yield from _api_routes(inner.routes, prefix + getattr(context, "prefix", ""))


def pages(app: FastAPI) -> list[str]:
    """The page routes' path templates, in routing order."""
    return [
        path
        for path, route in _api_routes(app.routes)
        if path.startswith(PREFIX)
        and "GET" in (route.methods or ())
        and route.response_class is HTMLResponse
    ]


def fill(path: str, examples: dict[str, str]) -> str:
    """The path with each `{parameter}` replaced by its (quoted) example value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in examples:
            raise MissingExample(f"no example for {{{name}}} in {path}: add one")
        return quote(examples[name], safe="")

    return PARAMETER.sub(value, path)
