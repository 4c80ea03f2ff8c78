"""The task store on SQLite: the sqlite3 driver on a connection of its own, in one thread.

Each call is one `BEGIN IMMEDIATE` transaction run start to finish in the store's thread,
so it costs one hop off the event loop however many statements it takes. The write lock
is taken up front: the ORM's connection (users, jobs) may wait on it (busy timeout), but
never deadlocks with it. The rules come from services/tasks/guard.py; the SQL is in
sqlite_sql.py. Values are stored as SQLAlchemy stores them (ids as 32 hex digits, times as
'YYYY-MM-DD HH:MM:SS.ffffff' UTC text), so both connections read each other's rows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from app.db.session import private_sqlite_file
from app.db.store import sqlite_limits
from app.db.store import sqlite_sql as sql
from app.db.store.sqlite_codec import (
    BUSY_TIMEOUT_MS,
    hex_id,
    record_of,
    time_of,
    time_text,
    uuid_text,
)
from app.services.actors import Actor
from app.services.tasks import dependencies, guard
from app.services.tasks.fingerprints import fingerprint_of
from app.services.tasks.guard import Held
from app.services.tasks.records import COLUMNS, Change, TaskRecord, TaskView
from app.services.tasks.retry import RetryPolicy
from app.services.tasks.states import TERMINAL, Cause, TaskStatus
from app.services.tasks.store import (
    Beat,
    Claimed,
    Cleanup,
    DueHead,
    Inserted,
    JobRef,
    Judged,
    Judgements,
    NewTask,
    Progressed,
    ProgressReport,
    ProviderRef,
    Report,
    Target,
    Verdict,
    WorkerSelection,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
Row = tuple[Any, ...]
SWEEP_BATCH = 1000
# A job's timeout is capped so that no value overflows the pass (as in postgres_sql.py).
MAX_TIMEOUT_SECONDS = 1e9
_ID = COLUMNS.index("id")
DISPATCH_BACKOFF_GRACES = 16
ATTEMPT_CLEARED: dict[str, Any] = dict.fromkeys(
    ("error", "traceback", "progress", "progress_message", "progress_at")
)


class SqliteTaskStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None

    # --- plumbing ----------------------------------------------------------------------
    async def start(self) -> None:
        await self._call(self._open)

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=False)

    def _open(self) -> None:
        if self._path != ":memory:":
            private_sqlite_file(Path(self._path))
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA synchronous=NORMAL")
        self._db = db

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _tx(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(self._in_transaction, fn, *args)

    def _in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        db = self._db
        assert db is not None, "the task store is not started"
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db, *args)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def now(self) -> datetime:
        return time_of(time_text())

    # --- submit ------------------------------------------------------------------------
    async def submit(self, target: Target, tasks: Sequence[NewTask]) -> Inserted:
        return await self._tx(_submit, target, list(tasks))

    async def claim(
        self, worker_id: str, actor_id: str, limit: int, lease_seconds: float
    ) -> Claimed:
        return await self._tx(_claim, worker_id, actor_id, limit, lease_seconds)

    async def report(
        self, reports: Sequence[Report], actor: Actor, policy: RetryPolicy
    ) -> Judgements:
        return await self._tx(_report, list(reports), actor, policy)

    async def cancel(self, task_id: str, actor: Actor) -> Judgements:
        return await self._tx(_action, task_id, actor, Cause.CANCEL)

    async def retry(self, task_id: str, actor: Actor) -> Judgements:
        return await self._tx(_action, task_id, actor, Cause.RETRY)

    async def release(self, task_id: str, attempt: int, worker_id: str, actor: Actor) -> Judgements:
        return await self._tx(_release, task_id, attempt, worker_id, actor)

    async def progress(
        self, item: ProgressReport, actor: Actor, every_seconds: float, *, ended_ok: bool
    ) -> Progressed:
        return await self._tx(_progress, item, actor, every_seconds, ended_ok)

    async def get(self, task_id: str) -> TaskView | None:
        return await self._call(self._get, task_id)

    def _get(self, task_id: str) -> TaskView | None:
        assert self._db is not None
        row = self._db.execute(sql.GET, (hex_id(task_id),)).fetchone()
        if row is None:
            return None
        task = record_of(row)
        return TaskView(task, _position(self._db, task))

    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        return await self._call(self._get_many, list(task_ids))

    def _get_many(self, task_ids: list[str]) -> list[TaskRecord]:
        assert self._db is not None
        rows = (self._db.execute(sql.GET, (hex_id(t),)).fetchone() for t in task_ids)
        return [record_of(row) for row in rows if row is not None]

    async def heartbeat(self, worker_id: str, actor_id: str) -> Beat:
        return await self._tx(_heartbeat, worker_id, actor_id)

    async def worker_owner(self, worker_id: str) -> str | None:
        return await self._call(self._worker_owner, worker_id)

    def _worker_owner(self, worker_id: str) -> str | None:
        assert self._db is not None
        found = self._db.execute(sql.WORKER_OWNER, (hex_id(worker_id),)).fetchone()
        return uuid_text(found[0]) if found else None

    async def provider_by_name(self, full_name: str) -> ProviderRef | None:
        return await self._call(self._provider, sql.PROVIDER_BY_NAME, full_name)

    async def provider_by_id(self, provider_id: str) -> ProviderRef | None:
        return await self._call(self._provider, sql.PROVIDER_BY_ID, hex_id(provider_id))

    def _provider(self, statement: str, key: str) -> ProviderRef | None:
        assert self._db is not None
        row = self._db.execute(statement, (key,)).fetchone()
        if row is None:
            return None
        provider_id, room_id, full_name, content_type, user_id = row
        return ProviderRef(
            uuid_text(provider_id), room_id, full_name, content_type, uuid_text(user_id)
        )

    # --- the server's own transitions ------------------------------------------------
    async def cleanup_workers(
        self, selection: WorkerSelection, error: str, policy: RetryPolicy
    ) -> Cleanup:
        return await self._tx(_cleanup, selection, error, policy)

    async def expire_leases(self) -> list[Change]:
        return await self._tx(_expire_leases)

    async def fail_timed_out(self, grace_seconds: float, policy: RetryPolicy) -> list[Change]:
        return await self._tx(_fail_timed_out, grace_seconds, policy)

    async def fail_stuck_internal(self, older_than_seconds: float, error: str) -> list[Change]:
        return await self._tx(_fail_stuck_internal, older_than_seconds, error)

    async def settle_children(self, parent_ids: Sequence[str]) -> list[Change]:
        return await self._tx(_settle_children, list(parent_ids)) if parent_ids else []

    async def settle_waiting(self, limit: int) -> list[Change]:
        return await self._tx(_settle_waiting, limit)

    async def take_lost_dispatches(self, grace_seconds: float) -> list[str]:
        return await self._tx(_take_lost_dispatches, grace_seconds)

    async def delete_finished(self, older_than_seconds: float, limit: int) -> int:
        return await self._tx(_delete_finished, older_than_seconds, limit)

    async def count_active_under_limits(self) -> int:
        """Nothing to count: a claim here counts the active tasks it competes with."""
        return 0

    async def prune_throughput(self, older_than_seconds: float) -> None:
        await self._tx(
            lambda db: db.execute(sql.PRUNE_THROUGHPUT, (time_text(-older_than_seconds),))
        )

    async def due_heads(
        self, since: datetime | None, overlap_seconds: float, due_on_submit_seconds: float
    ) -> tuple[list[DueHead], datetime]:
        return await self._call(self._due_heads, since, overlap_seconds, due_on_submit_seconds)

    def _due_heads(
        self, since: datetime | None, overlap: float, due_on_submit: float
    ) -> tuple[list[DueHead], datetime]:
        assert self._db is not None
        now = time_text()
        if since is None:
            rows = self._db.execute(sql.DUE_HEADS_ALL, (now,)).fetchall()
        else:
            window_start = time_text(-overlap, since)
            rows = self._db.execute(
                sql.DUE_HEADS_SINCE, (now, window_start, due_on_submit / 86_400)
            ).fetchall()
        heads = [DueHead(job, room, uuid_text(task_id)) for job, room, task_id in rows]
        return heads, time_of(now)


# --- the transactions (run in the store's thread, inside BEGIN IMMEDIATE) ------------------


def _position(db: sqlite3.Connection, task: TaskRecord) -> int | None:
    if task.status != TaskStatus.PENDING:
        return None
    ahead = db.execute(
        sql.AHEAD,
        (
            hex_id(task.job_id),
            task.priority,
            task.priority,
            time_text(0, task.run_at),
            task.seq,
        ),
    ).fetchone()[0]
    return int(ahead) + 1


def _submit(db: sqlite3.Connection, target: Target, tasks: list[NewTask]) -> Inserted:
    found = db.execute(sql.JOB_BY_NAME, (target.job_name,)).fetchone()
    if found is None:
        return Inserted(None)
    job_hex, deleted, room_id, default_priority, default_max_attempts, validates, schema = found
    internal = room_id == "@internal"
    runnable = not internal or target.job_name in target.runnable_internal
    job = JobRef(uuid_text(job_hex), bool(deleted), internal, runnable, bool(validates))
    if job.deleted or not runnable:
        return Inserted(job)
    if validates and not _same_json(schema, target.checked_schema):
        return Inserted(replace(job, schema_to_check=schema))
    now = time_text()
    views: list[TaskView] = []
    created: list[bool] = []
    # An earlier item that an idempotency key resolved to an existing task: its
    # dependants wait on that task.
    stood_for: dict[str, str] = {}
    for task in tasks:
        parents = [stood_for.get(p, p) for p in task.parents]
        waits = _mark_parents(db, parents) if parents else False
        params = _insert_params(target, job, task, now, default_priority, default_max_attempts)
        if waits:
            params = (*params[:4], str(TaskStatus.WAITING), *params[5:])
        row = db.execute(sql.INSERT_TASK, params).fetchone()
        created.append(row is not None)
        if row is None:  # its idempotency key (or, retried, its id) names an existing task
            row = db.execute(
                sql.EXISTING, (hex_id(task.id), job_hex, target.room_id, task.idempotency_key)
            ).fetchone()
        elif parents:
            for parent in parents:
                db.execute(sql.INSERT_DEPENDENCY, (hex_id(parent), hex_id(task.id)))
        views.append(TaskView(record_of(row)))
        stood_for[task.id] = views[-1].task.id
    positions = _positions(db, job_hex, [v.task for v in views])
    return Inserted(job, [TaskView(v.task, positions.get(v.task.seq)) for v in views], created)


def _same_json(stored: str, given: str | None) -> bool:
    """The stored schema is the one the payloads were checked against (as values: the
    texts may differ in key order and spacing)."""
    return given is not None and bool(orjson.loads(stored) == orjson.loads(given))


def _mark_parents(db: sqlite3.Connection, parents: Sequence[str]) -> bool:
    """Mark the parents as having dependants; True when the child must wait (a parent
    not completed, or not there)."""
    statuses = [db.execute(sql.MARK_PARENT, (hex_id(p),)).fetchone() for p in parents]
    return any(row is None or row[0] != TaskStatus.COMPLETED for row in statuses)


def _settle(db: sqlite3.Connection, children: Sequence[tuple[int, str]]) -> list[Change]:
    """Each waiting child whose parents all ended: pending or cancelled (dependencies)."""
    changes: list[Change] = []
    now = time_text()
    for seq, child_hex in children:
        parents = db.execute(sql.PARENTS_OF, (child_hex,)).fetchall()
        outcome = dependencies.settled([(uuid_text(p), status) for p, status in parents])
        if outcome is None:
            continue
        status, error = outcome
        values: dict[str, Any] = {"status": str(status)}
        if status == TaskStatus.CANCELLED:
            values |= {"completed_at": now, "error": error}
        after = record_of(_update_each(db, [seq], values)[0])
        db.execute(sql.UNLINK_CHILD, (child_hex,))
        changes.append(Change(after, TaskStatus.WAITING, _position(db, after)))
    return changes


def _settle_children(db: sqlite3.Connection, parent_ids: list[str]) -> list[Change]:
    marks = ", ".join("?" * len(parent_ids))
    statement = sql.WAITING_CHILDREN.format(marks=marks)
    return _settle(db, db.execute(statement, [hex_id(p) for p in parent_ids]).fetchall())


def _settle_waiting(db: sqlite3.Connection, limit: int) -> list[Change]:
    return _settle(db, db.execute(sql.WAITING_SETTLED, (limit,)).fetchall())


def _insert_params(
    target: Target,
    job: JobRef,
    task: NewTask,
    now: str,
    default_priority: int | None,
    default_max_attempts: int | None,
) -> tuple[Any, ...]:
    if task.run_at is not None:
        run_at = time_text(0, task.run_at)
    elif task.delay_seconds:
        run_at = time_text(task.delay_seconds)
    else:
        run_at = now
    return (
        hex_id(task.id),
        hex_id(job.id),
        target.job_name,
        target.room_id,
        "claimed" if job.internal else "pending",
        task.payload,
        hex_id(target.created_by),
        int(job.internal),
        now,
        now if job.internal else None,
        _or_default(task.priority, default_priority, 0),
        run_at,
        _or_default(task.max_attempts, default_max_attempts, 1),
        task.idempotency_key,
        task.concurrency_key,
    )


def _or_default(value: int | None, default: int | None, fallback: int) -> int:
    if value is not None:
        return value
    return fallback if default is None else default


def _positions(db: sqlite3.Connection, job_hex: str, tasks: list[TaskRecord]) -> dict[int, int]:
    """Queue positions of many pending tasks of one job: one pass in claim order."""
    pending = [t for t in tasks if t.status == TaskStatus.PENDING]
    if not pending:
        return {}
    if len(pending) == 1:
        position = _position(db, pending[0])
        return {pending[0].seq: position} if position is not None else {}
    wanted = {t.seq for t in pending}
    rows = db.execute(sql.PENDING_IN_ORDER, (job_hex,)).fetchall()
    return {seq: index for index, (seq,) in enumerate(rows, 1) if seq in wanted}


def _claim(
    db: sqlite3.Connection, worker_id: str, actor_id: str, limit: int, lease: float
) -> Claimed:
    found = db.execute(sql.WORKER_OWNER, (hex_id(worker_id),)).fetchone()
    owner = uuid_text(found[0]) if found else None
    if owner != actor_id:
        return Claimed(owner, [])
    now = time_text()
    seqs = _claimable(db, hex_id(worker_id), now, limit)
    changes = [
        Change(record_of(row), TaskStatus.PENDING)
        for row in _update_each(
            db,
            seqs,
            {
                "status": "claimed",
                "worker_id": hex_id(worker_id),
                "claimed_at": now,
                "lease_expires_at": time_text(lease),
                # What the row says of an earlier attempt is in task_attempts now.
                **ATTEMPT_CLEARED,
            },
        )
    ]
    return Claimed(owner, changes)


def _claimable(db: sqlite3.Connection, worker_hex: str, now: str, limit: int) -> list[int]:
    """The seqs to claim, in claim order: the heads of the worker's jobs without limits,
    and of those with limits as many as their limits admit."""
    found = [
        (-priority, run_at, seq)
        for priority, run_at, seq in db.execute(sql.CLAIMABLE, (worker_hex, now, limit))
    ]
    found.extend(sqlite_limits.candidates(db, worker_hex, now, limit))
    return [seq for _, _, seq in sorted(found)[:limit]]


def _update_each(db: sqlite3.Connection, seqs: Sequence[int], values: dict[str, Any]) -> list[Row]:
    if not seqs:
        return []
    statement = sql.update_task(tuple(values))
    return [db.execute(statement, (*values.values(), seq)).fetchone() for seq in seqs]


def _held(
    db: sqlite3.Connection, task_id: str, actor: Actor
) -> tuple[TaskRecord, Held, tuple[bool, bool]] | None:
    """The task, what the rules need of it, and (does the actor own a worker serving its
    job, is its job gone)."""
    row = db.execute(sql.HELD, (hex_id(str(actor.id)), hex_id(task_id))).fetchone()
    if row is None:
        return None
    task = record_of(row)
    owner, serves_job, job_deleted = row[-3:]
    held = Held(
        task.status,
        task.attempt,
        task.max_attempts,
        task.worker_id,
        uuid_text(owner) if owner else None,
        task.created_by,
        task.internal,
    )
    return task, held, (bool(serves_job), job_deleted is None or bool(job_deleted))


def _report(
    db: sqlite3.Connection, reports: list[Report], actor: Actor, policy: RetryPolicy
) -> Judgements:
    items: list[Judged] = []
    ended: set[str] = set()
    for report in reports:
        found = _held(db, report.task_id, actor)
        held = found[1] if found else None
        verdict = guard.judge_report(held, report, actor)
        if found is None or held is None:
            items.append(Judged(verdict))
            continue
        task = found[0]
        if verdict == Verdict.REPEAT:
            items.append(Judged(verdict, Change(task, task.status), *_before(task)))
            continue
        if verdict != Verdict.APPLY:
            items.append(Judged(verdict, None, *_before(task)))
            continue
        values = _report_values(task, held, report, policy)
        after = record_of(_update_each(db, [task.seq], values)[0])
        if after.status in TERMINAL:
            ended.add(after.job_id)
        items.append(
            Judged(verdict, Change(after, task.status, _position(db, after)), *_before(task))
        )
    return Judgements(items, _orphans(db, ended))


def _before(task: TaskRecord) -> tuple[str, int, str | None]:
    return task.status, task.attempt, task.worker_id


def _report_values(
    task: TaskRecord, held: Held, report: Report, policy: RetryPolicy
) -> dict[str, Any]:
    now = time_text()
    if guard.requeues(held, report):
        values = _requeue_values(
            task, spend=True, delay=policy.delay(task.attempt), error=report.error or task.error
        )
        values["traceback"] = report.traceback
        return values
    values = {"status": str(report.status), "traceback": report.traceback}
    if report.status != TaskStatus.CLAIMED:
        values["lease_expires_at"] = None
    if report.status == TaskStatus.RUNNING:
        values["started_at"] = now
    if report.status in TERMINAL:
        values["completed_at"] = now
        values["error"] = report.error or None
        if report.status == TaskStatus.COMPLETED and report.result is not None:
            values["result"] = report.result
    if report.status == TaskStatus.FAILED:
        values["error_fingerprint"] = fingerprint_of(report.error or None, report.traceback)
    return values


def _orphans(db: sqlite3.Connection, job_ids: set[str]) -> list[str]:
    """REST.md's orphan rule for jobs whose tasks just ended: rooms of jobs soft-deleted."""
    rooms: set[str] = set()
    for job_id in sorted(job_ids):
        row = db.execute(sql.SOFT_DELETE_ORPHAN, (hex_id(job_id),)).fetchone()
        if row is not None:
            rooms.add(row[0])
    return sorted(rooms)


