"""Task results (beyond the contract): what a worker may report with `completed`."""

from __future__ import annotations

from typing import Any

import orjson

from app.errors import PayloadTooLarge, UnprocessableContent
from app.services.states import TaskStatus


def check_result(status: TaskStatus, result: Any, max_bytes: int) -> None:
    """A result rides only on `completed` and stays within `max_bytes` of JSON."""
    if result is None:
        return
    if status != TaskStatus.COMPLETED:
        raise UnprocessableContent("result is accepted only with status 'completed'")
    size = len(orjson.dumps(result))
    if size > max_bytes:
        raise PayloadTooLarge(f"Result is {size} bytes; the limit is {max_bytes}")
