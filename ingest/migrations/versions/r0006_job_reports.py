"""A ``job_reports`` table: the progress and outcome of each queued job, written by the worker
that runs it and read by the bot that queued it (``NEWSBOT_JOBS=queue``).

The job queue's own tables (procrastinate's) are not made here: they are applied at the start
of a queue-mode process, on PostgreSQL only (bot/jobs/queue.py).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_reports",
        sa.Column("job_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("worker", sa.String(length=300), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("job_reports")
