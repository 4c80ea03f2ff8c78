"""task progress and the attempt history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:20:00

`task_attempts` is written by a row trigger on `tasks` whenever a claimed or running task
moves to any other status, so every writer (reports, cancel, release, the sweeper's lost
workers, expired leases and timeouts) records the attempt it ends. The trigger's WHEN is
checked before anything runs: a claim, a start or a progress report costs nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "('claimed', 'running')"
TERMINAL = "('completed', 'failed', 'cancelled')"
TASK_COLUMNS = ("traceback", "progress", "progress_message", "progress_at")


def _outcome(now: str) -> str:
    """Why the attempt ended. Pending again with one more attempt allowed: no attempt was
    spent (a release, or a claim whose lease ran out); pending without: a failure that
    is retried."""
    return (
        f"CASE WHEN NEW.status IN {TERMINAL} THEN NEW.status "
        "WHEN NEW.max_attempts > OLD.max_attempts THEN "
        "  CASE WHEN OLD.status = 'claimed' AND OLD.lease_expires_at IS NOT NULL "
        f"       AND OLD.lease_expires_at < {now} THEN 'expired' ELSE 'released' END "
        "ELSE 'failed' END"
    )


def _insert(now: str) -> str:
    # `error` and `traceback` on the row belong to the attempt: a claim clears them.
    return (
        "INSERT INTO task_attempts (task_id, attempt, worker_id, claimed_at, started_at, "
        "ended_at, outcome, error, traceback) VALUES (NEW.id, OLD.attempt, OLD.worker_id, "
        f"OLD.claimed_at, OLD.started_at, COALESCE(NEW.completed_at, {now}), {_outcome(now)}, "
        "NEW.error, NEW.traceback)"
    )


WHEN = f"OLD.status IN {ACTIVE} AND NEW.status NOT IN {ACTIVE}"

PG_FUNCTION = f"""
CREATE FUNCTION jobserver_record_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_insert("now()")}
    ON CONFLICT (task_id, attempt) DO NOTHING;
    RETURN NULL;
END
$$
"""
PG_TRIGGER = (
    "CREATE TRIGGER tasks_record_attempt AFTER UPDATE ON tasks FOR EACH ROW "
    f"WHEN ({WHEN}) EXECUTE FUNCTION jobserver_record_attempt()"
)
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_TRIGGER = (
    f"CREATE TRIGGER tasks_record_attempt AFTER UPDATE OF status ON tasks FOR EACH ROW "
    f"WHEN {WHEN} BEGIN {_insert(SQLITE_NOW).replace('INSERT', 'INSERT OR IGNORE', 1)}; END"
)


def _execute(sql: str) -> None:
    op.get_bind().exec_driver_sql(sql)


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("traceback", sa.Text(), nullable=True))
        batch.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch.add_column(sa.Column("progress_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_attempts_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "attempt", name=op.f("pk_task_attempts")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _execute(PG_FUNCTION)
        _execute(PG_TRIGGER)
    else:
        _execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _execute("DROP TRIGGER IF EXISTS tasks_record_attempt ON tasks")
        _execute("DROP FUNCTION IF EXISTS jobserver_record_attempt()")
    else:
        _execute("DROP TRIGGER IF EXISTS tasks_record_attempt")
    op.drop_table("task_attempts")
    # Plain DROP COLUMN on both (SQLite >= 3.35): a batch rebuild of `tasks` on SQLite
    # would drop the triggers of migrations 0003 and 0005 with it.
    for column in TASK_COLUMNS:
        _execute(f"ALTER TABLE tasks DROP COLUMN {column}")
