"""Every statement of the PostgreSQL task store, as SQL.

Each call of the hot path is one statement (one round trip, its own transaction): CTEs
lock the row, judge the request in the order REST.md gives (404, fence, authorization,
state table; app/services/tasks/guard.py says the same in Python), write, and return the
row. Allowed edges come in as parameters from the state table (services/tasks/states.py).
Counters (`task_counts`, `task_throughput`) are kept by triggers (migration 0003).

Conventions: ids travel as text (the pool decodes uuid as text), JSON as text; every
statement that returns tasks returns the columns of TaskRecord in order (`task_columns`).
"""

from __future__ import annotations

from app.services.tasks.records import COLUMNS

TERMINAL = "('completed', 'failed', 'cancelled')"


def task_columns(alias: str, *, payload: bool = True) -> str:
    """The TaskRecord columns of `alias`; without `payload` it comes back NULL (the caller
    has it already: an insert's own input)."""
    return ", ".join(
        f"{alias}.{name}" if payload or name != "payload" else "NULL::text AS payload"
        for name in COLUMNS
    )


def _behind(alias: str) -> str:
    """Pending tasks of the job that a claim would take after `alias` (claim order:
    priority DESC, due time, insertion): two ranges of ix_tasks_claimable (job_id,
    priority DESC, run_at, seq). A task just queued has next to nothing behind it."""
    return (
        f"((SELECT count(*) FROM tasks p WHERE p.status = 'pending' AND p.job_id = {alias}.job_id "
        f"AND p.priority < {alias}.priority) "
        f"+ (SELECT count(*) FROM tasks p WHERE p.status = 'pending' AND p.job_id = {alias}.job_id "
        f"AND p.priority = {alias}.priority AND (p.run_at, p.seq) > ({alias}.run_at, {alias}.seq)))"
    )


def _pending_total(alias: str) -> str:
    """How many tasks of the job are pending, from the trigger-kept counters (consistent
    with the rows: the same transactions write both)."""
    return (
        "(SELECT COALESCE(sum(c.n), 0)::bigint FROM task_counts c "
        f"WHERE c.job_name = {alias}.job_name AND c.status = 'pending')"
    )


def position(alias: str, *, counted: bool = True) -> str:
    """The 1-based rank of a pending task among its job's pending tasks, as the job's
    pending total minus those behind it: a count over the tasks behind (few, for a task
    just queued) instead of over the whole queue ahead. `counted`: the task is pending in
    the statement's snapshot; a row this statement writes is not, so it adds itself."""
    itself = "" if counted else " + 1"
    return (
        f"CASE WHEN {alias}.status = 'pending' "
        f"THEN {_pending_total(alias)} - {_behind(alias)}{itself} END"
    )


# A retried attempt is due after min(cap, base * 2^attempt), jittered (services/tasks/retry.py).
def _backoff(attempt: str) -> str:
    return (
        f"now() + make_interval(secs => LEAST($cap::float8, $base::float8 * power(2, {attempt})) "
        "* ($low::float8 + ($high::float8 - $low::float8) * random()))"
    )


def _numbered(sql: str, names: list[str]) -> str:
    """Name the parameters in the text ($base, ...) and number them in `names` order."""
    for index, name in sorted(enumerate(names, 1), key=lambda item: -len(item[1])):
        sql = sql.replace(f"${name}", f"${index}")
    return sql


# --- submit --------------------------------------------------------------------------------

# `checked`: a job that validates its payloads takes only payloads checked against its
# own schema (jsonb equality: key order and number spelling do not matter); otherwise
# nothing is inserted and the schema comes back, to be checked against.
_JOB = """
job AS (
    SELECT id, deleted, room_id = '@internal' AS internal,
           (room_id <> '@internal' OR full_name = ANY($runnable::text[])) AS runnable,
           default_priority, default_max_attempts, validate_payload,
           (NOT validate_payload OR COALESCE("schema" = $checked_schema::jsonb, false))
               AS checked,
           "schema"
    FROM jobs WHERE full_name = $job_name
)"""
_JOB_COLUMNS = (
    "job.id AS j_id, job.deleted AS j_deleted, job.internal AS j_internal, "
    "job.runnable AS j_runnable, job.validate_payload AS j_validates, "
    'CASE WHEN job.checked OR job.deleted OR NOT job.runnable THEN NULL ELSE job."schema" END '
    "AS j_schema"
)
# How many columns of a submit's rows come before the task's (postgres.record_at).
JOB_COLUMNS = _JOB_COLUMNS.count(" AS ")
_INSERT_INTO = """INSERT INTO tasks (id, job_id, job_name, room_id, status, payload, created_by,
                       internal, created_at, claimed_at, priority, run_at, attempt,
                       max_attempts, idempotency_key, concurrency_key)"""
# An @internal task is stored `claimed` (worker-less): a broker message lost after the
# commit is then re-sent by the leader's repair pass, never left pending.
_NEW_STATUS = "CASE WHEN job.internal THEN 'claimed' ELSE 'pending' END"

SUBMIT = _numbered(
    f"""
WITH {_JOB}, ins AS (
    {_INSERT_INTO}
    SELECT $id, job.id, $job_name, $room_id, {_NEW_STATUS}, $payload::jsonb, $created_by,
           job.internal, now(), CASE WHEN job.internal THEN now() END,
           COALESCE($priority::int, job.default_priority, 0),
           COALESCE($run_at, now() + make_interval(secs => COALESCE($delay::float8, 0))), 1,
           COALESCE($max_attempts::int, job.default_max_attempts, 1), $key, $concurrency_key
    FROM job WHERE NOT job.deleted AND job.runnable AND job.checked
    -- A key already used (or this id, when a lost answer is retried) inserts nothing.
    ON CONFLICT DO NOTHING
    RETURNING {task_columns("tasks", payload=False)}
)
SELECT {_JOB_COLUMNS}, {task_columns("ins")}, {position("ins", counted=False)} AS position
FROM (SELECT 1) AS one LEFT JOIN job ON true LEFT JOIN ins ON true
""",
    [
        "id",
        "job_name",
        "room_id",
        "payload",
        "created_by",
        "priority",
        "run_at",
        "delay",
        "max_attempts",
        "key",
        "runnable",
        "concurrency_key",
        "checked_schema",
    ],
)

