"""The job the Run form's tests run: `lab:modifiers:Greet`, whose schema has a field of
each kind the form draws, one it cannot draw (an anyOf), and a nested object by $ref."""

from __future__ import annotations

from typing import Any

JOB = "lab:modifiers:Greet"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "description": "Who is greeted"},
        "count": {"type": "integer", "minimum": 1, "default": 2},
        "ratio": {"type": "number"},
        "loud": {"type": "boolean", "default": False},
        "mode": {"enum": ["fast", "slow"], "default": "fast"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "size": {"anyOf": [{"$ref": "#/$defs/Size"}, {"type": "null"}]},
        "extra": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["name", "count"],
    "$defs": {
        "Size": {
            "type": "object",
            "properties": {"w": {"type": "integer"}, "h": {"type": "integer"}},
            "required": ["w"],
        }
    },
}
# What a worker registers: the job in room `lab`, its payloads checked against SCHEMA.
REGISTRATION = {
    "category": "modifiers",
    "name": "Greet",
    "schema": SCHEMA,
    "validate_payload": True,
}
