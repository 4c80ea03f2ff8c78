"""Fixtures shared by the observability tests: the beyond tests' thin API helper."""

from __future__ import annotations

from tests.beyond.conftest import api

__all__ = ["api"]