# Dependencies (a separate statement, so that a submit without them costs what it did):
# the edges (child, parent) arrive as two arrays; the parents that exist are marked
# `has_dependants` (a row lock: a parent's end commits before or after this, never
# unseen), and a child waits unless every parent had completed. A parent inserted by the
# same statement (an earlier item) is not in `marked`, so its children wait.
_EDGES = """
edges AS (
    -- An earlier item whose idempotency key names an existing task stands for that task.
    SELECT e.child, COALESCE(k.id, e.parent) AS parent
    FROM unnest($edge_children::uuid[], $edge_parents::uuid[], $edge_parent_keys::text[])
         AS e(child, parent, parent_key)
    LEFT JOIN tasks k ON e.parent_key IS NOT NULL AND k.job_id = (SELECT id FROM job)
                     AND k.room_id = $room_id AND k.idempotency_key = e.parent_key
), locked AS (
    -- In seq order, as every statement here locks tasks: no deadlock with another.
    SELECT seq FROM tasks WHERE id IN (SELECT parent FROM edges)
    ORDER BY seq
    FOR NO KEY UPDATE
), marked AS (
    UPDATE tasks p SET has_dependants = true FROM locked l WHERE p.seq = l.seq
    RETURNING p.id, p.status
),"""
_WAITS = (
    "EXISTS (SELECT 1 FROM edges e LEFT JOIN marked m ON m.id = e.parent "
    "WHERE e.child = u.id AND m.status IS DISTINCT FROM 'completed')"
)
_DEPENDANT_TAIL = """, deps AS (
    INSERT INTO task_dependencies (parent_id, child_id)
    SELECT e.parent, e.child FROM edges e WHERE e.child IN (SELECT id FROM ins)
    ON CONFLICT DO NOTHING
)"""


def _submit_many(*, dependant: bool) -> str:
    """Many tasks of one job: the rows travel as one array per column, so a batch of
    1,000 is one short prepared statement. Positions: one window over the job's pending
    tasks. `dependant`: with the edges of depends_on (see _EDGES)."""
    status = (
        f"CASE WHEN job.internal THEN 'claimed' WHEN {_WAITS} THEN 'waiting' ELSE 'pending' END"
    )
    insert_into = _INSERT_INTO
    if dependant:
        insert_into = _INSERT_INTO.replace("concurrency_key)", "concurrency_key, has_dependants)")
    sql = f"""
WITH {_JOB}, {_EDGES if dependant else ""} ins AS (
    {insert_into}
    SELECT u.id, job.id, $job_name, $room_id, {status if dependant else _NEW_STATUS},
           u.payload::jsonb, $created_by,
           job.internal, now(), CASE WHEN job.internal THEN now() END,
           COALESCE(u.priority, job.default_priority, 0),
           COALESCE(u.run_at, now() + make_interval(secs => COALESCE(u.delay, 0))), 1,
           COALESCE(u.max_attempts, job.default_max_attempts, 1), u.key, u.concurrency_key
           {", u.id IN (SELECT parent FROM edges)" if dependant else ""}
    FROM job, unnest($ids::uuid[], $payloads::text[], $priorities::int[],
                     $run_ats::timestamptz[], $delays::float8[], $max_attempts::int[],
                     $keys::text[], $concurrency_keys::text[]) WITH ORDINALITY
         AS u(id, payload, priority, run_at, delay, max_attempts, key, concurrency_key, ord)
    WHERE NOT job.deleted AND job.runnable AND job.checked
    ORDER BY u.ord
    ON CONFLICT DO NOTHING
    RETURNING {task_columns("tasks", payload=False)}
){_DEPENDANT_TAIL if dependant else ""}, ranked AS (
    SELECT q.seq, row_number() OVER (ORDER BY q.priority DESC, q.run_at, q.seq) AS position
    FROM (
        SELECT seq, priority, run_at FROM tasks
        WHERE job_id = (SELECT id FROM job) AND status = 'pending'
        UNION ALL
        SELECT seq, priority, run_at FROM ins WHERE status = 'pending'
    ) AS q
)
SELECT {_JOB_COLUMNS}, {task_columns("ins")}, ranked.position
FROM (SELECT 1) AS one LEFT JOIN job ON true LEFT JOIN ins ON true
LEFT JOIN ranked ON ranked.seq = ins.seq
"""
    names = [
        "ids",
        "job_name",
        "room_id",
        "payloads",
        "created_by",
        "priorities",
        "run_ats",
        "delays",
        "max_attempts",
        "keys",
        "runnable",
        "concurrency_keys",
        "checked_schema",
    ]
    if dependant:
        names += ["edge_children", "edge_parents", "edge_parent_keys"]
    return _numbered(sql, names)


SUBMIT_MANY = _submit_many(dependant=False)
SUBMIT_DEPENDANT = _submit_many(dependant=True)

# Tasks an idempotency key (or a retried id) already named: read after the insert.
EXISTING = f"""
SELECT {task_columns("t")}, {position("t")} AS position FROM tasks t
WHERE t.id = ANY($1::uuid[])
   OR (t.job_id = $2 AND t.room_id = $3 AND t.idempotency_key = ANY($4::text[]))
"""

