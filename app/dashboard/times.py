"""How the dashboard prints a moment: one `<time>` element per timestamp, which
static/times.js turns into "3 s ago" with the local time on hover."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape

MISSING = "-"


def _utc(value: datetime) -> datetime:
    # Columns come back aware (db/types.py); a naive value here is UTC by the same rule.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_tag(value: datetime | None) -> Markup:
    """`<time datetime=ISO>ISO</time>`: exact without JavaScript, humane with it.

    The title starts as the UTC time; the script replaces it with the reader's local time."""
    if value is None:
        return Markup(MISSING)
    moment = _utc(value)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    title = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}" title="{1}">{0}</time>').format(escape(iso), title)


def server_now() -> str:
    """The server's clock for the page, so the script can tell "ago" across a skewed one."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
