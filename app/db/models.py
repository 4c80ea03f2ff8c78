"""SQLAlchemy models: users, workers, jobs, worker-job links, tasks, providers.

Tasks carry the fields of what comes after the contract (priority, due time, attempts,
lease) with defaults that reproduce the contract's behaviour exactly.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.db.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite autoincrements only an INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

ROLES = ("admin", "operator", "viewer")
TASK_STATUSES = (
    "waiting",
    "pending",
    "claimed",
    "running",
    "completed",
    "failed",
    "cancelled",
)
STATUS_CHECK = "status IN ({})".format(", ".join(f"'{status}'" for status in TASK_STATUSES))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """An account. `role` and `is_superuser` always agree: admin <=> superuser."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(1024))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(16), default="operator")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    # Tokens carry the generation they were issued in; raising it ends them all.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),)


class Worker(Base):
    """A remote worker process, owned by the user that created it."""

    __tablename__ = "workers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())

    __table_args__ = (Index("ix_workers_last_heartbeat", "last_heartbeat"),)


class Job(Base):
    """A job type registered in a room. Never hard-deleted; `deleted` hides it."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    room_id: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(800), unique=True)
    schema_: Mapped[dict[str, Any]] = mapped_column("schema", JsonType, default=dict)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout_seconds: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    # The user who first registered the job: only they (or an admin) change its settings.
    registered_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # Flow control (beyond the contract). A declared job exists without workers: the
    # orphan rule never removes it, only a DELETE of its declaration.
    declared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Submits are checked against `schema_` (services/payload_schemas.py) and refused
    # with 422 when they do not match; off by default, as the contract's client expects.
    validate_payload: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Submit defaults where a submit names none.
    default_priority: Mapped[int | None] = mapped_column(Integer, default=None)
    default_max_attempts: Mapped[int | None] = mapped_column(Integer, default=None)
    # Concurrency limits: claimed or running tasks of the job, in all and per
    # concurrency_key. On PostgreSQL `active`/`active_keys` count the tasks claimed under
    # a limit (tasks.limited), kept by a trigger (migration 0005); claims lock the job row
    # and read them, so concurrent claimers queue on it instead of over-admitting.
    max_running: Mapped[int | None] = mapped_column(Integer, default=None)
    max_running_per_key: Mapped[int | None] = mapped_column(Integer, default=None)
    active: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active_keys: Mapped[dict[str, Any]] = mapped_column(
        JsonType, default=dict, server_default=text("'{}'")
    )

    __table_args__ = (
        UniqueConstraint("room_id", "category", "name", name="uq_jobs_room_category_name"),
    )


class WorkerJob(Base):
    """Which worker serves which job."""

    __tablename__ = "worker_jobs"

    worker_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Task(Base):
    """One submitted unit of work.

    `seq` is the insertion order (the tie-breaker wherever timestamps are equal);
    `id` is the public UUID. `worker_id` has no foreign key on purpose: it must survive
    the worker's deletion (contract REST.md, DELETE /workers).
    """

    __tablename__ = "tasks"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    job_name: Mapped[str] = mapped_column(String(800))
    room_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    result: Mapped[Any | None] = mapped_column(JsonType, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    worker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Beyond the contract; the defaults keep the contract's behaviour.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # Flow control (beyond the contract): the key the job's max_running_per_key counts by;
    # whether the task was claimed under a limit (counted in jobs.active); whether other
    # tasks wait on it (task_dependencies), so only such tasks settle dependants.
    concurrency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    limited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    has_dependants: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Beyond the contract: the running attempt's last progress report, and the traceback
    # its failure report carried (the attempts trigger copies it into task_attempts).
    # A claim clears all four, with `error`: they belong to the attempt that set them.
    traceback: Mapped[str | None] = mapped_column(Text, default=None)
    progress: Mapped[float | None] = mapped_column(Float, default=None)
    progress_message: Mapped[str | None] = mapped_column(Text, default=None)
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Set by the task store whenever the task becomes failed, whoever fails it, and
    # cleared by a retry: services/tasks/fingerprints.py (the error inbox groups by it).
    error_fingerprint: Mapped[str | None] = mapped_column(String(16), default=None)

    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status"),
        # The claim path and queue_position: only pending rows, in claim order.
        Index(
            "ix_tasks_claimable",
            "job_id",
            text("priority DESC"),
            "run_at",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The scheduler's "became due since" scan: only tasks due after their creation
        # (delayed, retried); a task due on submit was announced by the submit. Kept
        # small on purpose: an index over every pending task by time would tempt the
        # planner away from ix_tasks_claimable for a job's queue.
        Index(
            "ix_tasks_pending_due",
            "run_at",
            postgresql_where=text("status = 'pending' AND run_at > created_at"),
            sqlite_where=text("status = 'pending' AND run_at > created_at"),
        ),
        Index("ix_tasks_room_created", "room_id", "created_at", "seq"),
        Index("ix_tasks_job_room_created", "job_id", "room_id", "created_at", "seq"),
        Index("ix_tasks_worker_status", "worker_id", "status"),
        Index("ix_tasks_status_seq", "status", "seq"),
        # The dashboard's task list (services/task_browse.py): each filter walks its own
        # index in (created_at, seq) order, one page at a time.
        Index("ix_tasks_created", "created_at", "seq"),
        Index("ix_tasks_status_created", "status", "created_at", "seq"),
        Index("ix_tasks_job_created", "job_id", "created_at", "seq"),
        Index(
            "ix_tasks_worker_created",
            "worker_id",
            "created_at",
            "seq",
            postgresql_where=text("worker_id IS NOT NULL"),
            sqlite_where=text("worker_id IS NOT NULL"),
        ),
        # The lease sweep: external tasks claimed but not started.
        Index(
            "ix_tasks_claim_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'claimed' AND NOT internal"),
            sqlite_where=text("status = 'claimed' AND internal = 0"),
        ),
        # Retention and the newest failures: finished tasks by the time they finished.
        Index(
            "ix_tasks_finished",
            "completed_at",
            postgresql_where=text("status IN ('completed', 'failed', 'cancelled')"),
            sqlite_where=text("status IN ('completed', 'failed', 'cancelled')"),
        ),
        # The job page's percentiles: a job's newest completed tasks (migration 0009).
        Index(
            "ix_tasks_job_completed",
            "job_id",
            "completed_at",
            postgresql_where=text("status = 'completed'"),
            sqlite_where=text("status = 'completed'"),
        ),
        UniqueConstraint(
            "job_id", "room_id", "idempotency_key", name="uq_tasks_job_room_idempotency"
        ),
        # Concurrency limits: a job's claimed and running tasks, by key.
        Index(
            "ix_tasks_job_active",
            "job_id",
            "concurrency_key",
            postgresql_where=text("status IN ('claimed', 'running')"),
            sqlite_where=text("status IN ('claimed', 'running')"),
        ),
        # The error inbox (migration 0010): failed tasks by fingerprint. Grouping reads
        # only the index (job and finish time ride along); a group's tasks are a range
        # in (created_at, seq) order, as the task list pages them.
        Index(
            "ix_tasks_failed_fingerprint",
            "error_fingerprint",
            "created_at",
            "seq",
            "job_name",
            "completed_at",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
        # Dependencies: the repair pass over tasks still waiting on parents.
        Index(
            "ix_tasks_waiting",
            "seq",
            postgresql_where=text("status = 'waiting'"),
            sqlite_where=text("status = 'waiting'"),
        ),
    )


class TaskAttempt(Base):
    """One ended attempt of a task (beyond the contract): written by a trigger on `tasks`
    (migration 0006) whenever a claimed or running task moves on, whoever moves it; goes
    with its task."""

    __tablename__ = "task_attempts"

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # completed, failed, cancelled, released (handed back) or expired (lease ran out)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    traceback: Mapped[str | None] = mapped_column(Text, default=None)


class TaskDependency(Base):
    """`child_id` waits for `parent_id` to complete (beyond the contract). No foreign
    keys: retention deletes finished parents; a child settles before that."""

    __tablename__ = "task_dependencies"

    parent_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    child_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)


class Schedule(Base):
    """A task submitted by the leader at each fire time: by `cron` (in `timezone`) or
    every `every_seconds`. Each fire time is submitted once (its idempotency key)."""

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_name: Mapped[str] = mapped_column(String(800))
    room_id: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    cron: Mapped[str | None] = mapped_column(String(255), default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    every_seconds: Mapped[float | None] = mapped_column(default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    catch_up: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int | None] = mapped_column(Integer, default=None)
    max_attempts: Mapped[int | None] = mapped_column(Integer, default=None)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())

    __table_args__ = (
        CheckConstraint("(cron IS NULL) <> (every_seconds IS NULL)", name="one_rule"),
        # The leader's pass: enabled schedules by their next fire time.
        Index(
            "ix_schedules_due",
            "next_fire_at",
            postgresql_where=text("enabled"),
            sqlite_where=text("enabled = 1"),
        ),
        Index("ix_schedules_job_name", "job_name"),
    )


class TaskCount(Base):
    """How many tasks of a job, submitted to a room, are in a status now.

    Kept by database triggers on `tasks` (migration 0003), so every writer keeps it right
    and stats never scan the tasks table. PostgreSQL spreads each count over a few `shard`
    rows (by backend) so that concurrent writers do not queue on one row; readers sum.
    """

    __tablename__ = "task_counts"

    job_name: Mapped[str] = mapped_column(String(800), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class TaskThroughput(Base):
    """Tasks that reached a terminal status, per minute (kept by the same triggers).

    Throughput and failure rates over the last minutes or hours come from here; the
    leader deletes minutes older than a day."""

    __tablename__ = "task_throughput"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    job_name: Mapped[str] = mapped_column(String(800), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class Provider(Base):
    """A server-dispatched read handler served by a worker."""

    __tablename__ = "providers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    room_id: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(800), unique=True)
    schema_: Mapped[dict[str, Any]] = mapped_column("schema", JsonType, default=dict)
    content_type: Mapped[str] = mapped_column(String(255), default="application/json")
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    worker_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow())

    __table_args__ = (
        UniqueConstraint("room_id", "category", "name", name="uq_providers_room_category_name"),
    )


@event.listens_for(Session, "before_flush")
def _keep_role_and_superuser_in_step(session: Session, *_: object) -> None:
    """fastapi-users writes `is_superuser`, our services write `role`: keep them equal.
    Any user change also clears the session's actor cache (services/actor_cache.py)."""
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, User):
            continue
        cache = session.info.get("actor_cache")
        if cache is not None:
            cache.clear()
        if obj in session.deleted:
            continue
        state = inspect(obj)
        if obj in session.new and obj.role is None:
            obj.role = "admin" if obj.is_superuser else "operator"
        if obj in session.new or state.attrs.role.history.has_changes():
            obj.is_superuser = obj.role == "admin"
        elif state.attrs.is_superuser.history.has_changes():
            if obj.is_superuser:
                obj.role = "admin"
            elif obj.role == "admin":
                obj.role = "operator"


# Changes after which a user's existing tokens, cookies and sockets must stop working.
REVOKING_USER_FIELDS = ("hashed_password", "role", "is_superuser", "is_active")


@event.listens_for(Session, "before_flush")
def _revoke_tokens_on_credential_change(session: Session, *_: object) -> None:
    """A changed password, role or active flag raises the user's token generation, whoever
    writes it (REST, dashboard, CLI), so tokens minted before stop working."""
    for obj in session.dirty:
        if not isinstance(obj, User):
            continue
        state = inspect(obj)
        if state.attrs.token_generation.history.has_changes():
            continue  # revoked explicitly in this flush already
        if any(state.attrs[name].history.has_changes() for name in REVOKING_USER_FIELDS):
            obj.token_generation = (obj.token_generation or 0) + 1
