"""The job queue's tables: procrastinate's schema, made once, then upgraded by its migrations.

procrastinate ships its whole schema (``schema.sql``) and, for each release that changed it,
SQL migrations named after that release (``03.04.00_01_pre_add_retry_failed_job_procedure.sql``);
since 0.5 it keeps no version in the database and leaves applying them to the project. newsbot
records, in ``newsbot_queue_migrations``, the migrations the database's queue schema includes:
a new database gets ``schema.sql`` with every shipped migration recorded; a process started
with a newer procrastinate applies the ones not recorded yet, in order, each in its own
transaction with its record (an enum value a migration adds can only be used once committed).
All of it under newsbot's schema lock (the advisory lock of the Alembic upgrade), so processes
starting together upgrade once; a start with nothing to do costs one query.

Migrations are applied "pre" and "post" together: stop every process of the older version
before starting the newer one (deploy/README.md: Upgrading).
"""

from __future__ import annotations

import logging
from pathlib import Path

from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, Engine, text

from ingest.migrations import SchemaError, schema_lock

log = logging.getLogger(__name__)

RECORD_TABLE = "newsbot_queue_migrations"


def shipped_migrations(folder: Path | None = None) -> list[Path]:
    """procrastinate's migration files, oldest first (their names sort by release)."""
    folder = folder or Path(SchemaManager.get_migrations_path())
    return sorted(folder.glob("*.sql"))


def ensure_queue_schema(engine: Engine, migrations: Path | None = None) -> list[str]:
    """Make or upgrade procrastinate's schema; the names of the migrations applied now.

    Raises :class:`SchemaError` when the database's queue was upgraded by a newer procrastinate.
    """
    shipped = shipped_migrations(migrations)
    with engine.connect() as connection:
        if not _pending(connection, shipped):
            return []
    with engine.connect() as connection, schema_lock(engine, connection):
        pending = _pending(connection, shipped)
        if pending is None:
            return []
        if not _has_queue(connection):
            log.info("creating the job queue's tables (procrastinate)")
            _run_script(connection, SchemaManager.get_schema())
            _record(connection, [path.name for path in shipped])
            connection.commit()
            return []
        if not _has_records(connection):
            # Made by a newsbot before this record existed, with procrastinate 3.5 to 3.10,
            # whose schemas are one (the newest migration is 3.4.0's): the shipped one.
            log.info("recording the job queue's schema as procrastinate's current one")
            _record(connection, [path.name for path in shipped])
            connection.commit()
            return []
        for path in pending:
            log.info("upgrading the job queue's tables: %s", path.name)
            _run_script(connection, path.read_text(encoding="utf-8"))
            _record(connection, [path.name])
            connection.commit()
        return [path.name for path in pending]


def _pending(connection: Connection, shipped: list[Path]) -> list[Path] | None:
    """The migrations to apply (all of them for a new queue); None when there are none."""
    if not _has_records(connection):
        return shipped
    applied = set(connection.execute(text(f"SELECT name FROM {RECORD_TABLE}")).scalars())
    connection.rollback()
    unknown = sorted(applied - {path.name for path in shipped})
    if unknown:
        raise SchemaError(
            f"the job queue's tables were upgraded by a newer procrastinate (migration "
            f"{unknown[-1]}, which this one does not ship): run the same newsbot everywhere"
        )
    pending = [path for path in shipped if path.name not in applied]
    return pending or None


def _has_queue(connection: Connection) -> bool:
    return bool(
        connection.execute(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")).scalar()
    )


def _has_records(connection: Connection) -> bool:
    found = connection.execute(text(f"SELECT to_regclass('{RECORD_TABLE}') IS NOT NULL")).scalar()
    return bool(found)


def _record(connection: Connection, names: list[str]) -> None:
    connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} ("
            " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    )
    if names:
        connection.execute(
            text(f"INSERT INTO {RECORD_TABLE} (name) VALUES (:name)"),
            [{"name": name} for name in names],
        )


def _run_script(connection: Connection, script: str) -> None:
    # On the driver's cursor without parameters: the scripts' "%" are not placeholders.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(script)
    finally:
        cursor.close()