# --- claim ---------------------------------------------------------------------------------

# A job with either limit set; its claims are counted (tasks.limited, jobs.active).
_HAS_LIMITS = "(j.max_running IS NOT NULL OR j.max_running_per_key IS NOT NULL)"
# Whether a task's key still has room, by the job's counters (`g`) plus `extra` tasks of
# the key taken before it in this statement. A task without a key has only max_running.
_KEY_HAS_ROOM = (
    "({task}.concurrency_key IS NULL OR g.max_running_per_key IS NULL "
    "OR COALESCE((g.active_keys ->> {task}.concurrency_key)::int, 0) + {extra} "
    "<= g.max_running_per_key)"
)

# Jobs without limits: one LATERAL probe per linked job takes the head of that job's slice
# of ix_tasks_claimable (FOR UPDATE SKIP LOCKED: concurrent claimers pass each other's rows
# instead of queueing, and a row claimed meanwhile is re-checked and passed over); the
# heads are compared. Ownership rides in the same statement; the owner comes back so a
# claim of nothing can say why without a second round trip.
#
# Jobs with limits (beyond the contract): a count of active tasks read in the statement's
# snapshot would miss claims committed since it was taken, so the limits are judged on the
# job row's counters (kept by the trigger of migration 0005) read under the row's lock.
# `gate` locks the worker's limited jobs in id order: a concurrent claimer queues there,
# and when it gets the lock it reads the row as last committed (READ COMMITTED re-reads a
# row it had to wait for), counts included. Each such job's probe runs after its row is
# locked (a LATERAL over `gate` pulls the row first) and takes at most the room left under
# max_running, skipping keys already full; `gated` numbers the tasks of each key so that
# those that would overfill it within this batch are dropped (a batch may come back short
# of a key-heavy head; the next claim takes the rest). The tasks taken are marked
# `limited`, which makes the trigger count them.
CLAIM = _numbered(
    f"""
WITH worker AS (
    SELECT user_id FROM workers WHERE id = $worker_id
), gate AS MATERIALIZED (
    SELECT j.id, j.max_running, j.max_running_per_key, j.active, j.active_keys
    FROM worker_jobs l JOIN jobs j ON j.id = l.job_id
    WHERE l.worker_id = $worker_id AND NOT j.paused AND {_HAS_LIMITS}
      AND EXISTS (SELECT 1 FROM worker WHERE user_id = $actor)
    ORDER BY j.id
    FOR UPDATE OF j
), gated AS (
    SELECT head.*, g.max_running_per_key, g.active_keys,
           row_number() OVER (PARTITION BY g.id, head.concurrency_key
                              ORDER BY head.priority DESC, head.run_at, head.seq) AS nth
    FROM gate g
    CROSS JOIN LATERAL (
        SELECT t.seq, t.priority, t.run_at, t.concurrency_key FROM tasks t
        WHERE t.job_id = g.id AND t.status = 'pending' AND NOT t.internal
          AND t.run_at <= now() AND {_KEY_HAS_ROOM.format(task="t", extra=1)}
        ORDER BY t.priority DESC, t.run_at, t.seq
        LIMIT LEAST($limit, GREATEST(COALESCE(g.max_running - g.active, $limit), 0))
        FOR UPDATE SKIP LOCKED
    ) AS head
), candidates AS (
    SELECT head.seq, head.priority, head.run_at FROM worker_jobs l
    JOIN jobs j ON j.id = l.job_id AND NOT j.paused AND NOT {_HAS_LIMITS}
    CROSS JOIN LATERAL (
        SELECT t.seq, t.priority, t.run_at FROM tasks t
        WHERE t.job_id = l.job_id AND t.status = 'pending' AND NOT t.internal
          AND t.run_at <= now()
        ORDER BY t.priority DESC, t.run_at, t.seq
        LIMIT $limit
        FOR UPDATE SKIP LOCKED
    ) AS head
    WHERE l.worker_id = $worker_id AND EXISTS (SELECT 1 FROM worker WHERE user_id = $actor)
    UNION ALL
    SELECT g.seq, g.priority, g.run_at FROM gated g
    WHERE {_KEY_HAS_ROOM.format(task="g", extra="g.nth")}
    ORDER BY priority DESC, run_at, seq
    LIMIT $limit
), claimed AS (
    -- By an array of seqs, not a join: a join's plan, made once for every run, may walk
    -- pk_tasks from its start. A task of a locked (limited) job came from `gated`.
    UPDATE tasks t
    SET status = 'claimed', worker_id = $worker_id, claimed_at = now(),
        lease_expires_at = now() + make_interval(secs => $lease),
        error = NULL, traceback = NULL, progress = NULL, progress_message = NULL,
        progress_at = NULL,
        limited = EXISTS (SELECT 1 FROM gate g WHERE g.id = t.job_id)
    WHERE t.seq = ANY (ARRAY(SELECT seq FROM candidates))
    RETURNING {task_columns("t")}
)
SELECT (SELECT user_id FROM worker) AS owner, {task_columns("claimed")}
FROM (SELECT 1) AS one LEFT JOIN claimed ON true
""",
    ["worker_id", "actor", "limit", "lease"],
)

# --- reports (PATCH, single or batch) -------------------------------------------------------

