"""A ``milestones`` table (a database remembers that it once had sources, so a removed sample
corpus is not seeded again at the next start), and the paragraph-sightings index that
boilerplate look-ups go through (from a paragraph to the articles holding it: without it
SQLite scans the table for every stored article, and storing slows as the corpus grows).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "milestones",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_sightings_hash_scope_article",
        "paragraph_sightings",
        ["paragraph_hash", "scope", "article_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_sightings_hash_scope_article", table_name="paragraph_sightings")
    op.drop_table("milestones")
