"""Column types and SQL functions that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Float, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

SQLITE_NOW_FUNCTION = "jobserver_now"
SQLITE_NOW_PLUS_FUNCTION = "jobserver_now_plus"
# SQLAlchemy's own storage format for DateTime on SQLite; ISO order == time order.
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects.

    PostgreSQL stores `timestamptz`; SQLite stores naive UTC text, and values read back
    are tagged UTC again, so callers only ever see aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw text from a SQLite function, e.g. via RETURNING
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):
    """The database's current time (DESIGN: time is the database's, not the app's)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow, "postgresql")
def _pg_now(element: utcnow, compiler: Any, **kw: Any) -> str:
    # clock_timestamp, not now(): rows stamped in one transaction (bulk submit) keep
    # their insertion order, and a long transaction does not stamp stale times.
    return "clock_timestamp()"


@compiles(utcnow, "sqlite")
def _sqlite_now(element: utcnow, compiler: Any, **kw: Any) -> str:
    # A function registered on every connection (db/session.py): the SQLite file lives
    # in this process, so this process's clock is the database's clock.
    return f"{SQLITE_NOW_FUNCTION}()"


def sqlite_now_text() -> str:
    return datetime.now(UTC).strftime(SQLITE_TIME_FORMAT)


class utcnow_plus(FunctionElement[datetime]):
    """The database's current time plus `seconds` (negative for the past): due times and
    stats windows are computed on the database's clock, like `utcnow()`."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, seconds: float) -> None:
        super().__init__(literal(float(seconds), Float()))


@compiles(utcnow_plus, "postgresql")
def _pg_now_plus(element: utcnow_plus, compiler: Any, **kw: Any) -> str:
    return f"clock_timestamp() + make_interval(secs => {compiler.process(element.clauses, **kw)})"


@compiles(utcnow_plus, "sqlite")
def _sqlite_now_plus(element: utcnow_plus, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_NOW_PLUS_FUNCTION}({compiler.process(element.clauses, **kw)})"


def sqlite_now_plus_text(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime(SQLITE_TIME_FORMAT)