# `changes` must yield (ord, seq, verdict, old_status, old_attempt, old_worker_id) per item
# and an UPDATE CTE `upd` returning the task columns plus `ord_`; then this tail returns one
# row per item, the task as it is now when applied, and the rooms of orphaned jobs.
_ORPHANS = f"""
orphaned AS (
    -- REST.md: a job with no worker links and no pending task is soft-deleted when one
    -- of its tasks ends (never @internal, never a declared job; waiting tasks count as
    -- pending). The snapshot still shows this statement's
    -- rows as they were, hence the two exclusions.
    UPDATE jobs j SET deleted = true
    WHERE j.id IN (SELECT u.job_id FROM upd u WHERE u.status IN {TERMINAL})
      AND NOT j.deleted AND NOT j.declared AND j.room_id <> '@internal'
      AND NOT EXISTS (SELECT 1 FROM worker_jobs l WHERE l.job_id = j.id)
      AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.job_id = j.id AND p.status = 'pending'
                      AND p.seq NOT IN (SELECT seq FROM upd))
      AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.job_id = j.id AND p.status = 'waiting'
                      AND p.seq NOT IN (SELECT seq FROM upd))
      AND NOT EXISTS (SELECT 1 FROM upd u WHERE u.job_id = j.id AND u.status = 'pending')
    RETURNING j.room_id
)"""
_JUDGED_TAIL = f"""
SELECT j.verdict, j.old_status, j.old_attempt, j.old_worker_id, {task_columns("u")},
       {position("u", counted=False)} AS position,
       (SELECT array_agg(DISTINCT room_id) FROM orphaned) AS orphan_rooms
FROM judged j LEFT JOIN upd u ON u.ord_ = j.ord
ORDER BY j.ord
"""

# Judged per item, in REST.md's order: 404, fence, authorization (an admin; the
# submitter withdrawing its pending task; else the owner of the holding worker), a fenced
# repeat of the current status (idempotent), the state table. A failure with attempts
# left is re-queued (attempt + 1, due after the backoff).
REPORT = _numbered(
    f"""
WITH req AS (
    SELECT * FROM unnest($ids::uuid[], $statuses::text[], $errors::text[], $results::text[],
                         $attempts::int[], $worker_ids::uuid[], $tracebacks::text[],
                         $fingerprints::text[])
        WITH ORDINALITY AS r(id, status, error, result, attempt, worker_id, traceback,
                             fingerprint, ord)
), edges AS (
    SELECT * FROM unnest($edge_from::text[], $edge_to::text[]) AS e(old, new)
), cur AS (
    SELECT r.ord, t.seq, t.status, t.attempt, t.max_attempts, t.worker_id, t.internal,
           t.created_by, w.user_id AS owner
    FROM req r JOIN tasks t ON t.id = r.id LEFT JOIN workers w ON w.id = t.worker_id
    ORDER BY t.seq
    FOR UPDATE OF t
), judged AS (
    SELECT r.ord, r.status AS wanted, r.error, r.result, r.traceback, r.fingerprint, c.seq,
           c.status AS old_status,
           c.attempt AS old_attempt, c.worker_id AS old_worker_id,
           (r.status = 'failed' AND NOT c.internal AND c.attempt < c.max_attempts) AS requeue,
           CASE
             WHEN c.seq IS NULL THEN 'not_found'
             WHEN (r.attempt IS NOT NULL AND r.attempt <> c.attempt)
               OR (r.worker_id IS NOT NULL AND r.worker_id IS DISTINCT FROM c.worker_id)
               THEN 'stale'
             WHEN $admin OR w.withdraws THEN
               CASE
                 WHEN r.attempt IS NOT NULL AND r.worker_id IS NOT NULL AND c.status = r.status
                   THEN 'repeat'
                 WHEN (c.status, r.status) NOT IN (SELECT * FROM edges) THEN 'invalid'
                 ELSE 'apply'
               END
             WHEN c.worker_id IS NULL THEN 'unclaimed'
             WHEN c.owner IS DISTINCT FROM $actor THEN 'not_yours'
             WHEN r.attempt IS NOT NULL AND r.worker_id IS NOT NULL AND c.status = r.status
               THEN 'repeat'
             WHEN (c.status, r.status) NOT IN (SELECT * FROM edges) THEN 'invalid'
             ELSE 'apply'
           END AS verdict
    FROM req r LEFT JOIN cur c ON c.ord = r.ord
    -- [ours] the submitter may withdraw its own task while no worker has it
    CROSS JOIN LATERAL (
        SELECT (c.created_by IS NOT DISTINCT FROM $actor AND c.status = 'pending'
                AND r.status = 'cancelled') AS withdraws
    ) AS w
), upd AS (
    -- A repeat is written unchanged: it returns the row as it is, with no event.
    UPDATE tasks t SET
        status = CASE WHEN g.verdict = 'repeat' THEN t.status
                      WHEN g.requeue THEN 'pending' ELSE g.wanted END,
        attempt = CASE WHEN g.verdict = 'apply' AND g.requeue THEN t.attempt + 1 ELSE t.attempt END,
        run_at = CASE WHEN g.verdict = 'apply' AND g.requeue THEN {_backoff("t.attempt")}
                      ELSE t.run_at END,
        worker_id = CASE WHEN g.verdict = 'apply' AND g.requeue THEN NULL ELSE t.worker_id END,
        claimed_at = CASE WHEN g.verdict = 'apply' AND g.requeue THEN NULL ELSE t.claimed_at END,
        started_at = CASE WHEN g.verdict <> 'apply' THEN t.started_at
                          WHEN g.requeue THEN NULL
                          WHEN g.wanted = 'running' THEN now() ELSE t.started_at END,
        completed_at = CASE WHEN g.verdict <> 'apply' OR g.requeue THEN t.completed_at
                            WHEN g.wanted IN {TERMINAL} THEN now() ELSE t.completed_at END,
        lease_expires_at = CASE WHEN g.verdict = 'apply' AND g.wanted <> 'claimed' THEN NULL
                                ELSE t.lease_expires_at END,
        error = CASE WHEN g.verdict <> 'apply' THEN t.error
                     WHEN g.requeue THEN COALESCE(NULLIF(g.error, ''), t.error)
                     WHEN g.wanted IN {TERMINAL} THEN NULLIF(g.error, '')
                     ELSE t.error END,
        result = CASE WHEN g.verdict = 'apply' AND g.wanted = 'completed' AND g.result IS NOT NULL
                      THEN g.result::jsonb ELSE t.result END,
        traceback = CASE WHEN g.verdict = 'apply' THEN g.traceback ELSE t.traceback END,
        -- Only a task that stays failed carries one (a re-queued failure is pending).
        error_fingerprint = CASE WHEN g.verdict <> 'apply' THEN t.error_fingerprint
                                 WHEN g.wanted = 'failed' AND NOT g.requeue THEN g.fingerprint
                                 END
    FROM judged g
    WHERE t.seq = g.seq AND g.verdict IN ('apply', 'repeat')
    RETURNING {task_columns("t")}, g.ord AS ord_
), {_ORPHANS}
{_JUDGED_TAIL}
""",
    [
        "ids",
        "statuses",
        "errors",
        "results",
        "attempts",
        "worker_ids",
        "tracebacks",
        "fingerprints",
        "actor",
        "admin",
        "edge_from",
        "edge_to",
        "base",
        "cap",
        "low",
        "high",
    ],
)

