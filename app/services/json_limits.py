"""What a client may store as JSON or text: a size in bytes, a nesting depth, and valid
Unicode (a lone UTF-16 surrogate can be parsed but never written back, so it would break
every later read of the row). Too large: 413; too deep or not encodable: 422."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from app.errors import PayloadTooLarge, UnprocessableContent

KIB = 1024
MIB = 1024 * KIB

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets as +1, closing ones as -1 (signed bytes).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


@dataclass(frozen=True)
class JsonLimits:
    """The JOBSERVER_MAX_* settings of what a client stores (Settings.json_limits)."""

    payload_bytes: int = MIB
    result_bytes: int = MIB
    error_bytes: int = 64 * KIB
    depth: int = 64
    bulk_items: int = 1000

    def payload(self, value: Any) -> bytes:
        return encode(value, "payload", self.payload_bytes, self.depth)

    def result(self, value: Any) -> bytes:
        return encode(value, "result", self.result_bytes, self.depth)

    def schema(self, value: Any) -> None:
        # A schema is no bigger than a payload has reason to be.
        encode(value, "schema", self.payload_bytes, self.depth)

    def error(self, text: str | None) -> None:
        check_text(text, "error text", self.error_bytes)


DEFAULT_LIMITS = JsonLimits()


def encode(value: Any, what: str, max_bytes: int, max_depth: int) -> bytes:
    """`value` as JSON bytes, or the problem that refuses it."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as error:
        if "recursion" in str(error).lower():
            raise UnprocessableContent(f"The {what} nests deeper than {max_depth} levels") from None
        raise UnprocessableContent(f"The {what} cannot be stored as JSON: {error}") from None
    if len(encoded) > max_bytes:
        raise PayloadTooLarge(
            f"{what.capitalize()} is {len(encoded)} bytes; the limit is {max_bytes}"
        )
    if nests_deeper(encoded, max_depth):
        raise UnprocessableContent(f"The {what} nests deeper than {max_depth} levels")
    return encoded


def nests_deeper(encoded: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` deep, by byte
    operations rather than a walk in Python (about 40 ms for a megabyte of brackets).
    Most documents have fewer containers than the limit and stop at the count."""
    if encoded.count(b"[") + encoded.count(b"{") <= limit:
        return False
    # Without escaped backslashes and then escaped quotes, every `"` left delimits a
    # string, and brackets inside strings nest nothing: keep every other piece.
    plain = encoded.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[::2])
    steps = array("b", outside.translate(_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > limit


def check_text(text: str | None, what: str, max_bytes: int) -> None:
    if text is None:
        return
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise UnprocessableContent(f"The {what} is not valid Unicode text") from None
    if size > max_bytes:
        raise PayloadTooLarge(f"{what.capitalize()} is {size} bytes; the limit is {max_bytes}")
