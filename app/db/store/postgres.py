"""The task store on PostgreSQL: asyncpg directly, one prepared statement per call.

Each statement runs in its own implicit transaction, so a call is one round trip: no
BEGIN/COMMIT, no ORM. The SQL is in postgres_sql.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from app.db.asyncpg_args import asyncpg_connect_args
from app.db.store import postgres_sql as sql
from app.services.actors import Actor
from app.services.tasks.fingerprints import fingerprint_of
from app.services.tasks.records import COLUMNS, Change, TaskRecord, TaskView
from app.services.tasks.retry import JITTER_HIGH, JITTER_LOW, RetryPolicy
from app.services.tasks.states import Cause, TaskStatus, edge_arrays
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

log = logging.getLogger(__name__)
T = TypeVar("T")

WIDTH = len(COLUMNS)
# A batch of leases, timeouts or lost dispatches handled per statement.
SWEEP_BATCH = 1000
# How far apart re-sends of an undelivered @internal task may grow, in grace periods.
DISPATCH_BACKOFF_GRACES = 16
# Errors after which the statement cannot have been applied, or is safe to send again:
# every statement here is idempotent on retry (ids are chosen by us, reports are fenced
# or refused by the state table, a repeated claim only costs a lease).
RETRYABLE = (
    asyncpg.ConnectionDoesNotExistError,
    # A connection whose termination notice arrived while it sat idle in the pool fails
    # its next query with a protocol-state error instead.
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    ConnectionError,
)
# A statement that lost a deadlock was rolled back whole: sent again, it applies once.
# Claims lock limited jobs' rows in id order; a report's trigger updates the rows of the
# jobs its tasks belong to in task order, so the two can meet in opposite orders.
DEADLOCK_RETRIES = 3


async def _init_connection(connection: asyncpg.Connection) -> None:
    # Ids as text: they go to JSON and back without becoming UUID objects in between.
    await connection.set_type_codec(
        "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset between calls: the statements leave no session state behind (no
    locks, listeners, cursors or settings). asyncpg's default reset would cost every call
    a second round trip."""


def record_at(row: asyncpg.Record, offset: int) -> TaskRecord:
    return TaskRecord(*row[offset : offset + WIDTH])


def _change(row: asyncpg.Record, offset: int, old_status: str | None) -> Change:
    return Change(record_at(row, offset), old_status, row["position"])


def _policy_args(policy: RetryPolicy) -> tuple[float, float, float, float]:
    return (policy.base_seconds, policy.max_seconds, JITTER_LOW, JITTER_HIGH)