# --- cancel, retry, release (one task each, beyond the contract) ---------------------------

_ONE_TASK = """
cur AS (
    SELECT 1 AS ord, t.seq, t.status, t.attempt, t.max_attempts, t.worker_id, t.internal,
           t.created_by, t.job_id, w.user_id AS owner,
           EXISTS (SELECT 1 FROM worker_jobs l JOIN workers lw ON lw.id = l.worker_id
                   WHERE l.job_id = t.job_id AND lw.user_id = $actor) AS serves_job,
           (SELECT deleted FROM jobs WHERE id = t.job_id) AS job_deleted
    FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
    WHERE t.id = $id
    FOR UPDATE OF t
)"""
_ONE_JUDGED = """
judged AS (
    SELECT 1 AS ord, c.seq, c.status AS old_status, c.attempt AS old_attempt,
           c.worker_id AS old_worker_id,
           CASE
             WHEN c.seq IS NULL THEN 'not_found'
             {rules}
             ELSE 'apply'
           END AS verdict
    FROM (SELECT 1) AS one LEFT JOIN cur c ON true
)"""
# The submitter, an owner of a worker serving the job or holding the task, or an admin.
_HAS_SAY = (
    "($admin OR c.created_by IS NOT DISTINCT FROM $actor OR c.serves_job "
    "OR c.owner IS NOT DISTINCT FROM $actor)"
)
CANCELLED_LITERAL = "'cancelled'"
PENDING_LITERAL = "'pending'"
_IN_EDGES = "(c.status, {target}) IN (SELECT * FROM unnest($edge_from::text[], $edge_to::text[]))"

_CANCEL_RULES = (
    f"WHEN NOT {_HAS_SAY} THEN 'forbidden' "
    f"WHEN NOT {_IN_EDGES.format(target=CANCELLED_LITERAL)} THEN 'invalid'"
)
CANCEL = _numbered(
    f"""
WITH {_ONE_TASK}, {_ONE_JUDGED.format(rules=_CANCEL_RULES)}, upd AS (
    UPDATE tasks t SET status = 'cancelled', completed_at = now(), lease_expires_at = NULL,
        error = NULL
    FROM judged g WHERE t.seq = g.seq AND g.verdict = 'apply'
    RETURNING {task_columns("t")}, g.ord AS ord_
), {_ORPHANS}
{_JUDGED_TAIL}
""",
    ["id", "actor", "admin", "edge_from", "edge_to"],
)

# A new attempt, due now, with one more attempt allowed; refused for @internal tasks and
# for a job that lost its last worker (nothing would run it).
_RETRY_RULES = (
    f"WHEN NOT {_HAS_SAY} THEN 'forbidden' "
    f"WHEN c.internal OR NOT {_IN_EDGES.format(target=PENDING_LITERAL)} THEN 'invalid' "
    "WHEN c.job_deleted IS NOT FALSE THEN 'job_gone'"
)
RETRY = _numbered(
    f"""
WITH {_ONE_TASK}, {_ONE_JUDGED.format(rules=_RETRY_RULES)}, upd AS (
    UPDATE tasks t SET status = 'pending', attempt = t.attempt + 1,
        max_attempts = GREATEST(t.max_attempts, t.attempt + 1), run_at = now(),
        worker_id = NULL, claimed_at = NULL, started_at = NULL, completed_at = NULL,
        lease_expires_at = NULL, error_fingerprint = NULL
    FROM judged g WHERE t.seq = g.seq AND g.verdict = 'apply'
    RETURNING {task_columns("t")}, g.ord AS ord_
), orphaned AS (SELECT NULL::text AS room_id WHERE false)
{_JUDGED_TAIL}
""",
    ["id", "actor", "admin", "edge_from", "edge_to"],
)

