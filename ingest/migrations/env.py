"""Alembic's environment: newsbot hands in its own connection (``ingest.migrations``); the
``alembic`` command (see ingest/migrations/__init__.py) opens ``-x url=...`` instead."""

from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import Connection, create_engine

from ingest.models import Base


def _run(connection: Connection) -> None:
    # Batch operations: SQLite changes most columns only by copying the table.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("alembic: name the database with -x url=sqlite:///path/to/newsbot.db")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)  # what autogenerate detected
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
