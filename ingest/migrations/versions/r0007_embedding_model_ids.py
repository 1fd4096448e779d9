"""Cached vectors name their model by a small number (``embedding_models``), not its name.

The model's name was repeated in every row of ``embedding_cache`` and in its primary key,
the largest table of a big corpus (2.1 GB at a million passages). The table is rebuilt once
with the numbers, every cached vector kept.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

MODEL_ID = sa.SmallInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "embedding_models",
        sa.Column("id", MODEL_ID, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False, unique=True),
    )
    op.execute("INSERT INTO embedding_models (name) SELECT DISTINCT model FROM embedding_cache")
    op.create_table(
        "embedding_cache_by_id",
        sa.Column(
            "model_id",
            sa.SmallInteger,
            sa.ForeignKey("embedding_models.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("text_hash", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.execute(
        "INSERT INTO embedding_cache_by_id (model_id, text_hash, vector) "
        "SELECT m.id, c.text_hash, c.vector FROM embedding_cache c "
        "JOIN embedding_models m ON m.name = c.model"
    )
    op.drop_table("embedding_cache")
    op.rename_table("embedding_cache_by_id", "embedding_cache")


def downgrade() -> None:
    op.create_table(
        "embedding_cache_by_name",
        sa.Column("model", sa.String(500), primary_key=True),
        sa.Column("text_hash", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.execute(
        "INSERT INTO embedding_cache_by_name (model, text_hash, vector) "
        "SELECT m.name, c.text_hash, c.vector FROM embedding_cache c "
        "JOIN embedding_models m ON m.id = c.model_id"
    )
    op.drop_table("embedding_cache")
    op.rename_table("embedding_cache_by_name", "embedding_cache")
    op.drop_table("embedding_models")
