"""Every problem `type` the server answers with, described: the domain errors of
app/errors.py (their docstrings are the descriptions) and the generic ones FastAPI and
fastapi-users raise (api/problems.py). The problem pages and the OpenAPI document read it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from app.api.problems import STATUS_PROBLEMS
from app.errors import PROBLEM_PREFIX, JobserverError

# What a client can do about an answer of each status, unless its type says more below.
ADVICE_BY_STATUS: dict[int, str] = {
    400: "Correct the request as the detail says; repeating it unchanged fails again.",
    401: "Send `Authorization: Bearer <token>` with a valid, unexpired token of an active "
    "account (POST /v1/auth/jwt/login, or `jobserver token EMAIL`). After a logout, a "
    "password or role change, sign in again.",
    403: "The account's role or ownership does not allow this: viewers write nothing, "
    "@global and @internal need an admin, a worker's tasks and providers belong to its "
    "owner. Use an account that may, or ask an admin.",
    404: "Check the id or name; it may never have existed, be deleted, or not be readable "
    "by this account.",
    405: "Use one of the methods the route allows (see /docs).",
    409: "Read the resource again and decide from its current state; repeating the same "
    "request gives the same answer.",
    413: "Send less: split a bulk submit, or shorten the body or result below the limit "
    "the detail names (JOBSERVER_MAX_BODY_BYTES and related settings).",
    422: "Fix the fields the detail lists (`location: message`, separated by `;`).",
    429: "Wait the seconds of the Retry-After header, then try again.",
    500: "A bug or an outage of the server; the request may be retried. The server's log "
    "has the traceback (its X-Request-ID names the request).",
    503: "The server cannot do this now; retry later, and check GET /ready.",
    504: "Retry after the Retry-After header's seconds; the answer may be ready by then.",
}
ADVICE_BY_TYPE: dict[str, str] = {
    "stale-attempt": "The task moved on (retried, released, or claimed by another worker): "
    "drop this attempt's work; its reports are no longer accepted.",
    "invalid-task-transition": "Read the task: it is already in a state this change does "
    "not leave from (e.g. completed, or cancelled while it ran).",
    "schema-conflict": "Register the job with the schema it already has, or under a new "
    "name; a running job's schema never changes.",
    "invalid-category": "Use one of the categories the server allows "
    "(JOBSERVER_ALLOWED_CATEGORIES; `jobserver config` shows them).",
    "invalid-room-id": "Choose a room id without '@' or ':'.",
    "unknown-parent": "Name only existing tasks you may read, or indexes of earlier items "
    "of the same bulk submit.",
    "parent-ended": "Submit the parent again first (or retry it), then the dependant.",
    "internal-job-not-pausable": "Pause the jobs of workers; @internal jobs run on the "
    "server itself.",
    "internal-job-not-configured": "Configure the server's @internal executor "
    "(JOBSERVER_BROKER_URL), or submit to a job that workers serve.",
    "provider-timeout": "The provider did not upload in time; read again after "
    "Retry-After, or wait longer with `Prefer: wait=N`.",
    "not-ready": "The database is unreachable; the server answers again once it is back.",
}
# The generic problems have no class to take a docstring from.
GENERIC_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed in a way validation could not catch.",
    401: "Missing, invalid or expired token, or an inactive user.",
    403: "The caller is authenticated but may not do this.",
    404: "No such route, or the addressed resource does not exist.",
    405: "The route does not answer this method.",
    409: "The request conflicts with the current state of the resource.",
    413: "The body exceeds the configured size limit.",
    422: "The request body, path or query parameters failed validation.",
    429: "Too many requests; try again after Retry-After.",
    500: "The server failed to handle the request.",
    503: "The server cannot serve the request now.",
}


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    title: str
    status: int
    description: str

    @property
    def uri(self) -> str:
        return PROBLEM_PREFIX + self.slug

    @property
    def summary(self) -> str:
        """The description's first paragraph, on one line."""
        return " ".join(self.description.split("\n\n")[0].split())

    @property
    def advice(self) -> str:
        return ADVICE_BY_TYPE.get(self.slug) or ADVICE_BY_STATUS.get(self.status, "")


def _error_classes() -> list[type[JobserverError]]:
    """Every subclass, parents before children (so a subclass that reuses its parent's
    type, like the body limit's, never replaces the parent's description)."""
    found: list[type[JobserverError]] = []
    pending = list(JobserverError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def catalog() -> dict[str, ProblemType]:
    """By slug. Built on each call: error classes defined in modules imported later (the
    body limit's) belong to it too, and it is small."""
    types: dict[str, ProblemType] = {}
    for cls in _error_classes():
        slug = cls.problem_type().removeprefix(PROBLEM_PREFIX)
        description = inspect.getdoc(cls) or cls.title
        types.setdefault(slug, ProblemType(slug, cls.title, cls.status, description))
    for status, (slug, title) in STATUS_PROBLEMS.items():
        description = GENERIC_DESCRIPTIONS.get(status, title)
        types.setdefault(slug, ProblemType(slug, title, status, description))
    return dict(sorted(types.items(), key=lambda item: (item[1].status, item[0])))