# Handed back by the worker holding the current attempt: pending again, due now, with the
# attempt counter (the fencing token) advanced and no attempt spent.
_RELEASE_RULES = (
    "WHEN c.attempt <> $attempt OR c.worker_id IS DISTINCT FROM $worker_id THEN 'stale' "
    "WHEN NOT $admin AND c.owner IS DISTINCT FROM $actor THEN 'forbidden' "
    f"WHEN NOT {_IN_EDGES.format(target=PENDING_LITERAL)} THEN 'invalid'"
)
RELEASE = _numbered(
    f"""
WITH {_ONE_TASK}, {_ONE_JUDGED.format(rules=_RELEASE_RULES)}, upd AS (
    UPDATE tasks t SET status = 'pending', attempt = t.attempt + 1,
        max_attempts = t.max_attempts + 1, run_at = now(), worker_id = NULL,
        claimed_at = NULL, started_at = NULL, lease_expires_at = NULL
    FROM judged g WHERE t.seq = g.seq AND g.verdict = 'apply'
    RETURNING {task_columns("t")}, g.ord AS ord_
), orphaned AS (SELECT NULL::text AS room_id WHERE false)
{_JUDGED_TAIL}
""",
    ["id", "actor", "admin", "edge_from", "edge_to", "attempt", "worker_id"],
)

# A progress report on the current attempt (beyond the contract): fenced like a release,
# by the holding worker's owner or an admin, on an active task (or, with $ended_ok, one
# this attempt ended: a deferred report); at most one write per $every seconds per task.
PROGRESS = _numbered(
    f"""
WITH cur AS (
    SELECT t.seq, t.status, t.attempt, t.worker_id, t.room_id, t.job_name, t.progress_at,
           w.user_id AS owner
    FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
    WHERE t.id = $id
    FOR UPDATE OF t
), judged AS (
    SELECT c.*,
           CASE
             WHEN c.seq IS NULL THEN 'not_found'
             WHEN c.attempt <> $attempt OR c.worker_id IS DISTINCT FROM $worker_id THEN 'stale'
             WHEN NOT $admin AND c.owner IS DISTINCT FROM $actor THEN 'not_yours'
             WHEN c.status NOT IN ('claimed', 'running')
                  AND NOT ($ended_ok AND c.status IN {TERMINAL}) THEN 'invalid'
             WHEN c.progress_at > now() - make_interval(secs => $every) THEN 'throttled'
             ELSE 'apply'
           END AS verdict
    FROM (SELECT 1) AS one LEFT JOIN cur c ON true
), upd AS (
    UPDATE tasks t SET progress = $progress, progress_message = $message, progress_at = now()
    FROM judged g WHERE t.seq = g.seq AND g.verdict = 'apply'
    RETURNING t.progress_at
)
SELECT g.verdict, g.status, g.attempt, g.worker_id, g.room_id, g.job_name,
       COALESCE((SELECT progress_at FROM upd), g.progress_at) AS stored_at
FROM judged g
""",
    ["id", "attempt", "worker_id", "actor", "admin", "ended_ok", "every", "progress", "message"],
)

# --- reads -----------------------------------------------------------------------------------

GET = f"SELECT {task_columns('t')}, {position('t')} AS position FROM tasks t WHERE t.id = $1"
GET_MANY = f"SELECT {task_columns('t')} FROM tasks t WHERE t.id = ANY($1::uuid[])"

HEARTBEAT = """
WITH w AS (
    SELECT user_id FROM workers WHERE id = $1
), beat AS (
    UPDATE workers SET last_heartbeat = now() WHERE id = $1 AND user_id = $2
    RETURNING last_heartbeat
)
SELECT (SELECT user_id FROM w) AS owner, (SELECT last_heartbeat FROM beat) AS last_heartbeat
"""

NOW = "SELECT now()"

_PROVIDER = "SELECT id, room_id, full_name, content_type, user_id FROM providers"
PROVIDER_BY_NAME = f"{_PROVIDER} WHERE full_name = $1"
PROVIDER_BY_ID = f"{_PROVIDER} WHERE id = $1"
WORKER_OWNER = "SELECT user_id FROM workers WHERE id = $1"

# --- the server's own transitions -------------------------------------------------------------

# The tasks a `victims`-like CTE `held` names: re-queued while attempts remain (not
# @internal), else failed with their `error` and its `fingerprint` (computed in Python:
# services/tasks/fingerprints.py); `old_status` comes back for the events.
_LOSE = f"""
moved AS (
    UPDATE tasks t SET
        status = CASE WHEN g.requeue THEN 'pending' ELSE 'failed' END,
        attempt = CASE WHEN g.requeue THEN t.attempt + 1 ELSE t.attempt END,
        run_at = CASE WHEN g.requeue THEN {_backoff("t.attempt")} ELSE t.run_at END,
        worker_id = CASE WHEN g.requeue THEN NULL ELSE t.worker_id END,
        claimed_at = CASE WHEN g.requeue THEN NULL ELSE t.claimed_at END,
        started_at = CASE WHEN g.requeue THEN NULL ELSE t.started_at END,
        completed_at = CASE WHEN g.requeue THEN NULL ELSE now() END,
        lease_expires_at = NULL,
        error = g.error,
        error_fingerprint = CASE WHEN g.requeue THEN NULL ELSE g.fingerprint END
    FROM (SELECT h.*, (NOT h.internal AND h.attempt < h.max_attempts) AS requeue FROM held h) AS g
    WHERE t.seq = g.seq
    RETURNING {task_columns("t")}, g.status AS old_status
)"""
_MOVED_TAIL = (
    f"SELECT {task_columns('m')}, m.old_status, {position('m', counted=False)} AS position "
    "FROM moved m"
)

