"""The passage change log (``passage_changes``): what an index catches up from.

Every writer of passages appends the ids it added, removed or re-tagged in the same
transaction; an index records the last entry it took in. Existing databases start with an
empty log: an index without a recorded entry is compared with the database once (a full
sync), then follows the log. ``passage_change_origin`` holds a random token naming this
database's log, which an index records beside its position.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passage_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
        ),
        sa.Column("passage_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_passage_changes_changed_at", "passage_changes", ["changed_at"])
    origin = op.create_table(
        "passage_change_origin", sa.Column("token", sa.String(32), primary_key=True)
    )
    op.bulk_insert(origin, [{"token": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("passage_change_origin")
    op.drop_index("ix_passage_changes_changed_at", table_name="passage_changes")
    op.drop_table("passage_changes")