def _action(db: sqlite3.Connection, task_id: str, actor: Actor, cause: Cause) -> Judgements:
    found = _held(db, task_id, actor)
    if found is None:
        return Judgements([Judged(Verdict.NOT_FOUND)])
    task, held, (serves_job, job_gone) = found
    verdict = guard.judge_action(held, actor, has_say=serves_job, cause=cause)
    if verdict == Verdict.APPLY and cause == Cause.RETRY and job_gone:
        verdict = Verdict.JOB_GONE
    if verdict != Verdict.APPLY:
        return Judgements([Judged(verdict, None, *_before(task))])
    if cause == Cause.CANCEL:
        values: dict[str, Any] = {
            "status": "cancelled",
            "completed_at": time_text(),
            "lease_expires_at": None,
            "error": None,  # an earlier attempt's, if any: its attempt keeps it
        }
    else:  # a new attempt, due now, with one more attempt allowed
        values = _requeue_values(task, spend=True)
        values["max_attempts"] = max(task.max_attempts, task.attempt + 1)
        values["error_fingerprint"] = None
    after = record_of(_update_each(db, [task.seq], values)[0])
    orphans = _orphans(db, {after.job_id}) if cause == Cause.CANCEL else []
    change = Change(after, task.status, _position(db, after))
    return Judgements([Judged(verdict, change, *_before(task))], orphans)