# The worker cleanup cascade (REST.md DELETE /workers; the sweeper; socket disconnect):
# their claimed/running tasks (re-queued or failed), then the workers go, and their links
# and providers with them (ON DELETE CASCADE); jobs left without links or pending tasks
# are soft-deleted. Workers are chosen by id (only those silent since $silent_since, if
# given: a heartbeat racing a disconnect cleanup wins), or by staleness.
CLEANUP_WORKERS = _numbered(
    f"""
WITH victims AS (
    SELECT id FROM workers
    WHERE (id = ANY($ids::uuid[])
           AND ($silent_since::timestamptz IS NULL OR last_heartbeat <= $silent_since))
       OR ($stale_before::timestamptz IS NOT NULL AND last_heartbeat < $stale_before)
    ORDER BY id
    FOR UPDATE
), held AS (
    SELECT t.seq, t.status, t.attempt, t.max_attempts, t.internal, $error::text AS error,
           $fingerprint::text AS fingerprint
    FROM tasks t
    WHERE t.worker_id IN (SELECT id FROM victims) AND t.status IN ('claimed', 'running')
    ORDER BY t.seq
    FOR UPDATE OF t
), {_LOSE}, linked AS (
    SELECT DISTINCT j.id, j.room_id FROM worker_jobs l JOIN jobs j ON j.id = l.job_id
    WHERE l.worker_id IN (SELECT id FROM victims)
), provider_rooms AS (
    SELECT DISTINCT room_id FROM providers WHERE worker_id IN (SELECT id FROM victims)
), gone AS (
    DELETE FROM workers w WHERE w.id IN (SELECT id FROM victims) RETURNING w.id
), orphaned AS (
    UPDATE jobs j SET deleted = true
    WHERE j.id IN (SELECT id FROM linked) AND NOT j.deleted AND NOT j.declared
      AND j.room_id <> '@internal'
      AND NOT EXISTS (SELECT 1 FROM worker_jobs l WHERE l.job_id = j.id
                      AND l.worker_id NOT IN (SELECT id FROM victims))
      AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.job_id = j.id AND p.status = 'pending')
      AND NOT EXISTS (SELECT 1 FROM tasks p WHERE p.job_id = j.id AND p.status = 'waiting')
      AND NOT EXISTS (SELECT 1 FROM moved m WHERE m.job_id = j.id AND m.status = 'pending')
    RETURNING j.room_id
)
SELECT (SELECT array_agg(id) FROM gone) AS worker_ids,
       (SELECT array_agg(DISTINCT room_id) FROM linked) AS job_rooms,
       (SELECT array_agg(room_id) FROM provider_rooms) AS provider_rooms,
       (SELECT array_agg(DISTINCT room_id) FROM orphaned) AS orphan_rooms,
       {task_columns("m")}, m.old_status, {position("m", counted=False)} AS position
FROM (SELECT 1) AS one LEFT JOIN moved m ON true
""",
    ["ids", "silent_since", "stale_before", "error", "fingerprint", "base", "cap", "low", "high"],
)

# Tasks claimed while their job had no limits (limits set since) are not in its counters:
# marked `limited` now, the trigger counts them. Job rows are locked in id order first, as
# claims lock them, so this pass never deadlocks with a claim. Reads ix_tasks_job_active.
COUNT_ACTIVE_UNDER_LIMITS = """
WITH jobs_off AS (
    SELECT j.id FROM jobs j
    WHERE (j.max_running IS NOT NULL OR j.max_running_per_key IS NOT NULL)
      AND EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id
                  AND t.status IN ('claimed', 'running') AND NOT t.limited)
    ORDER BY j.id
    FOR UPDATE OF j
), marked AS (
    UPDATE tasks t SET limited = true
    FROM jobs_off j
    WHERE t.job_id = j.id AND t.status IN ('claimed', 'running') AND NOT t.limited
    RETURNING t.seq
)
SELECT count(*) FROM marked
"""

# Claims whose lease ran out before the task started: back to pending, due now, attempt
# counter advanced (so the stale claim's reports are refused) and no attempt spent.
EXPIRE_LEASES = f"""
WITH expired AS (
    SELECT seq FROM tasks
    WHERE status = 'claimed' AND NOT internal AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE tasks t SET status = 'pending', attempt = t.attempt + 1,
        max_attempts = t.max_attempts + 1, run_at = now(), worker_id = NULL,
        claimed_at = NULL, lease_expires_at = NULL
    FROM expired e WHERE t.seq = e.seq
    RETURNING {task_columns("t")}, 'claimed'::text AS old_status
)
{_MOVED_TAIL}
"""

# Running tasks of jobs with a timeout that started more than timeout + grace ago: their
# worker is stuck or gone without noticing. No float may abort the whole pass: the
# timeout is capped (1e300 and Infinity would overflow the interval) and one that is not
# positive counts as none (-1e300 overflows the timestamp); NaN sorts above all numbers
# in PostgreSQL, so it takes the cap. The error is built here, per job, so the tasks that
# fail are fingerprinted by STAMP_FINGERPRINTS in the same transaction.
FAIL_TIMED_OUT = _numbered(
    f"""
WITH held AS (
    SELECT t.seq, t.status, t.attempt, t.max_attempts, t.internal,
           'timed out after ' || trim_scale(j.timeout_seconds::numeric)::text
           || ' s (no report from the worker)' AS error,
           NULL::text AS fingerprint
    FROM tasks t JOIN jobs j ON j.id = t.job_id
    WHERE t.status = 'running' AND NOT t.internal AND j.timeout_seconds > 0
      AND t.started_at + make_interval(secs => LEAST(j.timeout_seconds, 1e9) + $grace) < now()
    ORDER BY t.seq
    FOR UPDATE OF t SKIP LOCKED
), {_LOSE}
{_MOVED_TAIL}
""",
    ["grace", "base", "cap", "low", "high"],
)

# @internal tasks running longer than the threshold (from their start: a task waiting in
# a busy broker queue is not stuck; one never delivered is the repair pass's).
FAIL_STUCK_INTERNAL = f"""
WITH stuck AS (
    SELECT seq, status FROM tasks
    WHERE internal AND status = 'running'
      AND started_at < now() - make_interval(secs => $1)
    ORDER BY seq
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE tasks t SET status = 'failed', completed_at = now(), error = $2,
        error_fingerprint = $3
    FROM stuck s WHERE t.seq = s.seq
    RETURNING {task_columns("t")}, s.status AS old_status
)
{_MOVED_TAIL}
"""

