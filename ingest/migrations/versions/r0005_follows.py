"""Followed stories: ``follows`` (a server's topic, its channel, paused or disabled) and
``follow_posts`` (the articles each follow has posted, named or held back by its hourly cap).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Text(), nullable=True),
        sa.Column("summary_message_id", sa.BigInteger(), nullable=True),
        sa.Column("summary_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("guild_id", "channel_id", "topic", name="uq_follow_channel_topic"),
    )
    op.create_index("ix_follows_guild_id", "follows", ["guild_id"])
    op.create_table(
        "follow_posts",
        sa.Column(
            "follow_id",
            sa.Integer(),
            sa.ForeignKey("follows.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "article_id",
            sa.Integer(),
            sa.ForeignKey("articles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("passage_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_follow_posts_follow_at", "follow_posts", ["follow_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_follow_posts_follow_at", table_name="follow_posts")
    op.drop_table("follow_posts")
    op.drop_index("ix_follows_guild_id", table_name="follows")
    op.drop_table("follows")
