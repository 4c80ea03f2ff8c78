"""The fingerprint of a task's failure: what the error inbox groups by, and the one place
that says how it is computed. Stored in tasks.error_fingerprint whenever a task fails."""

from __future__ import annotations

import hashlib
import re

# A frame line of a Python traceback: `  File "w.py", line 3, in run`.
FRAME = re.compile(r'^\s*File "[^"]*", line \d+, in .+$')
UNKNOWN_ERROR = "unknown error"
# Hex digits kept of the digest: short enough for a narrow index, long enough that two
# different failures do not share one by chance (64 bits).
FINGERPRINT_LENGTH = 16


def failure_label(error: str | None, traceback: str | None) -> str:
    """The exception type plus the innermost frame when a traceback exists (so messages
    carrying ids still group together), else the error's first line."""
    lines = (error or "").strip().splitlines()
    first = lines[0].strip() if lines else UNKNOWN_ERROR
    frames = [line.strip() for line in (traceback or "").splitlines() if FRAME.match(line)]
    if not frames:
        return first
    kind = first.split(":", 1)[0].strip()
    return f"{kind} @ {frames[-1]}"


def fingerprint_of(error: str | None, traceback: str | None) -> str:
    """The stored fingerprint: a short digest of `failure_label` (a label may be long;
    the index holds this instead, and the inbox shows the label of one of the tasks)."""
    label = failure_label(error, traceback)
    return hashlib.sha256(label.encode()).hexdigest()[:FINGERPRINT_LENGTH]
