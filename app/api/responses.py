"""JSON answers serialised once, by orjson, straight from the service's values.

The hot routes return these instead of a pydantic model: FastAPI would validate the model
again and serialise it through its generic encoder. Their `response_model` still documents
the shape in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from app.errors import JobserverError

# Times as RFC 3339 with a `Z`, as pydantic writes them (REST.md: timezone-aware UTC).
OPTIONS = orjson.OPT_UTC_Z


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=OPTIONS)


def problem_body(error: JobserverError) -> dict[str, Any]:
    """The problem+json members of a domain error (api/problems.py renders whole answers)."""
    return {
        "type": error.problem_type(),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extensions(),
    }
