"""Schema migrations at start: new, release-made, older and newer databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command as alembic_command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text
from typer.testing import CliRunner

import ingest.migrations as migrations
from bot.cli import app
from ingest.db import open_engine
from ingest.migrations import FIRST_REVISION, SchemaError, alembic_config, head_revision
from ingest.models import Base
from ingest.sample import SAMPLE_CORPUS
from tests.conftest import postgres_schema_url


def _release_schema() -> MetaData:
    """The tables newsbot 0.1.0's ``create_all`` made (revision 0001's frozen copy)."""
    script = ScriptDirectory.from_config(alembic_config())
    schema: MetaData = script.get_revision(FIRST_REVISION).module.SCHEMA
    return schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsbot.db'}"
        return
    with postgres_schema_url() as url:
        yield url


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


def _differences_from_the_models(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return list(differences)


def _create_all(url: str, schema: MetaData) -> None:
    engine = create_engine(url)
    schema.create_all(engine)
    engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `newsbot ARGS` in-process on the database ``url``."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()

    def invoke(url: str, *args: str):
        monkeypatch.setenv("NEWSBOT_DATABASE_URL", url)
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_new_database_is_made_by_the_migrations_and_matches_the_models(empty_url: str) -> None:
    """A new database reaches the newest revision with exactly the models' tables."""
    open_engine(empty_url).dispose()

    assert _differences_from_the_models(empty_url) == []
    assert _revision(empty_url) == head_revision()


def test_release_database_is_adopted_and_upgraded(empty_url: str, cli) -> None:
    """A database made by 0.1.0's create_all (no alembic_version) keeps its rows and works."""
    _create_all(empty_url, _release_schema())
    _insert_old_source(empty_url)

    added = cli(empty_url, "sources", "add", str(SAMPLE_CORPUS), "--name", "sample")
    stats = cli(empty_url, "stats")

    assert added.exit_code == 0, added.output
    assert "sources:  2" in stats.output
    assert _revision(empty_url) == head_revision()
    assert _differences_from_the_models(empty_url) == []


def _insert_old_source(url: str) -> None:
    """One source row, written as an older newsbot would (plain SQL, no models)."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (guild_id, name, kind, location, created_at, failures) "
                "VALUES (0, 'Old Gazette', 'local', '/srv/old', CURRENT_TIMESTAMP, 0)"
            )
        )
    engine.dispose()


def _migrations_with_a_language_column(tmp_path: Path, then: str = "") -> Path:
    """The shipped migrations plus a test-only revision 9001 adding ``sources.language``."""
    scripts = tmp_path / "migrations"
    shutil.rmtree(scripts, ignore_errors=True)
    shipped = Path(migrations.__file__).parent
    shutil.copytree(shipped, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "r9001_sources_language.py").write_text(
        '"""Test-only: sources get a language."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "9001"\ndown_revision = "{head_revision()}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        '    with op.batch_alter_table("sources") as batch:\n'
        '        batch.add_column(sa.Column("language", sa.String(20)))\n'
        f"{then}"
    )
    return scripts


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns(table)}
    engine.dispose()
    return columns


