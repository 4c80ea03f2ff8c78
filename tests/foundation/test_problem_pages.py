"""Problem `type` URIs resolve (issue 20): each answers a page naming the problem, its
status and what to do; no token needed (they document the code, not the server's data)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.api.body_limit import BodyTooLarge
from app.api.problems import STATUS_PROBLEMS
from app.errors import PROBLEM_PREFIX, JobserverError
from app.main import create_app
from tests.conftest import make_settings
from tests.foundation.helpers import PROBLEM_JSON, client_for


def every_error_class() -> list[type[JobserverError]]:
    found: list[type[JobserverError]] = []
    pending: list[type[JobserverError]] = [JobserverError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not JobserverError:
            found.append(cls)
    return found


def every_problem_type() -> set[str]:
    classes = {cls.problem_type() for cls in every_error_class()}
    return classes | {PROBLEM_PREFIX + slug for slug, _ in STATUS_PROBLEMS.values()}


@pytest.fixture(scope="module")
def docs_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app without its lifespan: these pages touch no database."""
    data = tmp_path_factory.mktemp("problems")
    return create_app(make_settings(f"sqlite+aiosqlite:///{data / 'db.sqlite'}", data))


@pytest.fixture
async def http(docs_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(docs_app) as client:
        yield client


async def test_every_problem_type_answers_a_page_naming_it(http: httpx.AsyncClient) -> None:
    types = every_problem_type()
    assert len(types) >= 30
    for uri in sorted(types):
        response = await http.get(uri)
        assert response.status_code == 200, uri
        assert response.headers["content-type"].startswith("text/html")
        slug = uri.removeprefix(PROBLEM_PREFIX)
        assert f"<code>{slug}</code>" in response.text, uri


async def test_a_problem_page_says_status_meaning_and_what_to_do(
    http: httpx.AsyncClient,
) -> None:
    page = (await http.get("/v1/problems/stale-attempt")).text
    assert "HTTP status <strong>409</strong>" in page
    assert "no longer current" in page  # the class's docstring
    assert "What to do" in page
    assert "drop this attempt" in page


async def test_a_subclass_sharing_its_parents_type_keeps_the_parents_page(
    http: httpx.AsyncClient,
) -> None:
    assert BodyTooLarge.problem_type() == "/v1/problems/payload-too-large"
    page = (await http.get(BodyTooLarge.problem_type())).text
    assert "The body exceeds the configured size limit." in page


async def test_the_index_lists_every_problem_type(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/problems")
    assert response.status_code == 200
    for uri in every_problem_type():
        assert f'href="{uri}"' in response.text, uri


async def test_an_unknown_problem_type_is_a_404_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/problems/no-such-problem")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "/v1/problems/not-found"


async def test_problem_pages_load_and_run_nothing(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/problems/forbidden")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text