def _release(
    db: sqlite3.Connection, task_id: str, attempt: int, worker_id: str, actor: Actor
) -> Judgements:
    found = _held(db, task_id, actor)
    if found is None:
        return Judgements([Judged(Verdict.NOT_FOUND)])
    task, held, _ = found
    verdict = guard.judge_release(held, attempt, worker_id, actor)
    if verdict != Verdict.APPLY:
        return Judgements([Judged(verdict, None, *_before(task))])
    after = record_of(_update_each(db, [task.seq], _requeue_values(task, spend=False))[0])
    change = Change(after, task.status, _position(db, after))
    return Judgements([Judged(verdict, change, *_before(task))])


def _progress(
    db: sqlite3.Connection, item: ProgressReport, actor: Actor, every: float, ended_ok: bool
) -> Progressed:
    found = _held(db, item.task_id, actor)
    if found is None:
        return Progressed(Judged(Verdict.NOT_FOUND))
    task, held, _ = found
    now = time_text()
    last = task.progress_at
    too_soon = last is not None and last > time_of(now) - timedelta(seconds=every)
    verdict = guard.judge_progress(held, item, actor, too_soon=too_soon, ended_ok=ended_ok)
    judged = Judged(verdict, None, *_before(task))
    if verdict == Verdict.APPLY:
        values = {"progress": item.progress, "progress_message": item.message, "progress_at": now}
        last = record_of(_update_each(db, [task.seq], values)[0]).progress_at
    return Progressed(judged, task.room_id, task.job_name, last)


