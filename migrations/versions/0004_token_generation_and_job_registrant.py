"""users carry a token generation; jobs remember who registered them first

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("registered_by", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_jobs_registered_by_users"),
            "users",
            ["registered_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("fk_jobs_registered_by_users"), type_="foreignkey")
        batch.drop_column("registered_by")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_generation")