# Fingerprints of tasks failed by a statement that built their errors itself.
STAMP_FINGERPRINTS = """
UPDATE tasks t SET error_fingerprint = f.fingerprint
FROM unnest($1::uuid[], $2::text[]) AS f(id, fingerprint)
WHERE t.id = f.id AND t.status = 'failed'
"""

# @internal tasks dispatched and not started by their re-send time (lease_expires_at):
# their broker message may be lost. Each is re-sent and its next re-send pushed out twice
# as far (capped), so a slow or absent broker sees each task about once per grace period,
# then less and less often, never a flood of copies.
TAKE_LOST_DISPATCHES = """
WITH lost AS (
    SELECT seq FROM tasks
    WHERE internal AND status = 'claimed' AND worker_id IS NULL AND started_at IS NULL
      AND COALESCE(lease_expires_at, claimed_at + make_interval(secs => $1)) < now()
    ORDER BY seq
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET claimed_at = now(),
    lease_expires_at = now() + LEAST(
        make_interval(secs => $2),
        GREATEST(make_interval(secs => $1),
                 2 * (COALESCE(t.lease_expires_at, t.claimed_at) - t.claimed_at)))
FROM lost l WHERE t.seq = l.seq
RETURNING t.id
"""

# Retention: finished tasks older than the horizon, oldest first, a batch at a time.
DELETE_FINISHED = f"""
WITH doomed AS (
    SELECT seq FROM tasks
    WHERE status IN {TERMINAL} AND completed_at < now() - make_interval(secs => $1)
    ORDER BY completed_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks t USING doomed d WHERE t.seq = d.seq
"""


# Settlement (dependencies): waiting tasks whose parents ended. Cancelled, naming the
# first parent (by id) that failed, was cancelled or is gone; else pending once every
# parent completed; else left waiting (services/tasks/dependencies.py `settled`). Run
# after the parents' own statement committed, so their new status is seen here.
def _settle(chosen: str) -> str:
    return f"""
WITH chosen AS ({chosen}), judged AS (
    SELECT t.seq,
        (SELECT 'parent ' || d.parent_id::text || ' ' || COALESCE(p.status, 'not found')
         FROM task_dependencies d LEFT JOIN tasks p ON p.id = d.parent_id
         WHERE d.child_id = t.id AND (p.id IS NULL OR p.status IN ('failed', 'cancelled'))
         ORDER BY d.parent_id LIMIT 1) AS broken,
        NOT EXISTS (SELECT 1 FROM task_dependencies d JOIN tasks p ON p.id = d.parent_id
                    WHERE d.child_id = t.id AND p.status <> 'completed') AS ready
    FROM tasks t WHERE t.seq IN (SELECT seq FROM chosen) AND t.status = 'waiting'
    ORDER BY t.seq
    FOR UPDATE OF t
), moved AS (
    UPDATE tasks t SET
        status = CASE WHEN j.broken IS NOT NULL THEN 'cancelled' ELSE 'pending' END,
        completed_at = CASE WHEN j.broken IS NOT NULL THEN now() END,
        error = j.broken
    FROM judged j WHERE t.seq = j.seq AND (j.broken IS NOT NULL OR j.ready)
    RETURNING {task_columns("t")}, 'waiting'::text AS old_status
), unlinked AS (
    -- A settled task needs its edges no more: the table holds only those still waiting.
    DELETE FROM task_dependencies d USING moved m WHERE d.child_id = m.id
)
{_MOVED_TAIL}
"""


SETTLE_CHILDREN = _settle(
    "SELECT t.seq FROM task_dependencies d JOIN tasks t ON t.id = d.child_id "
    "WHERE d.parent_id = ANY($1::uuid[]) AND t.status = 'waiting'"
)
# The sweeper's repair: the oldest waiting tasks none of whose parents still runs.
SETTLE_WAITING = _settle(
    "SELECT w.seq FROM tasks w WHERE w.status = 'waiting' AND NOT EXISTS ("
    "SELECT 1 FROM task_dependencies d JOIN tasks p ON p.id = d.parent_id "
    f"WHERE d.child_id = w.id AND p.status NOT IN {TERMINAL}) ORDER BY w.seq LIMIT $1"
)

PRUNE_THROUGHPUT = "DELETE FROM task_throughput WHERE minute < now() - make_interval(secs => $1)"

# The scheduler: the first due pending task of each (job, room). A new leader wakes every
# due pending task; later passes only those that became due in (since - overlap, now] and
# were not due on submit (those were announced by the submit; retries count anew), read
# from the small ix_tasks_pending_due (its predicate is spelled out so it applies).
DUE_HEADS_ALL = """
SELECT now() AS now, h.job_name, h.room_id, h.id FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT DISTINCT ON (job_name, room_id) job_name, room_id, id FROM tasks
    WHERE status = 'pending' AND NOT internal AND run_at <= now()
    ORDER BY job_name, room_id, seq
) AS h ON true
"""
DUE_HEADS_SINCE = """
SELECT now() AS now, h.job_name, h.room_id, h.id FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT DISTINCT ON (job_name, room_id) job_name, room_id, id FROM tasks
    WHERE status = 'pending' AND run_at > created_at AND NOT internal AND run_at <= now()
      AND run_at > $1::timestamptz - make_interval(secs => $2)
      AND run_at > created_at + make_interval(secs => $3)
    ORDER BY job_name, room_id, seq
) AS h ON true
"""
