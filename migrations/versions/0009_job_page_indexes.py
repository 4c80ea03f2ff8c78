"""job page indexes: a job's newest completed tasks, a job's schedules

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:00:00

The dashboard's job page takes its run- and wait-time percentiles from the job's newest
completed tasks: `ix_tasks_job_completed` makes that a bounded index range read, whatever
the size of the table. Its schedules are listed by job name.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_job_completed",
        "tasks",
        ["job_id", "completed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    )
    op.create_index("ix_schedules_job_name", "schedules", ["job_name"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_schedules_job_name", table_name="schedules")
    op.drop_index(
        "ix_tasks_job_completed",
        table_name="tasks",
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    )
