"""SQLite ``passages`` made before AUTOINCREMENT never hand a deleted passage's id out again.

Ids key the index's vectors: a reused id made new text keep an old vector. Databases made
by this release already have AUTOINCREMENT; older ones get their table rebuilt once, rows,
ids, constraints and index kept. PostgreSQL sequences never reused ids: nothing to do.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

# The table as revision 0001 defines it, for the copy (reflection loses nothing here, but a
# fixed definition makes the rebuilt table the same on every database).
_PASSAGES = sa.Table(
    "passages",
    sa.MetaData(),
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


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    ddl = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'passages'")
    ).scalar_one()
    if "AUTOINCREMENT" in ddl.upper():
        return
    with op.batch_alter_table(
        "passages",
        copy_from=_PASSAGES,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ):
        pass


def downgrade() -> None:
    # Going back to reusable ids would bring the bug back; the schema is otherwise the same.
    pass