def test_older_database_missing_a_column_gets_it(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database one revision behind gets the column the next revision adds, rows kept."""
    scripts = _migrations_with_a_language_column(tmp_path)
    open_engine(empty_url).dispose()  # the shipped revisions: no "language" yet
    _insert_old_source(empty_url)
    monkeypatch.setattr(migrations, "MIGRATIONS", scripts)

    engine = open_engine(empty_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, language FROM sources")).all()
    engine.dispose()

    assert [tuple(row) for row in rows] == [("Old Gazette", None)]
    assert _revision(empty_url) == "9001"


def test_sqlite_passages_from_before_autoincrement_stop_reusing_ids(tmp_path: Path) -> None:
    """A pre-AUTOINCREMENT passages table is rebuilt: rows kept, a deleted id never returns."""
    url = f"sqlite:///{tmp_path / 'newsbot.db'}"
    old = MetaData()
    for table in _release_schema().sorted_tables:
        if table.name != "feed_items":  # added with AUTOINCREMENT, in the same commit
            table.to_metadata(old)
    old.tables["passages"].dialect_options["sqlite"]["autoincrement"] = False
    _create_all(url, old)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (id, guild_id, name, kind, location, created_at, failures) "
                "VALUES (1, 0, 'Old Gazette', 'local', '/srv/old', CURRENT_TIMESTAMP, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO articles (id, source_id, key, title, outlet, ingested_at, "
                "content_hash, body) VALUES (1, 1, 'k', 'T', 'O', CURRENT_TIMESTAMP, 'h', 'b')"
            )
        )
        for position in (1, 2, 3):
            connection.execute(
                text(
                    "INSERT INTO passages (article_id, position, text, text_hash) "
                    "VALUES (1, :position, 'text', 'hash')"
                ),
                {"position": position},
            )
    engine.dispose()

    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM passages WHERE id = 3"))
        connection.execute(
            text(
                "INSERT INTO passages (article_id, position, text, text_hash) "
                "VALUES (1, 3, 'new text', 'new hash')"
            )
        )
        ids = connection.execute(text("SELECT id FROM passages ORDER BY id")).scalars().all()
        tables = set(inspect(connection).get_table_names())
        indexes = {index["name"] for index in inspect(connection).get_indexes("passages")}
    engine.dispose()

    assert ids == [1, 2, 4]
    assert "feed_items" in tables and "ix_passages_text_hash" in indexes
    assert _differences_from_the_models(url) == []


def test_newer_database_is_refused_in_one_line(empty_url: str, cli) -> None:
    """A database upgraded by a newer newsbot is refused with a one-line error, exit 1."""
    open_engine(empty_url).dispose()
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dface'"))
    engine.dispose()

    result = cli(empty_url, "stats")

    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert "revision f00dface" in result.output and "newer newsbot" in result.output
    assert _revision(empty_url) == "f00dface"


def test_foreign_tables_are_refused_not_adopted(empty_url: str) -> None:
    """A sources table that is not newsbot's is named, and the database left alone."""
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE sources (id INTEGER PRIMARY KEY, url TEXT)"))
    engine.dispose()

    with pytest.raises(
        SchemaError, match=re.escape("not made by newsbot (its sources table has no guild_id")
    ):
        open_engine(empty_url)

    assert _revision(empty_url) is None


UPGRADE_THEN_HANG = """
import sys
from pathlib import Path
import ingest.migrations
ingest.migrations.MIGRATIONS = Path(sys.argv[1])
from ingest.db import open_engine
open_engine(sys.argv[2])
"""


def test_upgrade_killed_midway_leaves_the_old_schema_and_completes_next_start(
    empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 inside a migration keeps the previous revision whole; the next start upgrades."""
    open_engine(empty_url).dispose()
    reached = tmp_path / "reached"
    hanging = _migrations_with_a_language_column(
        tmp_path,
        then=f"    __import__('pathlib').Path({str(reached)!r}).touch()\n"
        "    __import__('time').sleep(300)\n",
    )
    child = subprocess.Popen([sys.executable, "-c", UPGRADE_THEN_HANG, str(hanging), empty_url])
    while not reached.exists() and child.poll() is None:
        time.sleep(0.01)
    assert reached.exists(), "the upgrade never reached the test revision"
    child.kill()
    child.wait()

    assert _revision(empty_url) == head_revision()
    assert "language" not in _columns(empty_url, "sources")
    monkeypatch.setattr(migrations, "MIGRATIONS", _migrations_with_a_language_column(tmp_path))
    open_engine(empty_url).dispose()
    assert _revision(empty_url) == "9001"
    assert "language" in _columns(empty_url, "sources")


CHILD = """
import sys, time
from pathlib import Path
from bot.cli import app
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
app(["stats"])
"""


def _first_opens_at_once(url: str, folder: Path, processes: int = 4) -> list[str]:
    """Start `newsbot stats` several times on one new database at the same moment."""
    go = folder / "go"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("NEWSBOT_")},
        "NEWSBOT_DATA_DIR": str(folder / "data"),
        "NEWSBOT_DATABASE_URL": url,
        "NEWSBOT_LOG_LEVEL": "WARNING",
    }
    ready = [folder / f"ready{number}" for number in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(flag), str(go)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for flag in ready
    ]
    # Imported and waiting, all of them: then they open the database together.
    while not all(flag.exists() for flag in ready) and all(c.poll() is None for c in children):
        time.sleep(0.01)
    go.touch()
    failures = []
    for child in children:
        output, _ = child.communicate(timeout=120)
        if child.returncode != 0:
            failures.append((output.strip().splitlines() or ["(no output)"])[-1][:300])
    return failures


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_processes_opening_a_new_database_at_once_all_start(backend: str, tmp_path: Path) -> None:
    """Four `newsbot stats` started together on a new database all succeed, two rounds."""
    for round_ in range(2):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        if backend == "sqlite":
            assert _first_opens_at_once(f"sqlite:///{folder / 'newsbot.db'}", folder) == []
            continue
        with postgres_schema_url() as url:
            assert _first_opens_at_once(url, folder) == []


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Run the shipped migrations up (or down) to ``revision`` on its own connection."""
    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        (alembic_command.downgrade if down else alembic_command.upgrade)(config, revision)
    engine.dispose()


def test_revision_0005_adds_follows_to_a_database_with_news_and_drops_them_going_back(
    empty_url: str,
) -> None:
    """A 0003 database gets the follow tables with its news kept; follows die with articles."""
    _migrate(empty_url, "0003")
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (id, guild_id, name, kind, location, created_at, failures) "
                "VALUES (1, 7, 'Courier', 'feed', 'https://c.example/rss', CURRENT_TIMESTAMP, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO articles (id, source_id, key, title, outlet, ingested_at, "
                "content_hash, body) VALUES (1, 1, 'k', 'Ferry', 'Courier', CURRENT_TIMESTAMP, "
                "'h', 'The ferry runs.')"
            )
        )
    engine.dispose()

    engine = open_engine(empty_url)  # what every start does: up to the newest revision
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.execute(
            text(
                "INSERT INTO follows (guild_id, channel_id, topic, created_by, created_at, "
                "paused) VALUES (7, 70, 'the ferry', 700, CURRENT_TIMESTAMP, false)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO follow_posts (follow_id, article_id, passage_id, status, at) "
                "VALUES (1, 1, NULL, 'posted', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(text("DELETE FROM articles WHERE id = 1"))
        left = connection.execute(text("SELECT count(*) FROM follow_posts")).scalar()
        titles = connection.execute(text("SELECT topic FROM follows")).scalars().all()
    engine.dispose()

    assert _revision(empty_url) == head_revision()
    assert (left, titles) == (0, ["the ferry"])
    assert _differences_from_the_models(empty_url) == []

    _migrate(empty_url, "0003", down=True)
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert "follows" not in tables and "follow_posts" not in tables
    assert {"sources", "articles", "passages"} <= tables


def test_database_at_0003_gets_the_vote_tables_and_can_go_back(empty_url: str) -> None:
    """0003 → 0004 adds answers, answer_quotes and votes, rows kept; the downgrade drops them."""
    _migrate(empty_url, "0003")
    _insert_old_source(empty_url)

    open_engine(empty_url).dispose()
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        names = connection.execute(text("SELECT name FROM sources")).scalars().all()
    engine.dispose()
    assert {"answers", "answer_quotes", "votes"} <= tables
    assert names == ["Old Gazette"]
    assert _differences_from_the_models(empty_url) == []

    _migrate(empty_url, "0003", down=True)
    assert _revision(empty_url) == "0003"
    assert "votes" not in set(_tables(empty_url))


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = inspect(connection).get_table_names()
    engine.dispose()
    return names


def test_revision_0007_numbers_the_cached_models_keeping_every_vector_and_back(
    empty_url: str,
) -> None:
    """0006 → 0007 keys cached vectors by model number (each model's rows kept, bytes intact);
    the downgrade names them again."""
    _migrate(empty_url, "0006")
    rows = [
        {"model": model, "text_hash": f"{i:064x}", "vector": bytes([i % 256, n]) * 768}
        for n, model in enumerate(["minilm@onnx", "minilm@torch"])
        for i in range(300, 0, -1)  # inserted out of key order
    ]
    engine = create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO embedding_cache (model, text_hash, vector) "
                "VALUES (:model, :text_hash, :vector)"
            ),
            rows,
        )
    engine.dispose()
    expected = sorted((r["model"], r["text_hash"], r["vector"]) for r in rows)

    _migrate(empty_url, "0007")
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT m.name, c.text_hash, c.vector FROM embedding_cache c "
                "JOIN embedding_models m ON m.id = c.model_id"
            )
        ).all()
        models = connection.execute(text("SELECT name FROM embedding_models")).scalars().all()
    engine.dispose()
    assert sorted(tuple(row) for row in found) == expected
    assert sorted(models) == ["minilm@onnx", "minilm@torch"]

    _migrate(empty_url, "0006", down=True)
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        back = connection.execute(
            text("SELECT model, text_hash, vector FROM embedding_cache")
        ).all()
    engine.dispose()
    assert sorted(tuple(row) for row in back) == expected