def _requeue_values(
    task: TaskRecord, *, spend: bool, delay: float = 0.0, error: str | None = None
) -> dict[str, Any]:
    """Back to pending, due after `delay`, the attempt counter advanced. Without `spend`
    the task gets one more attempt too (a release or an expired lease ran nothing); an
    `error` is the ended attempt's (the attempts trigger records it; clients see none)."""
    values: dict[str, Any] = {
        "status": "pending",
        "attempt": task.attempt + 1,
        "run_at": time_text(delay),
        "worker_id": None,
        "claimed_at": None,
        "started_at": None,
        "completed_at": None,
        "lease_expires_at": None,
    }
    if not spend:
        values["max_attempts"] = task.max_attempts + 1
    if error is not None:
        values["error"] = error
    return values


def _heartbeat(db: sqlite3.Connection, worker_id: str, actor_id: str) -> Beat:
    found = db.execute(sql.WORKER_OWNER, (hex_id(worker_id),)).fetchone()
    owner = uuid_text(found[0]) if found else None
    if owner is None or owner != actor_id:
        return Beat(owner, None)
    now = time_text()
    db.execute(sql.HEARTBEAT, (now, hex_id(worker_id)))
    return Beat(owner, time_of(now))


def _lose(
    db: sqlite3.Connection, tasks: list[TaskRecord], errors: list[str], policy: RetryPolicy
) -> list[Change]:
    """Tasks of a lost or stuck worker: re-queued while attempts remain (not @internal),
    else failed with their error."""
    changes: list[Change] = []
    now = time_text()
    for task, error in zip(tasks, errors, strict=True):
        if not task.internal and task.attempt < task.max_attempts:
            values = _requeue_values(
                task, spend=True, delay=policy.delay(task.attempt), error=error
            )
        else:
            values = {
                "status": "failed",
                "completed_at": now,
                "lease_expires_at": None,
                "error": error,
                "error_fingerprint": fingerprint_of(error, None),
            }
        after = record_of(_update_each(db, [task.seq], values)[0])
        changes.append(Change(after, task.status, _position(db, after)))
    return changes


