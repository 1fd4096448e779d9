"""procrastinate's schema: made on a new database, upgraded by its migrations, else untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.jobs.queue import open_queue
from bot.jobs.queue_schema import RECORD_TABLE, ensure_queue_schema, shipped_migrations
from ingest.db import open_engine
from ingest.migrations import SchemaError
from tests.bot.conftest import make_settings
from tests.conftest import postgres_schema_url

pytestmark = pytest.mark.postgres


def queue_catalog(engine: Engine) -> dict[str, list[str]]:
    """The queue's tables' columns, its functions and triggers, as the server describes them."""
    with engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT table_name || '.' || column_name || ' ' || data_type"
                " || ' ' || coalesce(column_default, '') || ' ' || is_nullable"
                " FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name LIKE 'procrastinate%' ORDER BY 1"
            )
        ).scalars()
        functions = connection.execute(
            text(
                "SELECT proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'"
                " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema() AND proname LIKE 'procrastinate%'"
                " ORDER BY 1"
            )
        ).scalars()
        triggers = connection.execute(
            text(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND NOT tgisinternal ORDER BY 1"
            )
        ).scalars()
        enums = connection.execute(
            text(
                "SELECT t.typname || ':' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)"
                " FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid"
                " JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE n.nspname = current_schema() GROUP BY t.typname ORDER BY 1"
            )
        ).scalars()
        return {
            "columns": list(columns),
            "functions": list(functions),
            "triggers": list(triggers),
            "enums": list(enums),
        }


def jobs_table(engine: Engine) -> int:
    """The oid of procrastinate's jobs table: a schema made again would give it a new one."""
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT 'procrastinate_jobs'::regclass::oid")).scalar_one()
        )


def recorded(engine: Engine) -> list[tuple[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT name, applied_at FROM {RECORD_TABLE} ORDER BY 1"))
        return [(name, at) for name, at in rows]


def test_a_new_database_gets_the_queue_and_a_second_start_changes_nothing(
    queue_database: tuple[str, Engine],
) -> None:
    """First start: the tables and every shipped migration recorded; second: nothing done."""
    _, engine = queue_database
    assert ensure_queue_schema(engine) == []
    table, records = jobs_table(engine), recorded(engine)
    assert [name for name, _ in records] == [path.name for path in shipped_migrations()]

    assert ensure_queue_schema(engine) == []
    assert jobs_table(engine) == table
    assert recorded(engine) == records


async def test_a_queue_made_by_an_older_procrastinate_is_upgraded_to_the_current_schema(
    queue_database: tuple[str, Engine], tmp_path: Path
) -> None:
    """A queue at 2.14 (procrastinate's migrations up to it) takes the rest and works."""
    url, engine = queue_database
    shipped = shipped_migrations()
    old = [path for path in shipped if path.name < "03"]
    for path in old:  # each committed: a value added to an enum is used by later ones
        with engine.begin() as connection:
            connection.exec_driver_sql(path.read_text(encoding="utf-8").replace("%", "%%"))
    # Recorded as the old release made it: its migrations only.
    with engine.connect() as connection:
        connection.execute(
            text(f"CREATE TABLE {RECORD_TABLE} (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
        )
        connection.execute(
            text(f"INSERT INTO {RECORD_TABLE} VALUES (:name, now())"),
            [{"name": path.name} for path in old],
        )
        connection.commit()

    applied = ensure_queue_schema(engine)

    assert applied == [path.name for path in shipped if path.name >= "03"]
    assert ensure_queue_schema(engine) == []
    with postgres_schema_url() as fresh_url:
        fresh = open_engine(fresh_url)
        try:
            ensure_queue_schema(fresh)
            assert queue_catalog(engine) == queue_catalog(fresh)
        finally:
            fresh.dispose()
    settings = make_settings(tmp_path, database_url=url, jobs="queue")
    async with open_queue(settings, engine) as queue:
        job_id = await queue.configure_task("newsbot:embed_new_passages").defer_async()
        jobs = await queue.job_manager.list_jobs_async(id=job_id)
    assert [job.status for job in jobs] == ["todo"]


def test_a_queue_made_before_the_record_is_adopted_as_it_is(
    queue_database: tuple[str, Engine],
) -> None:
    """A queue made by an earlier newsbot (no record) is recorded, not made again."""
    _, engine = queue_database
    ensure_queue_schema(engine)
    table = jobs_table(engine)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {RECORD_TABLE}"))

    assert ensure_queue_schema(engine) == []
    assert jobs_table(engine) == table
    assert len(recorded(engine)) == len(shipped_migrations())


def test_a_queue_upgraded_by_a_newer_procrastinate_is_refused_in_one_line(
    queue_database: tuple[str, Engine],
) -> None:
    """A migration this procrastinate does not ship: refused, saying what to do."""
    _, engine = queue_database
    ensure_queue_schema(engine)
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {RECORD_TABLE} (name) VALUES ('99.00.00_01_from_the_future.sql')")
        )
    with pytest.raises(SchemaError) as refused:
        ensure_queue_schema(engine)
    assert "newer procrastinate" in str(refused.value)
    assert "\n" not in str(refused.value)
