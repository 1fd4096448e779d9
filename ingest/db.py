"""Engine and sessions: SQLite under the data directory by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ingest.migrations import upgrade_database

log = logging.getLogger(__name__)


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'newsbot.db').resolve()}"


def open_engine(url: str) -> Engine:
    """Connect, enable what each backend needs, and bring the schema to the newest revision.

    Raises ``ingest.migrations.SchemaError`` for a database this newsbot cannot upgrade.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        upgrade_database(engine)
    except BaseException:
        engine.dispose()
        raise
    log.debug("database ready: %s", engine.url.render_as_string(hide_password=True))
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the bot read while an ingest writes; foreign keys make deletes cascade.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
