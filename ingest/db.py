"""Engine and sessions: SQLite under the data directory by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from ingest.errors import InputError, first_line
from ingest.migrations import upgrade_database

log = logging.getLogger(__name__)


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'newsbot.db').resolve()}"


def open_engine(url: str, migrate: bool = True) -> Engine:
    """Connect, enable what each backend needs, and bring the schema to the newest revision
    (unless not ``migrate``: a database only read, such as ``migrate-to``'s source).

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
        if migrate:
            upgrade_database(engine)
        else:
            engine.connect().close()  # a URL that cannot be used fails here, as with migrate
    except BaseException:
        engine.dispose()
        raise
    log.debug("database ready: %s", engine.url.render_as_string(hide_password=True))
    return engine


def open_database(url: str, migrate: bool = True) -> Engine:
    """:func:`open_engine`, or an ``InputError`` saying in one line why the URL cannot be used."""
    try:
        return open_engine(url, migrate)
    except NoSuchModuleError:
        reason = f"no database driver for {url.partition(':')[0]!r} URLs"
    except ArgumentError as error:
        reason = first_line(error)
    except DBAPIError as error:  # the server refused or is not there; the file cannot open
        reason = first_line(error.orig or error)
    except ImportError as error:  # a dialect whose driver is not installed
        reason = f"its driver is not installed ({error.name or error})"
    except OSError as error:  # the SQLite file's folder cannot be made
        reason = error.strerror or str(error)
    raise InputError(f"cannot open the database {_shown(url)} (NEWSBOT_DATABASE_URL): {reason}")


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


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
