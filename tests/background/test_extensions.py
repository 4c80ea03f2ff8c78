"""Which extensions a server loads (§2, registration): setting, defaults, refusals."""

from __future__ import annotations

import pytest

from app.errors import StartupRefused
from app.internal import extensions
from app.settings import Settings


def settings_with(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def names(settings: Settings) -> set[str]:
    return {extensions.full_name(cls) for cls in extensions.load(settings)}


EXAMPLES = {"@internal:modifiers:Echo", "@internal:modifiers:Sleep"}


def test_no_extensions_by_default_without_redis() -> None:
    assert names(settings_with()) == set()


def test_no_extensions_by_default_with_redis() -> None:
    assert names(settings_with(redis_url="redis://127.0.0.1:6379/15")) == set()


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:6379/15"])
def test_examples_are_loaded_when_opted_in(redis_url: str | None) -> None:
    assert names(settings_with(example_extensions=True, redis_url=redis_url)) == EXAMPLES


def test_examples_come_on_top_of_the_configured_extensions() -> None:
    loaded = names(
        settings_with(
            example_extensions=True, internal_extensions="tests.background.extensions:Measure"
        )
    )
    assert loaded == EXAMPLES | {"@internal:analysis:Measure"}


def test_zndraw_joblib_extension_is_accepted_with_its_enum_category() -> None:
    loaded = names(settings_with(internal_extensions="tests.background.extensions:Measure"))
    assert loaded == {"@internal:analysis:Measure"}


def test_unimportable_extension_refuses_start() -> None:
    with pytest.raises(StartupRefused, match="cannot load"):
        extensions.load(settings_with(internal_extensions="tests.background.extensions:Nope"))


def test_extension_outside_allowed_categories_refuses_start() -> None:
    with pytest.raises(StartupRefused, match="filesystem"):
        extensions.load(settings_with(internal_extensions="tests.background.extensions:Misfiled"))