class PostgresTaskStore:
    def __init__(self, database_url: str, pool_size: int) -> None:
        self._connect_args = asyncpg_connect_args(database_url)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        args = dict(self._connect_args)
        server_settings = {**args.pop("server_settings", {})}
        self._pool = await asyncpg.create_pool(
            **args,
            min_size=1,
            max_size=self._pool_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={
                **server_settings,
                "application_name": "jobserver-store",
                # Each statement is prepared once per connection and run thousands of
                # times: plan it once. PostgreSQL would otherwise re-plan the larger
                # statements (REPORT: ~0.7 ms) on every run before settling on a plan.
                "plan_cache_mode": "force_generic_plan",
                # Every statement here reads through an index. A plan made while the
                # tables were nearly empty would otherwise keep a sequential scan for
                # the connection's life, however large the tables grow.
                "enable_seqscan": "off",
            },
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _run(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return await self._run_connected(call)
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_RETRIES:
                    raise
                log.info("statement lost a deadlock; sending it again")
        raise AssertionError("unreachable")

    async def _run_connected(self, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        assert self._pool is not None, "the task store is not started"
        pool = self._pool
        for attempt in (1, 2):
            connection = await pool.acquire()
            try:
                return await call(connection)
            except RETRYABLE as exc:
                # The database dropped its connections (restart, failover,
                # pg_terminate_backend): every pooled one is suspect. Once more on a fresh
                # one, rather than a 500 for an operation nothing refused.
                with contextlib.suppress(asyncpg.InterfaceError):
                    connection.terminate()
                await pool.expire_connections()
                if attempt == 2:
                    raise
                log.warning("database connection lost (%s); retrying once", type(exc).__name__)
            finally:
                with contextlib.suppress(asyncpg.InterfaceError):
                    await pool.release(connection)
        raise AssertionError("unreachable")

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run(lambda connection: connection.fetch(query, *args))

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._run(lambda connection: connection.fetchrow(query, *args))

    async def now(self) -> datetime:
        value: datetime = await self._run(lambda connection: connection.fetchval(sql.NOW))
        return value

    # --- submit ------------------------------------------------------------------------
    async def submit(self, target: Target, tasks: Sequence[NewTask]) -> Inserted:
        if any(t.parents for t in tasks):
            keys = {t.id: t.idempotency_key for t in tasks}
            rows = await self._fetch(
                sql.SUBMIT_DEPENDANT,
                *self._many_args(target, tasks),
                [t.id for t in tasks for _ in t.parents],
                [p for t in tasks for p in t.parents],
                [keys.get(p) for t in tasks for p in t.parents],
            )
        elif len(tasks) == 1:
            task = tasks[0]
            rows = await self._fetch(
                sql.SUBMIT,
                task.id,
                target.job_name,
                target.room_id,
                task.payload,
                target.created_by,
                task.priority,
                task.run_at,
                task.delay_seconds,
                task.max_attempts,
                task.idempotency_key,
                list(target.runnable_internal),
                task.concurrency_key,
                target.checked_schema,
            )
        else:
            rows = await self._fetch(sql.SUBMIT_MANY, *self._many_args(target, tasks))
        return await self._inserted(target, tasks, rows)

    @staticmethod
    def _many_args(target: Target, tasks: Sequence[NewTask]) -> list[Any]:
        return [
            [t.id for t in tasks],
            target.job_name,
            target.room_id,
            [t.payload for t in tasks],
            target.created_by,
            [t.priority for t in tasks],
            [t.run_at for t in tasks],
            [t.delay_seconds for t in tasks],
            [t.max_attempts for t in tasks],
            [t.idempotency_key for t in tasks],
            list(target.runnable_internal),
            [t.concurrency_key for t in tasks],
            target.checked_schema,
        ]

    async def _inserted(
        self, target: Target, tasks: Sequence[NewTask], rows: list[asyncpg.Record]
    ) -> Inserted:
        first = rows[0]
        if first["j_id"] is None:
            return Inserted(None)
        job = JobRef(
            first["j_id"],
            first["j_deleted"],
            first["j_internal"],
            first["j_runnable"],
            first["j_validates"],
            first["j_schema"],
        )
        if job.schema_to_check is not None:
            return Inserted(job)
        payloads = {t.id: t.payload for t in tasks}
        views: dict[str, TaskView] = {}
        for row in rows:
            if row["seq"] is not None:
                record = record_at(row, sql.JOB_COLUMNS)
                record.payload = payloads[record.id]
                views[record.id] = TaskView(record, row["position"])
        created = [t.id in views for t in tasks]
        if job.deleted or not job.runnable or all(created):
            return Inserted(job, [views[t.id] for t in tasks if t.id in views], created)
        existing = await self._existing(job.id, target.room_id, tasks, views)
        return Inserted(job, [views.get(t.id) or existing[_key_of(t)] for t in tasks], created)

    async def _existing(
        self, job_id: str, room_id: str, tasks: Sequence[NewTask], views: dict[str, TaskView]
    ) -> dict[str, TaskView]:
        """Tasks that stood in for a submission: by its idempotency key, or by its own id
        when an answer was lost and the insert retried."""
        missing = [t for t in tasks if t.id not in views]
        rows = await self._fetch(
            sql.EXISTING,
            [t.id for t in missing],
            job_id,
            room_id,
            [t.idempotency_key for t in missing if t.idempotency_key is not None],
        )
        found: dict[str, TaskView] = {}
        for row in rows:
            view = TaskView(record_at(row, 0), row["position"])
            found[view.task.id] = view
            if view.task.idempotency_key is not None:
                found[f"key:{view.task.idempotency_key}"] = view
        return found

    # --- claim -------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, actor_id: str, limit: int, lease_seconds: float
    ) -> Claimed:
        rows = await self._fetch(sql.CLAIM, worker_id, actor_id, limit, float(lease_seconds))
        changes = [Change(record_at(row, 1), "pending") for row in rows if row["seq"] is not None]
        changes.sort(key=lambda c: (-c.task.priority, c.task.run_at, c.task.seq))
        return Claimed(rows[0]["owner"], changes)

    # --- judged writes -----------------------------------------------------------------
    async def report(
        self, reports: Sequence[Report], actor: Actor, policy: RetryPolicy
    ) -> Judgements:
        edge_from, edge_to = edge_arrays(Cause.REPORT)
        rows = await self._fetch(
            sql.REPORT,
            [r.task_id for r in reports],
            [str(r.status) for r in reports],
            [r.error for r in reports],
            [r.result for r in reports],
            [r.attempt for r in reports],
            [r.worker_id for r in reports],
            [r.traceback for r in reports],
            [_fingerprint(r) for r in reports],
            str(actor.id),
            actor.is_superuser,
            edge_from,
            edge_to,
            *_policy_args(policy),
        )
        return _judgements(rows)

    async def progress(
        self, item: ProgressReport, actor: Actor, every_seconds: float, *, ended_ok: bool
    ) -> Progressed:
        rows = await self._fetch(
            sql.PROGRESS,
            item.task_id,
            item.attempt,
            item.worker_id,
            str(actor.id),
            actor.is_superuser,
            ended_ok,
            float(every_seconds),
            float(item.progress),
            item.message,
        )
        row = rows[0]
        judged = Judged(
            Verdict(row["verdict"]), None, row["status"], row["attempt"], row["worker_id"]
        )
        return Progressed(judged, row["room_id"], row["job_name"], row["stored_at"])

    async def cancel(self, task_id: str, actor: Actor) -> Judgements:
        edge_from, edge_to = edge_arrays(Cause.CANCEL)
        rows = await self._fetch(
            sql.CANCEL, task_id, str(actor.id), actor.is_superuser, edge_from, edge_to
        )
        return _judgements(rows)

    async def retry(self, task_id: str, actor: Actor) -> Judgements:
        edge_from, edge_to = edge_arrays(Cause.RETRY)
        rows = await self._fetch(
            sql.RETRY, task_id, str(actor.id), actor.is_superuser, edge_from, edge_to
        )
        return _judgements(rows)

    async def release(self, task_id: str, attempt: int, worker_id: str, actor: Actor) -> Judgements:
        edge_from, edge_to = edge_arrays(Cause.RELEASE)
        rows = await self._fetch(
            sql.RELEASE,
            task_id,
            str(actor.id),
            actor.is_superuser,
            edge_from,
            edge_to,
            attempt,
            worker_id,
        )
        return _judgements(rows)

    # --- reads -------------------------------------------------------------------------
    async def get(self, task_id: str) -> TaskView | None:
        row = await self._fetchrow(sql.GET, task_id)
        return None if row is None else TaskView(record_at(row, 0), row["position"])

    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        return [record_at(row, 0) for row in await self._fetch(sql.GET_MANY, list(task_ids))]

    async def heartbeat(self, worker_id: str, actor_id: str) -> Beat:
        row = await self._fetchrow(sql.HEARTBEAT, worker_id, actor_id)
        assert row is not None
        return Beat(row["owner"], row["last_heartbeat"])

    async def worker_owner(self, worker_id: str) -> str | None:
        row = await self._fetchrow(sql.WORKER_OWNER, worker_id)
        return None if row is None else str(row["user_id"])

    async def provider_by_name(self, full_name: str) -> ProviderRef | None:
        row = await self._fetchrow(sql.PROVIDER_BY_NAME, full_name)
        return None if row is None else ProviderRef(*row)

    async def provider_by_id(self, provider_id: str) -> ProviderRef | None:
        row = await self._fetchrow(sql.PROVIDER_BY_ID, provider_id)
        return None if row is None else ProviderRef(*row)

    # --- the server's own transitions ------------------------------------------------
    async def cleanup_workers(
        self, selection: WorkerSelection, error: str, policy: RetryPolicy
    ) -> Cleanup:
        rows = await self._fetch(
            sql.CLEANUP_WORKERS,
            list(selection.ids),
            selection.silent_since,
            selection.stale_before,
            error,
            fingerprint_of(error, None),
            *_policy_args(policy),
        )
        first = rows[0]
        changes = [_change(row, 4, row["old_status"]) for row in rows if row["seq"] is not None]
        return Cleanup(
            worker_ids=list(first["worker_ids"] or []),
            changes=changes,
            job_rooms=sorted(first["job_rooms"] or []),
            provider_rooms=sorted(first["provider_rooms"] or []),
            orphan_rooms=sorted(first["orphan_rooms"] or []),
        )

    async def _moved(self, query: str, *args: Any) -> list[Change]:
        rows = await self._fetch(query, *args)
        return [_change(row, 0, row["old_status"]) for row in rows]

    async def expire_leases(self) -> list[Change]:
        return await self._moved(sql.EXPIRE_LEASES, SWEEP_BATCH)

    async def fail_timed_out(self, grace_seconds: float, policy: RetryPolicy) -> list[Change]:
        args = (float(grace_seconds), *_policy_args(policy))

        async def fail(connection: asyncpg.Connection) -> list[Change]:
            # Two statements, one transaction: the statement builds each error from its
            # job's timeout, then the tasks it failed get their fingerprints.
            async with connection.transaction():
                rows = await connection.fetch(sql.FAIL_TIMED_OUT, *args)
                changes = [_change(row, 0, row["old_status"]) for row in rows]
                failed = [c.task for c in changes if c.task.status == TaskStatus.FAILED]
                if failed:
                    await connection.execute(
                        sql.STAMP_FINGERPRINTS,
                        [t.id for t in failed],
                        [fingerprint_of(t.error, None) for t in failed],
                    )
            return changes

        return await self._run(fail)

    async def fail_stuck_internal(self, older_than_seconds: float, error: str) -> list[Change]:
        return await self._moved(
            sql.FAIL_STUCK_INTERNAL, float(older_than_seconds), error, fingerprint_of(error, None)
        )

    async def settle_children(self, parent_ids: Sequence[str]) -> list[Change]:
        return await self._moved(sql.SETTLE_CHILDREN, list(parent_ids))

    async def settle_waiting(self, limit: int) -> list[Change]:
        return await self._moved(sql.SETTLE_WAITING, limit)

    async def take_lost_dispatches(self, grace_seconds: float) -> list[str]:
        grace = float(grace_seconds)
        rows = await self._fetch(
            sql.TAKE_LOST_DISPATCHES, grace, grace * DISPATCH_BACKOFF_GRACES, SWEEP_BATCH
        )
        return [row["id"] for row in rows]

    async def delete_finished(self, older_than_seconds: float, limit: int) -> int:
        async def delete(connection: asyncpg.Connection) -> int:
            status: str = await connection.execute(
                sql.DELETE_FINISHED, float(older_than_seconds), limit
            )
            return int(status.rsplit(" ", 1)[-1])

        return await self._run(delete)

    async def count_active_under_limits(self) -> int:
        counted: int = await self._run(
            lambda connection: connection.fetchval(sql.COUNT_ACTIVE_UNDER_LIMITS)
        )
        return counted

    async def prune_throughput(self, older_than_seconds: float) -> None:
        await self._run(
            lambda connection: connection.execute(sql.PRUNE_THROUGHPUT, float(older_than_seconds))
        )

    async def due_heads(
        self, since: datetime | None, overlap_seconds: float, due_on_submit_seconds: float
    ) -> tuple[list[DueHead], datetime]:
        if since is None:
            rows = await self._fetch(sql.DUE_HEADS_ALL)
        else:
            rows = await self._fetch(
                sql.DUE_HEADS_SINCE, since, float(overlap_seconds), float(due_on_submit_seconds)
            )
        heads = [DueHead(r["job_name"], r["room_id"], r["id"]) for r in rows if r["id"] is not None]
        return heads, rows[0]["now"]


def _fingerprint(report: Report) -> str | None:
    """Only a failure report pays for a fingerprint; the statement keeps it only when the
    task stays failed (not re-queued). The error is stored as `NULLIF(error, '')`."""
    if report.status != TaskStatus.FAILED:
        return None
    return fingerprint_of(report.error or None, report.traceback)


def _key_of(task: NewTask) -> str:
    return f"key:{task.idempotency_key}" if task.idempotency_key is not None else task.id


def _judgements(rows: list[asyncpg.Record]) -> Judgements:
    items: list[Judged] = []
    for row in rows:
        verdict = Verdict(row["verdict"])
        change = None
        if row["seq"] is not None:
            old = row["old_status"] if verdict == Verdict.APPLY else row["status"]
            change = _change(row, 4, old)
        items.append(
            Judged(verdict, change, row["old_status"], row["old_attempt"], row["old_worker_id"])
        )
    orphan_rooms = sorted(rows[0]["orphan_rooms"] or []) if rows else []
    return Judgements(items, orphan_rooms)
