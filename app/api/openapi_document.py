"""The OpenAPI document as the server really answers: every error in problem+json.

FastAPI documents its 422 in its own shape (`HTTPValidationError`), which this server never
sends (api/problems.py renders every error as RFC 9457 problem+json), and nothing else.
Here each operation gets the errors it can answer:

* derived from the operation itself: a token (`security`) -> 401; a write method under
  /v1/joblib -> 403 (viewers write nothing there); a body -> 413 and 422; a parameter
  that can be invalid -> 422;
* declared by its route with `responses=errors(TaskNotFound, StaleAttempt, ...)` for what
  its service raises (404, 409, ...).

And every request and answer body gets an example (api/openapi_examples.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from app.api.openapi_examples import EXAMPLES
from app.api.problem_catalog import ProblemType, catalog
from app.api.problems import PROBLEM_JSON, STATUS_PROBLEMS
from app.errors import (
    PROBLEM_PREFIX,
    Forbidden,
    JobserverError,
    NotAuthenticated,
    PayloadTooLarge,
    UnprocessableContent,
)

Schema = dict[str, Any]
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: Schema = {
    "title": "Problem",
    "description": "An RFC 9457 problem details object (`application/problem+json`). Its "
    f"`type` names a page describing the problem: GET `{PROBLEM_PREFIX}{{slug}}`.",
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": "The problem type, a path under /v1/problems/",
        },
        "title": {"type": "string", "description": "The status's short name"},
        "status": {"type": "integer", "description": "The HTTP status"},
        "detail": {
            "description": "What happened in this case: a sentence; fastapi-users' errors "
            'give an object (`{"code": ..., "reason": ...}`) or a code',
            "anyOf": [{"type": "string"}, {"type": "object"}],
        },
        "instance": {
            "type": "string",
            "format": "uri-reference",
            "description": "RFC 9457's optional pointer to this occurrence; not sent today",
        },
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}
# Components FastAPI and fastapi-users add for error shapes this server never sends.
UNSENT_SCHEMAS = ("HTTPValidationError", "ValidationError", "ErrorModel")
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
VIEWER_READ_ONLY = "/v1/joblib/"
DERIVED: dict[int, type[JobserverError]] = {
    401: NotAuthenticated,
    403: Forbidden,
    413: PayloadTooLarge,
    422: UnprocessableContent,
}
EXAMPLE_DETAILS: dict[str, str] = {
    "not-authenticated": "Unauthorized",
    "forbidden": "Viewers may not change anything",
    "payload-too-large": "The request body exceeds the limit of 1048576 bytes",
    "unprocessable-content": "body.worker_id: Input should be a valid UUID, invalid length",
    "task-not-found": "Task '0b6f2c61-51c4-4c41-9a54-7d1f7e2b9c3a' not found",
    "worker-not-found": "Worker '8e3b1f2a-6c4d-4e5f-9a0b-1c2d3e4f5a6b' not found",
    "job-not-found": "Job '@global:modifiers:Rotate' not found",
    "stale-attempt": "Attempt 1 is not the task's current attempt (2)",
    "invalid-task-transition": "Cannot change a completed task to running",
    "conflict": "Item 0: idempotency key already used by another user's task",
}
STRING_CONSTRAINTS = frozenset({"format", "pattern", "minLength", "maxLength", "enum"})


def _problem_example(problem: ProblemType) -> Schema:
    return {
        "type": problem.uri,
        "title": problem.title,
        "status": problem.status,
        "detail": EXAMPLE_DETAILS.get(problem.slug, problem.summary),
    }


def _slug(cls: type[JobserverError]) -> str:
    return cls.problem_type().removeprefix(PROBLEM_PREFIX)


def _response(problems: Iterable[ProblemType]) -> Schema:
    listed = sorted(problems, key=lambda p: p.slug)
    lines = [f"[`{p.slug}`]({p.uri}): {p.summary}" for p in listed]
    examples = {p.slug: {"summary": p.title, "value": _problem_example(p)} for p in listed}
    return {
        "description": "\n\n".join(lines),
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "examples": examples}},
    }


def errors(*classes: type[JobserverError]) -> dict[int | str, Schema]:
    """`responses=` for a route: the problems its service raises, grouped by status."""
    known = catalog()
    grouped: dict[int, list[ProblemType]] = defaultdict(list)
    for cls in classes:
        grouped[cls.status].append(known[_slug(cls)])
    return {status: _response(found) for status, found in grouped.items()}


def _can_be_invalid(parameter: Schema) -> bool:
    """Only a value that is checked can fail: a plain string path segment cannot."""
    if parameter.get("required") and parameter.get("in") != "path":
        return True
    schema: Schema = parameter.get("schema", {})
    variants = [v for v in schema.get("anyOf", [schema]) if v.get("type") != "null"]
    return any(v.get("type") != "string" or STRING_CONSTRAINTS & v.keys() for v in variants)


def derived_statuses(path: str, method: str, operation: Schema) -> set[int]:
    statuses: set[int] = set()
    if operation.get("security"):
        statuses.add(401)
        if method in WRITE_METHODS and path.startswith(VIEWER_READ_ONLY):
            statuses.add(403)
    if "requestBody" in operation:
        statuses |= {413, 422}
    if any(_can_be_invalid(p) for p in operation.get("parameters", [])):
        statuses.add(422)
    return statuses


def _generic(status: int) -> ProblemType:
    slug, _ = STATUS_PROBLEMS.get(status, STATUS_PROBLEMS[500])
    return catalog()[slug]


def _detail(example: Schema) -> Any:
    value = example.get("value")
    return value.get("detail") if isinstance(value, dict) else value


def _as_problem(status: int, documented: Schema) -> Schema:
    """A response FastAPI or fastapi-users documented in their shape, in ours; their
    examples (`{"detail": ...}`) become the problem bodies they are sent as."""
    content = documented.get("content", {})
    if PROBLEM_JSON in content:
        return documented
    generic = _generic(status)
    examples = {
        name: {
            "summary": example.get("summary", name),
            "value": {**_problem_example(generic), "detail": _detail(example)},
        }
        for media in content.values()
        for name, example in media.get("examples", {}).items()
    }
    if not examples:
        examples = {generic.slug: {"summary": generic.title, "value": _problem_example(generic)}}
    return {
        "description": documented.get("description") or generic.title,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "examples": examples}},
    }


def _is_fastapi_default(response: Schema) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _document_errors(path: str, method: str, operation: Schema) -> None:
    responses: Schema = operation.setdefault("responses", {})
    derived = derived_statuses(path, method, operation)
    if 422 not in derived and _is_fastapi_default(responses.get("422", {})):
        del responses["422"]  # FastAPI adds it for any parameter, even one that cannot fail
    for code, documented in list(responses.items()):
        if code[0] in "45":
            responses[code] = _as_problem(int(code), documented)
    known = catalog()
    for status in derived:
        generic = known[_slug(DERIVED[status])]
        documented = responses.get(str(status))
        if documented is None:
            responses[str(status)] = _response([generic])
            continue
        examples = documented["content"][PROBLEM_JSON].setdefault("examples", {})
        if generic.slug not in examples:
            examples[generic.slug] = {"summary": generic.title, "value": _problem_example(generic)}
    operation["responses"] = dict(sorted(responses.items()))


def _example_for(schema: Schema, components: Schema) -> Any:
    variants = [v for v in schema.get("anyOf", []) if v.get("type") != "null"]
    if len(variants) == 1:  # an optional body
        return _example_for(variants[0], components)
    ref = schema.get("$ref")
    if ref is None and schema.get("type") == "array":
        item = _example_for(schema.get("items", {}), components)
        return None if item is None else [item]
    if ref is None:
        return None
    name = ref.rsplit("/", 1)[-1]
    own = components.get(name, {}).get("examples")
    return own[0] if own else EXAMPLES.get(name)


def _add_examples(operation: Schema, components: Schema) -> None:
    bodies = [operation.get("requestBody", {})]
    bodies += [r for code, r in operation.get("responses", {}).items() if code.startswith("2")]
    for body in bodies:
        for media in body.get("content", {}).values():
            if "example" in media or "examples" in media:
                continue
            example = _example_for(media.get("schema", {}), components)
            if example is not None:
                media["example"] = example


def annotate(document: Schema) -> Schema:
    """Rewrite FastAPI's document in place (idempotent) and return it."""
    components: Schema = document.setdefault("components", {}).setdefault("schemas", {})
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            _document_errors(path, method, operation)
            _add_examples(operation, components)
    for name in UNSENT_SCHEMAS:
        components.pop(name, None)
    components["Problem"] = PROBLEM_SCHEMA
    return document


def install(app: FastAPI) -> None:
    """app.openapi() (and so /openapi.json, /docs) returns the annotated document; FastAPI
    caches it, so the rewrite runs once."""
    generate = app.openapi
    annotated: list[int] = []

    def openapi() -> Schema:
        document = generate()
        if id(document) not in annotated:
            annotate(document)
            annotated[:] = [id(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
