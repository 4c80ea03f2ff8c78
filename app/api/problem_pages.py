"""A page per problem `type` (`/v1/problems/{slug}`), so the links in problem+json answers
resolve to what the problem means and what to do about it; `/v1/problems` lists them all.

No token needed: they are documentation generated from the code (app/errors.py), the same
for every caller, and name nothing stored on the server. A client that just got a 401 must
be able to read what it means.
"""

from __future__ import annotations

import html
import re

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

from app.api.problem_catalog import ProblemType, catalog
from app.errors import PROBLEM_PREFIX, NotFound

INDEX_PATH = PROBLEM_PREFIX.rstrip("/")
# Plain HTML: nothing to load, nothing to run.
HEADERS = {"Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'"}
CODE = re.compile(r"`([^`]+)`")

router = APIRouter(include_in_schema=False)


def _text(value: str) -> str:
    """Escaped, with `code` spans kept as code."""
    return CODE.sub(r"<code>\1</code>", html.escape(value))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def _problem_html(problem: ProblemType) -> str:
    example = (
        "{\n"
        f'  "type": "{problem.uri}",\n'
        f'  "title": "{problem.title}",\n'
        f'  "status": {problem.status},\n'
        '  "detail": "..."\n}'
    )
    body = (
        f"<h1>{html.escape(problem.title)}: <code>{html.escape(problem.slug)}</code></h1>\n"
        f"<p>HTTP status <strong>{problem.status}</strong>. Problem type "
        f"<code>{html.escape(problem.uri)}</code>.</p>\n"
        f"<h2>What it means</h2>\n<p>{_text(problem.description)}</p>\n"
        f"<h2>What to do</h2>\n<p>{_text(problem.advice)}</p>\n"
        "<h2>The answer</h2>\n<p>An RFC 9457 <code>application/problem+json</code> body; "
        "<code>detail</code> says what happened in this case.</p>\n"
        f"<pre>{html.escape(example)}</pre>\n"
        f'<p><a href="{INDEX_PATH}">All problem types</a> · '
        '<a href="/docs">API documentation</a></p>'
    )
    return _page(f"{problem.title} ({problem.slug})", body)


def _index_html(problems: list[ProblemType]) -> str:
    rows = "\n".join(
        f'<tr><td>{p.status}</td><td><a href="{html.escape(p.uri)}">{html.escape(p.slug)}</a>'
        f"</td><td>{_text(p.description)}</td></tr>"
        for p in problems
    )
    body = (
        "<h1>Problem types</h1>\n<p>Every error of this server is an RFC 9457 "
        "<code>application/problem+json</code> answer whose <code>type</code> is one of "
        "these.</p>\n<table>\n<tr><th>Status</th><th>Type</th><th>Meaning</th></tr>\n"
        f"{rows}\n</table>"
    )
    return _page("Problem types", body)


@router.get(INDEX_PATH)
async def problem_index() -> HTMLResponse:
    return HTMLResponse(_index_html(list(catalog().values())), headers=HEADERS)


@router.get(PROBLEM_PREFIX + "{slug}")
async def problem_page(slug: str) -> HTMLResponse:
    problem = catalog().get(slug)
    if problem is None:
        raise NotFound(f"No problem type '{slug}'")
    return HTMLResponse(_problem_html(problem), headers=HEADERS)


def include(app: FastAPI) -> None:
    app.include_router(router)
