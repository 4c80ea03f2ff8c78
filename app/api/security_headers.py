"""Headers added to every HTTP answer, and the dashboard's stricter set.

Precomputed byte pairs, appended in the request-log middleware's one pass over each
answer's start: the hot JSON routes pay a look at a few header names and one extend
(about 0.5 µs an answer, measured).

The dashboard's policy allows our own script and stylesheet and nothing inline (its
templates have no inline script, event handler or style attribute; the charts are the
vendored uPlot, served from /dashboard/static, drawing on canvas and styling through the
CSSOM, which a style-src policy does not govern). The API answers get no policy: they are
JSON, never rendered. The documentation pages set their own (api/docs.py, api/problem_pages.py).
"""

from __future__ import annotations

Header = tuple[bytes, bytes]

DASHBOARD_PATH = "/dashboard"
DASHBOARD_PREFIX = DASHBOARD_PATH + "/"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    )
)
EVERY_ANSWER: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
DASHBOARD_ANSWER: tuple[Header, ...] = (
    *EVERY_ANSWER,
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    # Older browsers know no frame-ancestors.
    (b"x-frame-options", b"DENY"),
)


OURS = frozenset(name for name, _ in DASHBOARD_ANSWER)


def add(headers: list[Header], path: str) -> None:
    """Append this path's security headers to an answer's; one the route already set
    (e.g. a provider result's own nosniff) is kept as it is, not repeated."""
    dashboard = path == DASHBOARD_PATH or path.startswith(DASHBOARD_PREFIX)
    wanted = DASHBOARD_ANSWER if dashboard else EVERY_ANSWER
    for name, _ in headers:
        # Starlette writes names in lower case. Rare: only then is the answer's set read.
        if name in OURS:
            present = {name.lower() for name, _ in headers}
            headers.extend(header for header in wanted if header[0] not in present)
            return
    headers.extend(wanted)
