"""Concurrency limits on SQLite: the claims of jobs with `max_running` or
`max_running_per_key`, admitted in the claim's own transaction.

Writers are serialised (`BEGIN IMMEDIATE`), so the active tasks counted here cannot change
before the claim commits: no counters are kept (PostgreSQL needs them, see postgres_sql.py).
Admission mirrors PostgreSQL's: per job, at most the room left under max_running, taken in
claim order from keys not yet full, then tasks that would overfill a key within this batch
are dropped (a batch may come back short; the next claim takes the rest).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass

import orjson

# Claim order: priority DESC, due time, insertion.
Candidate = tuple[int, str, int]  # (-priority, run_at, seq)

LIMITED_JOBS = """
SELECT j.id, j.max_running, j.max_running_per_key
FROM worker_jobs l JOIN jobs j ON j.id = l.job_id
WHERE l.worker_id = ? AND j.paused = 0
  AND (j.max_running IS NOT NULL OR j.max_running_per_key IS NOT NULL)
"""
# Read from ix_tasks_job_active.
ACTIVE_BY_KEY = """
SELECT concurrency_key, count(*) FROM tasks
WHERE job_id = ? AND status IN ('claimed', 'running')
GROUP BY concurrency_key
"""
# Read from ix_tasks_claimable; keys already full are passed over.
PENDING_WITH_ROOM = """
SELECT seq, priority, run_at, concurrency_key FROM tasks
WHERE job_id = ? AND status = 'pending' AND internal = 0 AND run_at <= ?
  AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT value FROM json_each(?)))
ORDER BY priority DESC, run_at, seq
LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class Limits:
    job_hex: str
    max_running: int | None
    max_running_per_key: int | None


def candidates(db: sqlite3.Connection, worker_hex: str, now: str, limit: int) -> list[Candidate]:
    """Up to `limit` tasks of the worker's limited jobs that their limits admit now."""
    found: list[Candidate] = []
    for row in db.execute(LIMITED_JOBS, (worker_hex,)).fetchall():
        found.extend(_admitted(db, Limits(*row), now, limit))
    return found


def _admitted(db: sqlite3.Connection, limits: Limits, now: str, limit: int) -> list[Candidate]:
    active = Counter[str | None](
        {key: count for key, count in db.execute(ACTIVE_BY_KEY, (limits.job_hex,)).fetchall()}
    )
    room = limit
    if limits.max_running is not None:
        room = min(room, limits.max_running - active.total())
    if room <= 0:
        return []
    per_key = limits.max_running_per_key
    full = [k for k, n in active.items() if k is not None and per_key is not None and n >= per_key]
    rows = db.execute(
        PENDING_WITH_ROOM, (limits.job_hex, now, orjson.dumps(full).decode(), room)
    ).fetchall()
    admitted: list[Candidate] = []
    for seq, priority, run_at, key in rows:
        if key is not None and per_key is not None:
            if active[key] >= per_key:
                continue
            active[key] += 1
        admitted.append((-priority, run_at, seq))
    return admitted