def _cleanup(
    db: sqlite3.Connection, selection: WorkerSelection, error: str, policy: RetryPolicy
) -> Cleanup:
    victims = _victims(db, selection)
    if not victims:
        return Cleanup([], [], [], [], [])
    marks = ", ".join("?" * len(victims))
    held = [
        record_of(row)
        for row in db.execute(sql.HELD_BY_WORKERS.format(marks=marks), victims).fetchall()
    ]
    changes = _lose(db, held, [error] * len(held), policy)
    linked = db.execute(sql.LINKED_JOBS.format(marks=marks), victims).fetchall()
    provider_rooms = db.execute(sql.PROVIDER_ROOMS.format(marks=marks), victims).fetchall()
    db.execute(sql.DELETE_WORKERS.format(marks=marks), victims)
    return Cleanup(
        worker_ids=[uuid_text(v) for v in victims],
        changes=changes,
        job_rooms=sorted({room for _, room in linked}),
        provider_rooms=sorted({room for (room,) in provider_rooms}),
        orphan_rooms=_orphans(db, {uuid_text(job) for job, _ in linked}),
    )


def _victims(db: sqlite3.Connection, selection: WorkerSelection) -> list[str]:
    found: list[str] = []
    if selection.ids:
        silent = time_text(0, selection.silent_since) if selection.silent_since else None
        for worker_id in selection.ids:
            row = db.execute(sql.SILENT_WORKER, (hex_id(worker_id), silent, silent)).fetchone()
            if row is not None:
                found.append(row[0])
    if selection.stale_before is not None:
        stale = db.execute(sql.STALE_WORKERS, (time_text(0, selection.stale_before),))
        found.extend(row[0] for row in stale.fetchall() if row[0] not in found)
    return found


