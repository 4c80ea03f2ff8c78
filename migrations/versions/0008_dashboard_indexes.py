"""indexes of the dashboard's task list: each filter in (created_at, seq) order

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_created", "tasks", ["created_at", "seq"])
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at", "seq"])
    op.create_index("ix_tasks_job_created", "tasks", ["job_id", "created_at", "seq"])
    op.create_index(
        "ix_tasks_worker_created",
        "tasks",
        ["worker_id", "created_at", "seq"],
        postgresql_where=sa.text("worker_id IS NOT NULL"),
        sqlite_where=sa.text("worker_id IS NOT NULL"),
    )


def downgrade() -> None:
    for name in (
        "ix_tasks_worker_created",
        "ix_tasks_job_created",
        "ix_tasks_status_created",
        "ix_tasks_created",
    ):
        op.drop_index(name, table_name="tasks")
