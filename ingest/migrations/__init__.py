"""Schema migrations (Alembic): every process that opens the database brings it up to date.

``upgrade_database`` runs at each start, from ``ingest.db.open_engine``. A database at the
newest revision costs one query; otherwise, under a lock (a file next to a SQLite database,
an advisory lock on PostgreSQL) so that processes starting together upgrade it once:

- a new database is made by the migrations;
- a database made by ``create_all`` before migrations existed (no ``alembic_version``) is
  adopted at revision 0001 when its tables are newsbot's, then upgraded;
- a database at a revision this code does not know (made by a newer newsbot) is refused.

A model change comes with a revision. Make one against a scratch database at the newest
revision (``newsbot stats`` with ``NEWSBOT_DATABASE_URL=sqlite:///scratch.db`` makes one)::

    .venv/bin/alembic -c ingest/migrations/alembic.ini -x url=sqlite:///scratch.db \\
        revision --autogenerate --rev-id 0003 -m "what changed"
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from ingest.errors import NewsbotError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent
FIRST_REVISION = "0001"

# Any fixed number: the advisory lock names "newsbot's schema upgrade" on the server.
_ADVISORY_LOCK_KEY = 0x6E657773626F74

# Alembic says "Context impl SQLiteImpl" at INFO on every start; the upgrade is logged here.
logging.getLogger("alembic").setLevel(logging.WARNING)


class SchemaError(NewsbotError):
    """The database's schema is not one this newsbot can use or upgrade."""


def alembic_config(location: Path | None = None) -> Config:
    """The shipped migrations; env.py runs them on ``attributes["connection"]`` when given."""
    config = Config()
    config.set_main_option("script_location", str(location or MIGRATIONS))
    return config


@functools.cache
def _scripts(location: Path) -> ScriptDirectory:
    # Loading the revision files costs ~30 ms; a process opens the database more than once.
    return ScriptDirectory.from_config(alembic_config(location))


def head_revision() -> str:
    head = _scripts(MIGRATIONS).get_current_head()
    assert head is not None, "ingest/migrations/versions holds no revision"
    return head


def upgrade_database(engine: Engine) -> None:
    """Bring the database to the newest revision, or raise :class:`SchemaError`."""
    config = alembic_config(MIGRATIONS)
    script = _scripts(MIGRATIONS)
    with engine.connect() as connection:
        if _current_revision(connection, script) == script.get_current_head():
            return
    with engine.connect() as connection, schema_lock(engine, connection):
        if connection.dialect.name == "sqlite":
            # One transaction for the whole upgrade: pysqlite would commit each DDL alone, and a
            # process killed mid-upgrade must leave the old schema, not half of the new one.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        current = _current_revision(connection, script)
        if current == script.get_current_head():
            connection.rollback()
            return
        if current is None:
            _check_unversioned(connection, script)
        log.info("upgrading the database schema: %s -> %s", current, script.get_current_head())
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def _current_revision(connection: Connection, script: ScriptDirectory) -> str | None:
    current = MigrationContext.configure(connection).get_current_revision()
    known = {revision.revision for revision in script.walk_revisions()}
    if current is not None and current not in known:
        url = connection.engine.url.render_as_string(hide_password=True)
        raise SchemaError(
            f"the database {url} is at schema revision {current}, which this newsbot does not "
            f"know (newest: {script.get_current_head()}): it was upgraded by a newer newsbot; "
            "run that version or newer"
        )
    return current


def _check_unversioned(connection: Connection, script: ScriptDirectory) -> None:
    """A database without ``alembic_version`` is new, or made by ``create_all``: check which."""
    schema: MetaData = script.get_revision(FIRST_REVISION).module.SCHEMA
    inspector = inspect(connection)
    present = set(inspector.get_table_names()) & set(schema.tables)
    if not present:
        return
    for name in sorted(present):
        columns = {column["name"] for column in inspector.get_columns(name)}
        missing = [
            column.name for column in schema.tables[name].columns if column.name not in columns
        ]
        if missing:
            url = connection.engine.url.render_as_string(hide_password=True)
            raise SchemaError(
                f"the database {url} was not made by newsbot (its {name} table has no "
                f"{', '.join(missing)}): point NEWSBOT_DATABASE_URL at another database"
            )
    log.info("adopting a database made before migrations (tables: %s)", ", ".join(sorted(present)))


@contextmanager
def schema_lock(engine: Engine, connection: Connection) -> Iterator[None]:
    """Only one process upgrades at a time; the others then find the schema up to date."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            connection.commit()
        return
    database = engine.url.database
    if connection.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = FileLock(f"{database}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another newsbot process to finish upgrading %s", database)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