def _expire_leases(db: sqlite3.Connection) -> list[Change]:
    rows = db.execute(sql.EXPIRED_LEASES, (time_text(), SWEEP_BATCH)).fetchall()
    changes = []
    for row in rows:
        task = record_of(row)
        after = record_of(_update_each(db, [task.seq], _requeue_values(task, spend=False))[0])
        changes.append(Change(after, task.status, _position(db, after)))
    return changes


def _fail_timed_out(db: sqlite3.Connection, grace: float, policy: RetryPolicy) -> list[Change]:
    now = time_of(time_text())
    due: list[TaskRecord] = []
    errors: list[str] = []
    for row in db.execute(sql.RUNNING_WITH_TIMEOUT, (time_text(-grace),)).fetchall():
        # One unreadable row (a text where a number belongs, a broken time) must not
        # stop the pass: it is logged and skipped, the rest are judged.
        try:
            task, timeout = record_of(row), job_timeout(row[-1])
            assert task.started_at is not None
            overdue = timeout is not None and (now - task.started_at).total_seconds() > (
                timeout + grace
            )
        except (ValueError, TypeError, AssertionError) as error:
            log.warning("timeout pass: skipped task %s, unreadable: %s", row_id(row), error)
            continue
        if overdue:
            due.append(task)
            errors.append(f"timed out after {timeout:g} s (no report from the worker)")
    return _lose(db, due, errors, policy)


