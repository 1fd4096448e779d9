"""Copy one newsbot database into another (``newsbot migrate-to``): SQLite to PostgreSQL.

Generic over the models' metadata: every table, parents before children (foreign keys), rows
as they are, ids included, read in batches of ``batch_size`` and written in one transaction of
the target (a copy that fails leaves the target as it was). A new model's table is copied with
no change here. Afterwards each table's id counter (a PostgreSQL sequence, SQLite's
``sqlite_sequence``) starts past the highest id the *source* ever handed out, so an id a
deleted passage had is never given to another (votes and vectors name passages by id).
Rows the migrations put in every new database (``seeded_tables``) are replaced by the
source's: the copy is the source's database, change log and its token included.

The source is only read. Both must be at this newsbot's schema revision: the target is
migrated by ``open_engine``, the source must be already (any newsbot command upgrades it).
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, Integer, Table, delete, func, inspect, select, text

from ingest.db import open_engine
from ingest.errors import InputError
from ingest.migrations import head_revision
from ingest.models import Base

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
# report(table, rows copied of that table, its rows in all)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # table -> rows copied, in the order copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables() -> list[Table]:
    """newsbot's tables, each after the tables its foreign keys point to."""
    return list(Base.metadata.sorted_tables)


@functools.cache
def seeded_tables() -> frozenset[str]:
    """The tables the migrations themselves fill in a new database (such as the change log's
    origin token): not a sign of a used target, and replaced by the source's rows, because the
    copy carries the source's log (an index built on either recognises the other's entries).
    Found by migrating a scratch database, so a later migration's seed rows need no edit here."""
    upgrades = logging.getLogger("ingest.migrations")
    level = upgrades.level
    upgrades.setLevel(logging.WARNING)  # a scratch database's upgrade is no news to the user
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(f"sqlite:///{folder}/new.db")
        try:
            with engine.connect() as connection:
                return frozenset(t.name for t in tables() if _has_rows(connection, t))
        finally:
            engine.dispose()
            upgrades.setLevel(level)


def check_copyable(source: Engine, target: Engine, replace: bool) -> None:
    """``InputError`` in one line unless ``source`` can be copied into ``target``."""
    if source.url.render_as_string(hide_password=False) == target.url.render_as_string(
        hide_password=False
    ):
        raise InputError("the target is the database newsbot is using: give another URL")
    with source.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    if revision != head_revision():
        raise InputError(
            f"the source database is at schema revision {revision}, not {head_revision()}: "
            "run any newsbot command on it once (e.g. `newsbot stats`) to upgrade it first"
        )
    if not replace:
        with target.connect() as connection:
            filled = [
                table.name
                for table in tables()
                if table.name not in seeded_tables() and _has_rows(connection, table)
            ]
        if filled:
            shown = target.url.render_as_string(hide_password=True)
            named = ", ".join(filled[:3]) + (", ..." if len(filled) > 3 else "")
            raise InputError(
                f"the target database {shown} is not empty (its {named} hold rows): "
                "give an empty one, or --replace to delete what it holds"
            )


def copy_database(
    source: Engine,
    target: Engine,
    *,
    replace: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every table of ``source`` into ``target`` (see the module's docstring)."""
    check_copyable(source, target, replace)
    ordered = tables()
    copied: dict[str, int] = {}
    with source.connect() as reading, target.begin() as writing:
        for table in reversed(ordered):  # children first
            if replace or table.name in seeded_tables():
                writing.execute(delete(table))
        for table in ordered:
            total = reading.execute(select(func.count()).select_from(table)).scalar() or 0
            done = 0
            if progress is not None:
                progress(table.name, 0, total)
            rows = reading.execution_options(yield_per=batch_size).execute(
                select(table).order_by(*table.primary_key.columns)
            )
            for batch in rows.mappings().partitions():
                writing.execute(table.insert(), [dict(row) for row in batch])
                done += len(batch)
                if progress is not None:
                    progress(table.name, done, total)
            copied[table.name] = done
        _advance_counters(reading, writing, ordered)
        log.info("copied %d rows in %d tables", sum(copied.values()), len(copied))
    return CopyReport(copied)


def _has_rows(connection: Connection, table: Table) -> bool:
    return connection.execute(select(select(table).limit(1).exists())).scalar() is True


def _counter_column(table: Table) -> str | None:
    """The integer id the database numbers by itself, if the table has one."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or table.autoincrement_column is None:
        return None
    column = keys[0]
    return column.name if isinstance(column.type, Integer) else None


def _advance_counters(reading: Connection, writing: Connection, ordered: list[Table]) -> None:
    """Each target table's next id: past the highest the source ever handed out."""
    handed_out = _sqlite_sequences(reading)
    for table in ordered:
        column = _counter_column(table)
        if column is None:
            continue
        highest = reading.execute(select(func.max(table.c[column]))).scalar() or 0
        highest = max(highest, handed_out.get(table.name, 0), _pg_sequence(reading, table, column))
        if writing.dialect.name == "postgresql":
            writing.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence(:table, :column), :next, false)"
                    " WHERE pg_get_serial_sequence(:table, :column) IS NOT NULL"
                ),
                {"table": table.name, "column": column, "next": highest + 1},
            )
        elif writing.dialect.name == "sqlite" and table.kwargs.get("sqlite_autoincrement"):
            writing.execute(
                text("UPDATE sqlite_sequence SET seq = max(seq, :highest) WHERE name = :table"),
                {"table": table.name, "highest": highest},
            )
            writing.execute(
                text(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT :table, :highest"
                    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :table)"
                ),
                {"table": table.name, "highest": highest},
            )


def _sqlite_sequences(connection: Connection) -> dict[str, int]:
    """SQLite's record of the highest id each AUTOINCREMENT table handed out."""
    if connection.dialect.name != "sqlite" or not inspect(connection).has_table("sqlite_sequence"):
        return {}
    rows = connection.execute(text("SELECT name, seq FROM sqlite_sequence"))
    return {str(name): int(seq or 0) for name, seq in rows}


def _pg_sequence(connection: Connection, table: Table, column: str) -> int:
    """The last value a PostgreSQL source's sequence handed out (0: none, or not PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return 0
    name = connection.execute(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": table.name, "column": column},
    ).scalar()
    if name is None:
        return 0
    row = connection.execute(text(f"SELECT last_value, is_called FROM {name}")).one()
    return int(row.last_value) if row.is_called else 0
