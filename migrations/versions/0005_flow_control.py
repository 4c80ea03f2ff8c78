"""flow control: declared and paused jobs, submit defaults, concurrency limits, the
`waiting` status with task dependencies, schedules

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:40:00

The limits' counters on PostgreSQL (`jobs.active`, `jobs.active_keys`) are kept by a row
trigger that fires only for tasks claimed under a limit (`tasks.limited`), so jobs
without limits pay nothing. SQLite serialises writers, so its claims count directly.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("waiting", "pending", "claimed", "running", "completed", "failed", "cancelled")
OLD_STATUSES = STATUSES[1:]


def _check(statuses: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{status}'" for status in statuses))


# A task counts against its job's limits while it is active and was claimed under one.
PG_COUNTED = "({row}.limited AND {row}.status IN ('claimed', 'running'))"
PG_LIMIT_FUNCTION = f"""
CREATE FUNCTION jobserver_count_limited() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta integer := CASE WHEN {PG_COUNTED.format(row="NEW")} THEN 1 ELSE -1 END;
BEGIN
    UPDATE jobs SET
        active = GREATEST(active + delta, 0),
        active_keys = CASE
            WHEN NEW.concurrency_key IS NULL THEN active_keys
            WHEN COALESCE((active_keys ->> NEW.concurrency_key)::integer, 0) + delta <= 0
                THEN active_keys - NEW.concurrency_key
            ELSE jsonb_set(active_keys, ARRAY[NEW.concurrency_key], to_jsonb(
                COALESCE((active_keys ->> NEW.concurrency_key)::integer, 0) + delta))
        END
    WHERE id = NEW.job_id;
    RETURN NULL;
END
$$
"""
# WHEN is checked before the function is called: tasks of jobs without limits cost nothing.
PG_LIMIT_TRIGGER = (
    "CREATE TRIGGER tasks_count_limited AFTER UPDATE ON tasks FOR EACH ROW "
    f"WHEN ({PG_COUNTED.format(row='OLD')} IS DISTINCT FROM {PG_COUNTED.format(row='NEW')}) "
    "EXECUTE FUNCTION jobserver_count_limited()"
)


def _execute(sql: str) -> None:
    op.get_bind().exec_driver_sql(sql)


def _revision_0003():  # type: ignore[no-untyped-def]
    """Migration 0003, for its SQLite triggers: rebuilding `tasks` drops them."""
    path = next(Path(__file__).parent.glob("0003_*.py"))
    spec = importlib.util.spec_from_file_location("jobserver_migration_0003", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set_status_check(statuses: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_tasks_status"), "tasks", type_="check")
        op.create_check_constraint(op.f("ck_tasks_status"), "tasks", _check(statuses))
        return
    # SQLite keeps a CHECK in the table's definition: the table is rebuilt, and with it
    # go its triggers, which are created again.
    with op.batch_alter_table("tasks", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_tasks_status"), type_="check")
        batch.create_check_constraint(op.f("ck_tasks_status"), _check(statuses))
    # Reflection drops the DESC of the claim index's priority: it is built again as it was.
    op.drop_index("ix_tasks_claimable", table_name="tasks")
    op.create_index(
        "ix_tasks_claimable",
        "tasks",
        ["job_id", sa.text("priority DESC"), "run_at", "seq"],
        unique=False,
        sqlite_where=sa.text("status = 'pending'"),
    )
    migration_0003 = _revision_0003()
    for name in migration_0003.TRIGGER_NAMES:
        _execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in migration_0003.SQLITE_TRIGGERS:
        _execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    false = sa.text("false")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("declared", sa.Boolean(), server_default=false, nullable=False))
        batch.add_column(sa.Column("paused", sa.Boolean(), server_default=false, nullable=False))
        batch.add_column(sa.Column("default_priority", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("default_max_attempts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_running", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_running_per_key", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("active", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column(
                "active_keys",
                sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
                server_default=sa.text("'{}'"),
                nullable=False,
            )
        )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("concurrency_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("limited", sa.Boolean(), server_default=false, nullable=False))
        batch.add_column(
            sa.Column("has_dependants", sa.Boolean(), server_default=false, nullable=False)
        )
    _set_status_check(STATUSES)
    op.create_index(
        "ix_tasks_job_active",
        "tasks",
        ["job_id", "concurrency_key"],
        unique=False,
        postgresql_where=sa.text("status IN ('claimed', 'running')"),
        sqlite_where=sa.text("status IN ('claimed', 'running')"),
    )
    op.create_index(
        "ix_tasks_waiting",
        "tasks",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    )
    op.create_table(
        "task_dependencies",
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name=op.f("pk_task_dependencies")),
    )
    op.create_index(
        op.f("ix_task_dependencies_child_id"), "task_dependencies", ["child_id"], unique=False
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_name", sa.String(length=800), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("every_seconds", sa.Float(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("catch_up", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(cron IS NULL) <> (every_seconds IS NULL)", name=op.f("ck_schedules_one_rule")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_schedules_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        unique=False,
        postgresql_where=sa.text("enabled"),
        sqlite_where=sa.text("enabled = 1"),
    )
    if dialect == "postgresql":
        _execute(PG_LIMIT_FUNCTION)
        _execute(PG_LIMIT_TRIGGER)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _execute("DROP TRIGGER IF EXISTS tasks_count_limited ON tasks")
        _execute("DROP FUNCTION IF EXISTS jobserver_count_limited()")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index(op.f("ix_task_dependencies_child_id"), table_name="task_dependencies")
    op.drop_table("task_dependencies")
    op.drop_index("ix_tasks_waiting", table_name="tasks")
    op.drop_index("ix_tasks_job_active", table_name="tasks")
    # Waiting tasks cannot exist without the status: they are cancelled first.
    _execute(
        "UPDATE tasks SET status = 'cancelled', error = 'cancelled: downgrade' "
        "WHERE status = 'waiting'"
    )
    _set_status_check(OLD_STATUSES)
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("has_dependants")
        batch.drop_column("limited")
        batch.drop_column("concurrency_key")
    with op.batch_alter_table("jobs") as batch:
        for column in (
            "active_keys",
            "active",
            "max_running_per_key",
            "max_running",
            "default_max_attempts",
            "default_priority",
            "paused",
            "declared",
        ):
            batch.drop_column(column)
