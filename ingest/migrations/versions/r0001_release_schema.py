"""The schema of newsbot 0.1.0 (commit 4cf7cc4), as its ``create_all`` made it.

A frozen copy, not the models: later revisions change the models, never this file. Creating
only the tables that are missing lets a database made by ``create_all`` before some table
existed (``feed_items`` came later) be adopted at this revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

SCHEMA = sa.MetaData()
"""Read by ``ingest.migrations`` to recognise a database made before migrations existed."""

# The models' UTCDateTime converts in Python only; its column is DateTime(timezone=True).
UTC_DATETIME = sa.DateTime(timezone=True)

sa.Table(
    "sources",
    SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("guild_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("location", sa.String(2000), nullable=False),
    sa.Column("created_at", UTC_DATETIME, nullable=False),
    sa.Column("etag", sa.String(500)),
    sa.Column("last_modified", sa.String(100)),
    sa.Column("last_success_at", UTC_DATETIME),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", UTC_DATETIME),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("next_fetch_at", UTC_DATETIME),
    sa.UniqueConstraint("guild_id", "location", name="uq_source_location"),
)
sa.Table(
    "articles",
    SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "source_id",
        sa.Integer,
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key", sa.String(2000), nullable=False),
    sa.Column("url", sa.String(2000)),
    sa.Column("title", sa.String(1000), nullable=False),
    sa.Column("outlet", sa.String(200), nullable=False),
    sa.Column("author", sa.String(500)),
    sa.Column("published_at", UTC_DATETIME, index=True),
    sa.Column("ingested_at", UTC_DATETIME, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("source_id", "key", name="uq_article_key"),
)
sa.Table(
    "passages",
    SCHEMA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "article_id",
        sa.Integer,
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("article_id", "position", name="uq_passage_position"),
    sa.Index("ix_passages_text_hash", "text_hash"),
    sqlite_autoincrement=True,
)
sa.Table(
    "paragraph_sightings",
    SCHEMA,
    sa.Column(
        "article_id",
        sa.Integer,
        sa.ForeignKey("articles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("paragraph_hash", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(300), nullable=False),
    sa.Index("ix_sightings_scope_hash", "scope", "paragraph_hash"),
)
sa.Table(
    "feed_items",
    SCHEMA,
    sa.Column(
        "source_id",
        sa.Integer,
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(2000), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("seen_at", UTC_DATETIME, nullable=False),
)
sa.Table(
    "embedding_cache",
    SCHEMA,
    sa.Column("model", sa.String(500), primary_key=True),
    sa.Column("text_hash", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)


def upgrade() -> None:
    SCHEMA.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    SCHEMA.drop_all(op.get_bind())
