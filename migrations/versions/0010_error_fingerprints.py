"""failed tasks carry their error's fingerprint, indexed for the error inbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:30:00

`tasks.error_fingerprint` is written by the task store whenever a task fails and cleared
when it is retried. Tasks that failed before this revision are fingerprinted here, in
Python and in batches, by the same function the store uses, so the inbox never meets a
failed task without one. The index is built after the backfill (one pass, not one insert
per updated row).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.services.tasks.fingerprints import fingerprint_of

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 1000
FAILED = sa.text("status = 'failed'")
READ_BATCH = sa.text(
    "SELECT seq, error, traceback FROM tasks WHERE status = 'failed' AND seq > :after "
    "ORDER BY seq LIMIT :limit"
)
WRITE = sa.text("UPDATE tasks SET error_fingerprint = :fingerprint WHERE seq = :seq")


def _backfill() -> int:
    """Fingerprints every failed task, a batch of rows at a time in seq order (through
    ix_tasks_status_seq). Returns how many were written."""
    bind = op.get_bind()
    after, written = 0, 0
    while True:
        rows = bind.execute(READ_BATCH, {"after": after, "limit": BACKFILL_BATCH}).all()
        if not rows:
            return written
        bind.execute(
            WRITE,
            [{"seq": seq, "fingerprint": fingerprint_of(error, tb)} for seq, error, tb in rows],
        )
        after, written = rows[-1][0], written + len(rows)


def upgrade() -> None:
    op.add_column("tasks", sa.Column("error_fingerprint", sa.String(length=16), nullable=True))
    _backfill()
    op.create_index(
        "ix_tasks_failed_fingerprint",
        "tasks",
        ["error_fingerprint", "created_at", "seq", "job_name", "completed_at"],
        unique=False,
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_tasks_failed_fingerprint",
        table_name="tasks",
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    # Both dialects drop a column in place (SQLite since 3.35): no table rebuild, so the
    # triggers on tasks stay as they are.
    op.execute("ALTER TABLE tasks DROP COLUMN error_fingerprint")
