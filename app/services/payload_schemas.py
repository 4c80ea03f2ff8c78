"""Payloads checked against their job's JSON Schema (Draft 2020-12, by `jsonschema`): the
schema's own check when a job asks for validation, and the payloads of a submit. Which
jobs ask, and the submit statement's guard, live in tasks/submit.py."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from app.errors import InvalidPayload, UnusableSchema

# A registry without a `retrieve`: a `$ref` outside the schema is refused, never fetched
# (jsonschema's default would fetch remote references from the server's network).
NO_REMOTE: Registry[Any] = Registry()
# What a 422 lists: enough to fix a payload, bounded whatever the payload's size.
MAX_LISTED_ERRORS = 50
MAX_MESSAGE_CHARS = 300
# Compiled validators kept, by schema; and jobs remembered to validate, by name.
CACHED_VALIDATORS = 256
KNOWN_JOBS = 1024


@dataclass(frozen=True)
class JobSchema:
    """A schema payloads are checked against, compiled once. `text` is its canonical JSON,
    what the submit statement compares with the job's stored schema."""

    schema: dict[str, Any]
    text: str
    validator: Draft202012Validator

    def check(self, payloads: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Refuse (InvalidPayload) unless every payload matches; each comes with the JSON
        Pointer of its place in the request body (`/payload`, `/items/3/payload`)."""
        problems = [
            {"path": where + pointer(error.absolute_path), "message": _short(error.message)}
            for where, payload in payloads
            for error in sorted(self.validator.iter_errors(payload), key=_place)
        ]
        if problems:
            raise invalid(problems)


def canonical(schema: dict[str, Any]) -> str:
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()


def compiled(schema: dict[str, Any]) -> JobSchema:
    """The schema with its validator, shared by every job with the same schema."""
    return _compiled(canonical(schema))


@functools.lru_cache(maxsize=CACHED_VALIDATORS)
def _compiled(text: str) -> JobSchema:
    schema = orjson.loads(text)
    return JobSchema(schema, text, Draft202012Validator(schema, registry=NO_REMOTE))


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse (UnusableSchema) a schema payloads could not be checked against: not Draft
    2020-12, or a `$ref` that does not resolve inside it."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = pointer(error.absolute_path) or "/"
        raise UnusableSchema(
            f"The job's schema is no valid JSON Schema at {where}: {_short(error.message)}"
        ) from None
    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    resolver = NO_REMOTE.resolver_with_root(resource)
    for ref in sorted(set(_refs(schema))):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise UnusableSchema(
                f"The job's schema names $ref {ref!r}, which does not resolve within it"
            ) from None


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def invalid(problems: list[dict[str, str]]) -> InvalidPayload:
    listed = problems[:MAX_LISTED_ERRORS]
    text = "; ".join(f"{p['path']}: {p['message']}" for p in listed)
    more = len(problems) - len(listed)
    if more:
        text += f" (and {more} more)"
    return InvalidPayload(f"The payload does not match the job's schema: {text}", listed)


def pointer(path: Sequence[str | int]) -> str:
    """A JSON Pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _place(error: ValidationError) -> str:
    return pointer(error.absolute_path)


def _short(message: str) -> str:
    # jsonschema quotes the offending value: a long string would fill the answer.
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 3] + "..."


class KnownSchemas:
    """Per process, by job full name: the schemas of jobs seen to validate their payloads.
    A hint that saves a round trip, never trusted: the submit statement stores payloads
    only when they were checked against the job's own current schema (or the job does
    not validate), and otherwise answers with that schema."""

    def __init__(self, size: int = KNOWN_JOBS) -> None:
        self._size = size
        self._jobs: OrderedDict[str, JobSchema] = OrderedDict()

    def get(self, job_name: str) -> JobSchema | None:
        found = self._jobs.get(job_name)
        if found is not None:
            self._jobs.move_to_end(job_name)
        return found

    def learn(self, job_name: str, schema: JobSchema | None) -> None:
        """What a submit found: the job validates against `schema`, or (None) not at all."""
        if schema is None:
            self._jobs.pop(job_name, None)
            return
        self._jobs[job_name] = schema
        self._jobs.move_to_end(job_name)
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)