def row_id(row: Sequence[Any]) -> str:
    try:
        return uuid_text(row[_ID])
    except (ValueError, TypeError):
        return repr(row[_ID])


def job_timeout(value: Any) -> float | None:
    """A job's timeout as the pass uses it: capped (as PostgreSQL's statement caps it),
    none when it is not a positive number. Raises on a value that is no number at all."""
    timeout = float(value)
    if not timeout > 0:  # also NaN
        return None
    return min(timeout, MAX_TIMEOUT_SECONDS)


def _fail_stuck_internal(db: sqlite3.Connection, older_than: float, error: str) -> list[Change]:
    rows = db.execute(sql.STUCK_INTERNAL, (time_text(-older_than),)).fetchall()
    now = time_text()
    changes = []
    for row in rows:
        task = record_of(row)
        values = {
            "status": "failed",
            "completed_at": now,
            "error": error,
            "error_fingerprint": fingerprint_of(error, None),
        }
        after = record_of(_update_each(db, [task.seq], values)[0])
        changes.append(Change(after, task.status))
    return changes


def _take_lost_dispatches(db: sqlite3.Connection, grace: float) -> list[str]:
    """@internal tasks not started by their re-send time: re-sent, the next re-send twice
    as far out (capped), as PostgreSQL's TAKE_LOST_DISPATCHES does."""
    now_text = time_text()
    now = time_of(now_text)
    cap = grace * DISPATCH_BACKOFF_GRACES
    taken: list[str] = []
    for seq, task_id, claimed_text, lease_text in db.execute(
        sql.UNSTARTED_INTERNAL, (SWEEP_BATCH,)
    ).fetchall():
        claimed = time_of(claimed_text)
        lease = time_of(lease_text) if lease_text else None
        resend_at = lease or claimed + timedelta(seconds=grace)
        if resend_at >= now:
            continue
        interval = (lease - claimed).total_seconds() if lease else 0.0
        next_in = min(cap, max(grace, 2 * interval))
        db.execute(sql.MARK_DISPATCHED, (now_text, time_text(next_in), seq))
        taken.append(uuid_text(task_id))
    return taken


def _delete_finished(db: sqlite3.Connection, older_than: float, limit: int) -> int:
    cursor = db.execute(sql.DELETE_FINISHED, (time_text(-older_than), limit))
    return int(cursor.rowcount)
