"""Every statement of the SQLite task store, as SQL.

SQLite has no data-modifying CTEs, so a call is several of these in one `BEGIN IMMEDIATE`
transaction (db/store/sqlite.py) and the rules are judged in Python (services/tasks/
guard.py). Ids are 32 hex digits and times UTC text, as SQLAlchemy stores them.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.services.tasks.records import COLUMNS

TERMINAL = "('completed', 'failed', 'cancelled')"
TASK = ", ".join(f"t.{name}" for name in COLUMNS)
RETURNING = ", ".join(COLUMNS)

# Pending tasks of the job that a claim takes before the given one (claim order:
# priority DESC, due time, insertion), read from ix_tasks_claimable.
AHEAD = """
SELECT count(*) FROM tasks p
WHERE p.job_id = ? AND p.status = 'pending'
  AND (p.priority > ? OR (p.priority = ? AND (p.run_at, p.seq) < (?, ?)))
"""
PENDING_IN_ORDER = """
SELECT seq FROM tasks WHERE job_id = ? AND status = 'pending'
ORDER BY priority DESC, run_at, seq
"""

GET = f"SELECT {TASK} FROM tasks t WHERE t.id = ?"

JOB_BY_NAME = (
    "SELECT id, deleted, room_id, default_priority, default_max_attempts, validate_payload, "
    '"schema" FROM jobs WHERE full_name = ?'
)

# A key already used (or this id, when a lost answer is retried) inserts nothing.
INSERT_TASK = f"""
INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, created_by, internal,
                   created_at, claimed_at, priority, run_at, attempt, max_attempts,
                   idempotency_key, concurrency_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING {RETURNING}
"""
EXISTING = f"""
SELECT {TASK} FROM tasks t
WHERE t.id = ? OR (t.job_id = ? AND t.room_id = ? AND t.idempotency_key = ?)
"""

WORKER_OWNER = "SELECT user_id FROM workers WHERE id = ?"

_PROVIDER = "SELECT id, room_id, full_name, content_type, user_id FROM providers"
PROVIDER_BY_NAME = f"{_PROVIDER} WHERE full_name = ?"
PROVIDER_BY_ID = f"{_PROVIDER} WHERE id = ?"
HEARTBEAT = "UPDATE workers SET last_heartbeat = ? WHERE id = ?"

# Jobs with limits are claimed through sqlite_limits.py.
CLAIMABLE = """
SELECT priority, run_at, seq FROM tasks
WHERE job_id IN (SELECT l.job_id FROM worker_jobs l JOIN jobs j ON j.id = l.job_id
                 WHERE l.worker_id = ? AND j.paused = 0
                   AND j.max_running IS NULL AND j.max_running_per_key IS NULL)
  AND status = 'pending' AND internal = 0 AND run_at <= ?
ORDER BY priority DESC, run_at, seq
LIMIT ?
"""


def update_task(columns: Sequence[str]) -> str:
    """UPDATE one task by seq, setting `columns` (in order), returning the row."""
    assignments = ", ".join(f"{name} = ?" for name in columns)
    return f"UPDATE tasks SET {assignments} WHERE seq = ? RETURNING {RETURNING}"


# A task, the user of the worker holding it, whether the actor owns a worker serving its
# job, and whether the job was removed: what the rules need.
HELD = f"""
SELECT {TASK}, w.user_id,
       EXISTS (SELECT 1 FROM worker_jobs l JOIN workers lw ON lw.id = l.worker_id
               WHERE l.job_id = t.job_id AND lw.user_id = ?),
       (SELECT deleted FROM jobs WHERE id = t.job_id)
FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
WHERE t.id = ?
"""

# REST.md: a job with no worker links and no pending task is soft-deleted when one of
# its tasks ends (never @internal, never a declared job; waiting tasks count as pending).
SOFT_DELETE_ORPHAN = """
UPDATE jobs SET deleted = 1
WHERE id = ? AND deleted = 0 AND declared = 0 AND room_id <> '@internal'
  AND NOT EXISTS (SELECT 1 FROM worker_jobs WHERE job_id = jobs.id)
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE job_id = jobs.id AND status = 'pending')
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE job_id = jobs.id AND status = 'waiting')
RETURNING room_id
"""

SILENT_WORKER = "SELECT id FROM workers WHERE id = ? AND (? IS NULL OR last_heartbeat <= ?)"
STALE_WORKERS = "SELECT id FROM workers WHERE last_heartbeat < ? ORDER BY id"
HELD_BY_WORKERS = f"""
SELECT {TASK} FROM tasks t
WHERE t.worker_id IN ({{marks}}) AND t.status IN ('claimed', 'running')
ORDER BY t.seq
"""
LINKED_JOBS = """
SELECT DISTINCT j.id, j.room_id FROM worker_jobs l JOIN jobs j ON j.id = l.job_id
WHERE l.worker_id IN ({marks})
"""
PROVIDER_ROOMS = "SELECT DISTINCT room_id FROM providers WHERE worker_id IN ({marks})"
# Links and providers go with their worker (ON DELETE CASCADE).
DELETE_WORKERS = "DELETE FROM workers WHERE id IN ({marks})"

EXPIRED_LEASES = f"""
SELECT {TASK} FROM tasks t
WHERE t.status = 'claimed' AND t.internal = 0 AND t.lease_expires_at < ?
ORDER BY t.lease_expires_at
LIMIT ?
"""

# Candidates only (started before now - grace); the per-job limit is checked in Python.
RUNNING_WITH_TIMEOUT = f"""
SELECT {TASK}, j.timeout_seconds FROM tasks t JOIN jobs j ON j.id = t.job_id
WHERE t.status = 'running' AND t.internal = 0 AND j.timeout_seconds IS NOT NULL
  AND t.started_at < ?
ORDER BY t.seq
"""

STUCK_INTERNAL = f"""
SELECT {TASK} FROM tasks t
WHERE t.internal = 1 AND t.status = 'running' AND t.started_at < ?
ORDER BY t.seq
"""

UNSTARTED_INTERNAL = """
SELECT seq, id, claimed_at, lease_expires_at FROM tasks
WHERE internal = 1 AND status = 'claimed' AND worker_id IS NULL AND started_at IS NULL
ORDER BY seq
LIMIT ?
"""
MARK_DISPATCHED = "UPDATE tasks SET claimed_at = ?, lease_expires_at = ? WHERE seq = ?"

DELETE_FINISHED = f"""
DELETE FROM tasks WHERE seq IN (
    SELECT seq FROM tasks
    WHERE status IN {TERMINAL} AND completed_at < ?
    ORDER BY completed_at
    LIMIT ?
)
"""

PRUNE_THROUGHPUT = "DELETE FROM task_throughput WHERE minute < ?"

DUE_HEADS_ALL = """
SELECT job_name, room_id, id FROM tasks
WHERE seq IN (
    SELECT min(seq) FROM tasks
    WHERE status = 'pending' AND internal = 0 AND run_at <= ?
    GROUP BY job_name, room_id
)
ORDER BY seq
"""
# Tasks due on submit were announced by the submit itself; retries count anew.
DUE_HEADS_SINCE = """
SELECT job_name, room_id, id FROM tasks
WHERE seq IN (
    SELECT min(seq) FROM tasks
    WHERE status = 'pending' AND run_at > created_at AND internal = 0
      AND run_at <= ? AND run_at > ? AND julianday(run_at) - julianday(created_at) > ?
    GROUP BY job_name, room_id
)
ORDER BY seq
"""

# --- dependencies ------------------------------------------------------------------------

# A parent named by depends_on: marked as having dependants; its status decides whether
# the child waits (no row: it does not exist).
MARK_PARENT = "UPDATE tasks SET has_dependants = 1 WHERE id = ? RETURNING status"
INSERT_DEPENDENCY = """
INSERT INTO task_dependencies (parent_id, child_id) VALUES (?, ?) ON CONFLICT DO NOTHING
"""
WAITING_CHILDREN = """
SELECT DISTINCT t.seq, t.id FROM task_dependencies d JOIN tasks t ON t.id = d.child_id
WHERE d.parent_id IN ({marks}) AND t.status = 'waiting'
ORDER BY t.seq
"""
# The sweeper's repair: the oldest waiting tasks none of whose parents still runs.
WAITING_SETTLED = f"""
SELECT w.seq, w.id FROM tasks w
WHERE w.status = 'waiting' AND NOT EXISTS (
    SELECT 1 FROM task_dependencies d JOIN tasks p ON p.id = d.parent_id
    WHERE d.child_id = w.id AND p.status NOT IN {TERMINAL})
ORDER BY w.seq
LIMIT ?
"""
PARENTS_OF = """
SELECT d.parent_id, p.status FROM task_dependencies d LEFT JOIN tasks p ON p.id = d.parent_id
WHERE d.child_id = ?
"""
# A settled task needs its edges no more: the table holds only those still waiting.
UNLINK_CHILD = "DELETE FROM task_dependencies WHERE child_id = ?"
