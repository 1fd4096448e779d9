"""``newsbot migrate-to URL``: a SQLite deployment moved to PostgreSQL, as an operator does it,
each step a real ``newsbot`` process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.services.feedback import cast_vote, record_answer
from index.answer import Answer
from ingest.db import open_engine, session_scope
from ingest.follows import add_follow
from ingest.models import Follow, Passage, Vote
from tests.bot.conftest import GUILD_A
from tests.conftest import postgres_schema_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How many jobs is Brightloom Software cutting?"


def newsbot(
    data_dir: Path, *arguments: str, database: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``newsbot ARGUMENTS`` run to its end, stdin empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), NEWSBOT_DATA_DIR=str(data_dir))
    if database is not None:
        env["NEWSBOT_DATABASE_URL"] = database
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *arguments],
        env=env,
        cwd=data_dir.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def quotes(data_dir: Path, database: str | None = None) -> list[tuple[str, str]]:
    done = newsbot(data_dir, "ask", QUESTION, "--json", database=database)
    assert done.returncode == 0, done.stderr
    return [(p["title"], p["text"]) for p in json.loads(done.stdout)["passages"]]


def dump(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return list(connection.iterdump())


@pytest.fixture
def target() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


def test_a_sqlite_deployment_moved_to_postgresql_answers_the_same_embedding_nothing(
    tmp_path: Path, target: str
) -> None:
    """Sample corpus, a vote, a follow: copied, ids kept; the same quotes, 0 embedded."""
    data = tmp_path / "data"
    first = newsbot(data, "run", "--quiet")  # the first run: the sample corpus, indexed
    assert first.returncode == 0, first.stderr
    sqlite_file = data / "newsbot.db"
    engine = open_engine(f"sqlite:///{sqlite_file}")
    answered = Answer(QUESTION, False, [], 5)
    cast_vote(engine, record_answer(engine, answered, GUILD_A, "ask"), GUILD_A, 42, True)
    with session_scope(engine) as session:
        add_follow(session, GUILD_A, 1234, "Brightloom layoffs", None, 42)
        passages = session.scalar(select(func.count()).select_from(Passage))
    engine.dispose()
    before = quotes(data)
    untouched = dump(sqlite_file)

    moved = newsbot(data, "migrate-to", target)
    again = newsbot(data, "migrate-to", target)

    assert moved.returncode == 0, moved.stderr
    assert "copied" in moved.stdout and "passages 34" in moved.stdout, moved.stdout
    assert dump(sqlite_file) == untouched
    # A replica with a new data directory: its index from the copied vectors alone.
    elsewhere = tmp_path / "elsewhere"
    started = newsbot(elsewhere, "run", "--quiet", database=target)
    assert started.returncode == 0, started.stderr
    assert f"index: {passages} passages ({passages} added, 0 removed, 0 embedded)" in (
        started.stdout
    ), started.stdout
    assert "sample corpus" not in started.stderr  # not a new database: nothing ingested again
    assert quotes(elsewhere, target) == before
    moved_engine = open_engine(target)
    try:
        with session_scope(moved_engine) as session:
            follows = [(f.guild_id, f.topic) for f in session.scalars(select(Follow))]
            votes = [(v.user_id, v.helpful) for v in session.scalars(select(Vote))]
    finally:
        moved_engine.dispose()
    assert follows == [(GUILD_A, "Brightloom layoffs")]
    assert votes == [(42, True)]
    # Run again: refused in one line, the target as it was.
    assert again.returncode == 1
    assert again.stderr.startswith("error: the target database") and "not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
