"""task counters kept by triggers, throughput per minute, lease and retention indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 08:00:00

`task_counts` and `task_throughput` are kept by triggers on `tasks`, so every writer
(the task store, the ORM, an admin's psql) keeps them right. PostgreSQL uses statement
triggers with transition tables (one upsert per statement, however many rows: a bulk
insert of 1,000 tasks costs one), SQLite row triggers (in-process, cheap).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMINAL = "('completed', 'failed', 'cancelled')"

# Each backend writes its own shard of a count, so concurrent writers of one job and room
# do not wait for each other's commits on one counter row (a pool's connections have
# nearby process ids, so they mostly fall on different shards). Readers sum the shards.
PG_SHARD = "pg_backend_pid() % 16"

PG_FUNCTION = f"""
CREATE FUNCTION jobserver_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_counts AS c (job_name, room_id, status, shard, n)
        SELECT job_name, room_id, status, {PG_SHARD}, count(*)
        FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (job_name, room_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        INSERT INTO task_throughput AS f (minute, job_name, room_id, status, shard, n)
        SELECT date_trunc('minute', COALESCE(completed_at, now())), job_name, room_id, status,
               {PG_SHARD}, count(*)
        FROM new_rows WHERE status IN {TERMINAL}
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (minute, job_name, room_id, status, shard) DO UPDATE SET n = f.n + EXCLUDED.n;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH moved AS (
            SELECT n.job_name, n.room_id, o.status AS old_status, n.status AS new_status,
                   n.completed_at
            FROM old_rows o JOIN new_rows n ON n.seq = o.seq
            WHERE o.status <> n.status
        ), counted AS (
            INSERT INTO task_counts AS c (job_name, room_id, status, shard, n)
            SELECT job_name, room_id, status, {PG_SHARD}, sum(delta)
            FROM (
                SELECT job_name, room_id, old_status AS status, -1 AS delta FROM moved
                UNION ALL
                SELECT job_name, room_id, new_status, 1 FROM moved
            ) d
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (job_name, room_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n
        )
        INSERT INTO task_throughput AS f (minute, job_name, room_id, status, shard, n)
        SELECT date_trunc('minute', COALESCE(completed_at, now())), job_name, room_id,
               new_status, {PG_SHARD}, count(*)
        FROM moved WHERE new_status IN {TERMINAL}
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (minute, job_name, room_id, status, shard) DO UPDATE SET n = f.n + EXCLUDED.n;
    ELSE
        INSERT INTO task_counts AS c (job_name, room_id, status, shard, n)
        SELECT job_name, room_id, status, {PG_SHARD}, -count(*)
        FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (job_name, room_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$
"""

PG_TRIGGERS = (
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobserver_count_tasks()",
    # Transition tables rule out `UPDATE OF status`: the function skips unchanged rows.
    "CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobserver_count_tasks()",
    "CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobserver_count_tasks()",
)

# SQLite keeps times as 'YYYY-MM-DD HH:MM:SS.ffffff' text (app/db/types.py).
SQLITE_MINUTE = (
    "COALESCE(substr(NEW.completed_at, 1, 16) || ':00.000000', "
    "strftime('%Y-%m-%d %H:%M:00.000000', 'now'))"
)


def _sqlite_count(row: str, delta: int) -> str:
    return (
        "INSERT INTO task_counts (job_name, room_id, status, shard, n) "
        f"VALUES ({row}.job_name, {row}.room_id, {row}.status, 0, {delta}) "
        f"ON CONFLICT (job_name, room_id, status, shard) DO UPDATE SET n = n + {delta};"
    )


SQLITE_FINISHED = (
    "INSERT INTO task_throughput (minute, job_name, room_id, status, shard, n) "
    f"SELECT {SQLITE_MINUTE}, NEW.job_name, NEW.room_id, NEW.status, 0, 1 "
    f"WHERE NEW.status IN {TERMINAL} "
    "ON CONFLICT (minute, job_name, room_id, status, shard) DO UPDATE SET n = n + 1;"
)

SQLITE_TRIGGERS = (
    "CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN "
    f"{_sqlite_count('NEW', 1)} {SQLITE_FINISHED} END",
    "CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks "
    "WHEN OLD.status <> NEW.status BEGIN "
    f"{_sqlite_count('OLD', -1)} {_sqlite_count('NEW', 1)} {SQLITE_FINISHED} END",
    f"CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN {_sqlite_count('OLD', -1)} END",
)

TRIGGER_NAMES = ("tasks_count_insert", "tasks_count_update", "tasks_count_delete")


def _execute(sql: str) -> None:
    # Straight to the driver: the SQL holds ':' and '%' that bind-parameter parsing would eat.
    op.get_bind().exec_driver_sql(sql)


def _counter_tables() -> None:
    op.create_table(
        "task_counts",
        sa.Column("job_name", sa.String(length=800), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "job_name", "room_id", "status", "shard", name=op.f("pk_task_counts")
        ),
    )
    op.create_table(
        "task_throughput",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_name", sa.String(length=800), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "minute", "job_name", "room_id", "status", "shard", name=op.f("pk_task_throughput")
        ),
    )


def _backfill(dialect: str) -> None:
    _execute(
        "INSERT INTO task_counts (job_name, room_id, status, shard, n) "
        "SELECT job_name, room_id, status, 0, count(*) FROM tasks "
        "GROUP BY job_name, room_id, status"
    )
    minute = (
        "date_trunc('minute', completed_at)"
        if dialect == "postgresql"
        else "substr(completed_at, 1, 16) || ':00.000000'"
    )
    _execute(
        "INSERT INTO task_throughput (minute, job_name, room_id, status, shard, n) "
        f"SELECT {minute}, job_name, room_id, status, 0, count(*) FROM tasks "
        f"WHERE status IN {TERMINAL} AND completed_at IS NOT NULL "
        "GROUP BY 1, job_name, room_id, status"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _counter_tables()
    _backfill(dialect)
    if dialect == "postgresql":
        _execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            _execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            _execute(statement)
    _delayed_only_due_index()
    op.create_index(
        "ix_tasks_claim_lease",
        "tasks",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'claimed' AND NOT internal"),
        sqlite_where=sa.text("status = 'claimed' AND internal = 0"),
    )
    op.create_index(
        "ix_tasks_finished",
        "tasks",
        ["completed_at"],
        unique=False,
        postgresql_where=sa.text(f"status IN {TERMINAL}"),
        sqlite_where=sa.text(f"status IN {TERMINAL}"),
    )


def _delayed_only_due_index() -> None:
    """The scheduler's index keeps only tasks due after their creation (see models)."""
    _replace_pending_due_index("status = 'pending' AND run_at > created_at")


def _replace_pending_due_index(where: str) -> None:
    op.drop_index("ix_tasks_pending_due", table_name="tasks")
    op.create_index(
        "ix_tasks_pending_due",
        "tasks",
        ["run_at"],
        unique=False,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_tasks_finished", table_name="tasks")
    op.drop_index("ix_tasks_claim_lease", table_name="tasks")
    _replace_pending_due_index("status = 'pending'")
    for name in TRIGGER_NAMES:
        on_table = " ON tasks" if dialect == "postgresql" else ""
        _execute(f"DROP TRIGGER IF EXISTS {name}{on_table}")
    if dialect == "postgresql":
        _execute("DROP FUNCTION IF EXISTS jobserver_count_tasks()")
    op.drop_table("task_throughput")
    op.drop_table("task_counts")
