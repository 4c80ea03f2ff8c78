"""What an @internal extension is, and where the server finds them (setting, entry points).

zndraw-joblib's `Extension` classes are accepted as they are; the server never imports it.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel

from app.errors import StartupRefused
from app.services.rooms import INTERNAL_ROOM
from app.settings import Settings

ENTRY_POINT_GROUP = "jobserver.extensions"
EXAMPLES = ("app.internal.examples:Echo", "app.internal.examples:Sleep")


class Extension(BaseModel):
    """Base for server-side extensions: the fields are the job's parameters (its schema),
    `run` does the work. Any pydantic model with `category` and `run` is accepted too."""

    category: ClassVar[str]

    def run(self, vis: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class RunContext:
    """Passed as `vis` to `run`: where the task came from."""

    task_id: uuid.UUID
    room_id: str
    job_name: str


def category_of(cls: type[BaseModel]) -> str:
    category = getattr(cls, "category", None)
    return str(getattr(category, "value", category))


def full_name(cls: type[BaseModel]) -> str:
    return f"{INTERNAL_ROOM}:{category_of(cls)}:{cls.__name__}"


def configured_paths(settings: Settings) -> list[str]:
    """Nothing runs on the server's side unless asked for: the examples (a blocking Sleep
    anyone may submit) only with JOBSERVER_EXAMPLE_EXTENSIONS."""
    listed = settings.internal_extensions or ""
    paths = [part.strip() for part in listed.split(",") if part.strip()]
    return [*paths, *EXAMPLES] if settings.example_extensions else paths


def _import(path: str) -> object:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise StartupRefused(f"internal extension '{path}' is not of the form pkg.module:Class")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise StartupRefused(f"cannot load internal extension '{path}': {exc}") from exc


def _check(found: object, where: str, allowed: Sequence[str]) -> type[BaseModel]:
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise StartupRefused(f"internal extension {where} is not a pydantic model class")
    if getattr(found, "category", None) is None or not callable(getattr(found, "run", None)):
        raise StartupRefused(f"internal extension {where} needs a `category` and a `run` method")
    if category_of(found) not in allowed:
        raise StartupRefused(
            f"internal extension {where} has category '{category_of(found)}', "
            f"not one of {list(allowed)}"
        )
    return found


def load(settings: Settings) -> list[type[BaseModel]]:
    """The configured extensions plus those of the `jobserver.extensions` entry points.
    Raises StartupRefused on anything that cannot be loaded, so a typo stops the start."""
    found: dict[str, type[BaseModel]] = {}
    candidates: Iterable[tuple[str, object]] = [
        *((path, _import(path)) for path in configured_paths(settings)),
        *((ep.value, ep.load()) for ep in entry_points(group=ENTRY_POINT_GROUP)),
    ]
    for where, obj in candidates:
        cls = _check(obj, where, settings.allowed_categories)
        found.setdefault(full_name(cls), cls)
    return list(found.values())
