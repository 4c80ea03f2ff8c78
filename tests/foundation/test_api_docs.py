"""The API documentation (issue 20): Swagger UI and ReDoc from the server's own files, `/`
to the dashboard, and an OpenAPI document with examples and the problem+json errors the
server really sends."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from app.api.docs import STATIC_DIR
from app.api.problem_catalog import catalog
from app.main import create_app
from tests.conftest import make_settings
from tests.foundation.helpers import client_for

CONTRACT = "/v1/joblib/"
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
ASSET = re.compile(r"""(?:src|href|spec-url|url)\s*[=:]\s*['"]([^'"]+)['"]""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}

CHECKS = frozenset({"format", "pattern", "minLength", "maxLength", "enum"})
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def docs_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app without its lifespan: documentation touches no database."""
    data = tmp_path_factory.mktemp("docs")
    return create_app(make_settings(f"sqlite+aiosqlite:///{data / 'db.sqlite'}", data))


@pytest.fixture
async def http(docs_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(docs_app) as client:
        yield client


@pytest.fixture(scope="module")
def document(docs_app: FastAPI) -> dict[str, Any]:
    return docs_app.openapi()


def operations(document: dict[str, Any], prefix: str = "") -> Iterator[Operation]:
    for path, item in document["paths"].items():
        if path.startswith(prefix):
            for method, operation in item.items():
                yield method.upper(), path, operation


def is_plain_string(parameter: dict[str, Any]) -> bool:
    """A string value nothing checks: it cannot fail validation."""
    schema = parameter["schema"]
    variants = [v for v in schema.get("anyOf", [schema]) if v.get("type") != "null"]
    unchecked = all(v.get("type") == "string" and not CHECKS & v.keys() for v in variants)
    return unchecked and (parameter["in"] == "path" or not parameter.get("required"))


def referenced_assets(page: str) -> list[str]:
    return [url for url in ASSET.findall(page) if url != "/openapi.json"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_assets_the_server_serves(
    http: httpx.AsyncClient, page: str
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assets = referenced_assets(response.text)
    assert assets, "the page names its script"
    assert "/openapi.json" in response.text
    for url in assets:
        assert url.startswith("/"), f"{url} is not same-origin"
        assert not url.startswith("//"), f"{url} is not same-origin"
        asset = await http.get(url)
        assert asset.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])


@pytest.mark.parametrize("page", ["/docs", "/docs/oauth2-redirect", "/redoc"])
async def test_docs_pages_allow_nothing_from_elsewhere(http: httpx.AsyncClient, page: str) -> None:
    policy = (await http.get(page)).headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "http" not in policy
    assert "frame-ancestors 'none'" in policy


async def test_docs_and_the_document_need_no_token(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        assert (await http.get(path)).status_code == 200, path


def test_vendored_assets_keep_their_licenses() -> None:
    for package in ("swagger-ui", "redoc"):
        assert (STATIC_DIR / package / "LICENSE").is_file()
    assert "swagger-ui-dist" in (STATIC_DIR / "VERSIONS").read_text()


async def test_root_redirects_to_the_dashboard(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"


def test_every_contract_request_body_has_an_example(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(document, CONTRACT):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            assert "example" in media or "examples" in media, f"{method} {path} {media_type}"
            checked += 1
    assert checked >= 14


def test_every_contract_success_answer_has_an_example(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(document, CONTRACT):
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            for media in response.get("content", {}).values():
                assert "example" in media or "examples" in media, f"{method} {path} {code}"
                checked += 1
    assert checked >= 35


def test_no_operation_documents_fastapis_validation_error(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)


def test_every_error_answer_is_documented_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if code[0] in "45":
                content = response["content"]
                assert list(content) == [PROBLEM_JSON], f"{method} {path} {code}"
                assert content[PROBLEM_JSON]["schema"] == {"$ref": PROBLEM_REF}
                assert content[PROBLEM_JSON]["examples"], f"{method} {path} {code}"


def test_every_contract_operation_documents_401(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document, CONTRACT):
        assert "401" in operation["responses"], f"{method} {path}"


def test_422_is_documented_where_a_body_or_a_checked_parameter_can_fail(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document, CONTRACT):
        checked = [p for p in operation.get("parameters", []) if not is_plain_string(p)]
        if "requestBody" in operation or checked:
            assert "422" in operation["responses"], f"{method} {path}"
        if "requestBody" in operation:
            assert "413" in operation["responses"], f"{method} {path}"


def test_422_is_not_documented_where_nothing_can_fail(document: dict[str, Any]) -> None:
    # Room, category and name are plain strings: this route cannot answer 422.
    path = "/v1/joblib/rooms/{room_id}/job-definitions/{category}/{name}"
    assert "422" not in document["paths"][path]["delete"]["responses"]


def test_contract_writes_document_403_for_viewers(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document, CONTRACT):
        if method != "GET":
            assert "403" in operation["responses"], f"{method} {path}"


def test_routes_document_the_problems_their_services_raise(document: dict[str, Any]) -> None:
    patch = document["paths"]["/v1/joblib/tasks/{task_id}"]["patch"]["responses"]
    assert set(patch["404"]["content"][PROBLEM_JSON]["examples"]) == {"task-not-found"}
    assert set(patch["409"]["content"][PROBLEM_JSON]["examples"]) == {
        "invalid-task-transition",
        "stale-attempt",
    }
    assert "/v1/problems/stale-attempt" in patch["409"]["description"]


def test_documented_problem_types_all_exist(document: dict[str, Any]) -> None:
    known = {problem.uri for problem in catalog().values()}
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            for example in response.get("content", {}).get(PROBLEM_JSON, {}).get("examples", {}):
                value = response["content"][PROBLEM_JSON]["examples"][example]["value"]
                assert value["type"] in known, f"{method} {path} {code}: {value['type']}"
                assert value["status"] == int(code)


def test_the_problem_schema_has_the_rfc_9457_members(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["additionalProperties"] is True


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def examples_of(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    return found + [example["value"] for example in media.get("examples", {}).values()]


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += list(operation["responses"].items())
        for code, body in bodies:
            for media in body.get("content", {}).values():
                # The schema alone cannot resolve its $refs: give it the components.
                schema = {**media.get("schema", {}), "components": document["components"]}
                validator = Draft202012Validator(schema, format_checker=FormatChecker())
                for example in examples_of(media):
                    errors = [e.message for e in validator.iter_errors(example)]
                    assert errors == [], f"{method} {path} {code}: {errors}"
                    checked += 1
    assert checked >= 100
