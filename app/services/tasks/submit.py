"""Submit: one task or a batch of one job, stored before the answer (one statement).

Checks in the contract's order (REST.md submit): room id, job name, the caller may write,
then, in the store's statement, the job exists and an @internal one has an executor here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from app.errors import Conflict, InternalJobNotConfigured, InvalidPayload, JobNotFound
from app.services import payload_schemas
from app.services.actors import Actor
from app.services.events import Event
from app.services.json_limits import DEFAULT_LIMITS, JsonLimits
from app.services.payload_schemas import JobSchema, KnownSchemas
from app.services.rooms import parse_full_name, validate_room_id
from app.services.tasks import dependencies, events
from app.services.tasks.records import Change, TaskView
from app.services.tasks.store import Inserted, NewTask, Target, TaskStore

# A job's schema changes only when a deleted job comes back with another one; a submit
# that meets more changes than this in a row gives up (409) rather than loop.
SCHEMA_ROUNDS = 4
# jsonschema is pure Python (tens of microseconds per payload): a batch this large is
# checked on a thread, so the event loop keeps serving meanwhile.
CHECK_ON_THREAD_FROM = 64


@dataclass(frozen=True)
class TaskOptions:
    """Beyond the contract; the defaults reproduce the contract's plain submit. Unset
    priority and max_attempts take the job's declared defaults (else 0 and 1)."""

    priority: int | None = None
    run_at: datetime | None = None
    delay_seconds: float | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    # Task ids, or indexes of earlier items of the same batch (resolved by `submit`).
    depends_on: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Submission:
    payload: dict[str, Any] = field(default_factory=dict)
    options: TaskOptions = field(default_factory=TaskOptions)
    # Where the payload was in the request (a JSON Pointer), to name it in a refusal.
    where: str = "/payload"

    def new_task(self, limits: JsonLimits) -> NewTask:
        o = self.options
        return NewTask(
            id=str(uuid.uuid4()),
            payload=limits.payload(self.payload).decode(),
            priority=o.priority,
            run_at=o.run_at,
            delay_seconds=o.delay_seconds,
            max_attempts=o.max_attempts,
            idempotency_key=o.idempotency_key,
            concurrency_key=o.concurrency_key,
        )


@dataclass(frozen=True)
class Submitted:
    """The tasks in submission order; `created` is False where an idempotency key named
    an existing task (nothing new was stored for it)."""

    views: list[TaskView]
    created: list[bool]
    events: list[Event]


async def submit(
    store: TaskStore,
    actor: Actor,
    room_id: str,
    job_name: str,
    submissions: Sequence[Submission],
    internal_jobs: Container[str],
    limits: JsonLimits = DEFAULT_LIMITS,
    readable_by: uuid.UUID | None = None,
    known: KnownSchemas | None = None,
) -> Submitted:
    """Queue every submission or none. An @internal task is stored `claimed` (no worker)
    so that a broker message lost after commit is re-sent by the leader, never lost.
    Parents named in `depends_on` must be readable by `readable_by` (None: any). A job
    that validates its payloads refuses them all (InvalidPayload) when one mismatches."""
    validate_room_id(room_id)
    if parse_full_name(job_name) is None:
        raise JobNotFound(f"Invalid job name format: {job_name}")
    actor.require_writer()
    runnable = [job_name] if job_name in internal_jobs else []
    target = Target(job_name, room_id, str(actor.id), runnable)
    tasks = [s.new_task(limits) for s in submissions]
    if any(s.options.depends_on for s in submissions):
        tasks = dependencies.with_parents(tasks, [s.options.depends_on for s in submissions])
        dependencies.refuse_internal(job_name, tasks)
        named = (p for s in submissions for p in s.options.depends_on if isinstance(p, str))
        await dependencies.check_parents(store, named, readable_by)
    inserted = await _insert_checked(store, target, tasks, submissions, known or KnownSchemas())
    job = inserted.job
    if job is None or job.deleted:
        raise JobNotFound(f"Job '{job_name}' not found")
    if not job.runnable:
        raise InternalJobNotConfigured(
            f"Internal job '{job_name}' is registered but no executor is available"
        )
    new = [
        Change(view.task, None, view.queue_position)
        for view, created in zip(inserted.views, inserted.created, strict=True)
        if created
    ]
    found = events.of_changes(new)
    due = [c.task for c in new if not c.task.internal and events.due_on_submit(c.task)]
    if due:
        # One wake-up per submit: a woken worker claims until the queue is empty. Delayed
        # tasks are announced by the scheduler pass once due.
        found.append(events.available(due[0]))
    return Submitted(inserted.views, inserted.created, found)


async def _insert_checked(
    store: TaskStore,
    target: Target,
    tasks: list[NewTask],
    submissions: Sequence[Submission],
    known: KnownSchemas,
) -> Inserted:
    """Insert the tasks, their payloads checked first when the job validates them.

    `known` guesses whether it does, so a submit usually costs one statement either way;
    the statement itself refuses payloads not checked against the job's current schema
    and answers with that schema, which is then learnt, checked, and sent again."""
    payloads = [(s.where, s.payload) for s in submissions]
    schema = known.get(target.job_name)
    confirmed = False  # `schema` came from the store in this call, not from `known`
    for _ in range(SCHEMA_ROUNDS):
        if schema is not None:
            try:
                await _check(schema, payloads)
            except InvalidPayload:
                if confirmed:
                    raise
                # The job may have stopped validating since it was learnt: ask the store.
                schema = None
                continue
        checked = None if schema is None else schema.text
        inserted = await store.submit(replace(target, checked_schema=checked), tasks)
        job = inserted.job
        if job is None or job.schema_to_check is None:
            known.learn(target.job_name, schema if job is not None and job.validates else None)
            return inserted
        schema = payload_schemas.compiled(orjson.loads(job.schema_to_check))
        known.learn(target.job_name, schema)
        confirmed = True
    raise Conflict(f"The schema of job '{target.job_name}' changed during the submit; try again")


async def _check(schema: JobSchema, payloads: list[tuple[str, dict[str, Any]]]) -> None:
    if len(payloads) < CHECK_ON_THREAD_FROM:
        schema.check(payloads)
    else:
        await asyncio.to_thread(schema.check, payloads)
