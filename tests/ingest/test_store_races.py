"""Several processes writing the same source at once, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select

from ingest.db import session_scope
from ingest.models import Article, Passage, Source
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS
from tests.conftest import REPO

ROUNDS = 4
WRITERS = 3

# Each writer opens the database once; every round it says it is ready, waits for the go
# file (so that all writers start together), writes, prints one line and says it is done.
WORKER = """
import sys, time, traceback
from pathlib import Path
from ingest.db import open_engine, session_scope
from ingest.pipeline import ingest_paths
from ingest.sources import add_source

url, job, folder, flags, rounds = sys.argv[1:6]
engine = open_engine(url)

def wait_for(path):
    while not path.exists():
        time.sleep(0.001)

for round in range(int(rounds)):
    Path(f"{flags}-ready-{round}").touch()
    wait_for(Path(f"{flags}-go-{round}"))
    try:
        if job == "ingest":
            report = ingest_paths(engine, [Path(folder)], "sample")
            print(report.result.added + report.result.unchanged, flush=True)
        else:
            with session_scope(engine) as session:
                print("added", add_source(session, folder, "sample").id, flush=True)
    except Exception as error:
        print(type(error).__name__, " ".join(str(error).split())[:300], flush=True)
        traceback.print_exc()
    Path(f"{flags}-done-{round}").touch()
"""


def races(engine: Engine, tmp_path: Path, job: str, folder: Path) -> Iterator[list[str]]:
    """Start WRITERS worker processes, then per round: empty the database, let them all
    write at once, and yield each one's line about the round."""
    url = engine.url.render_as_string(hide_password=False)
    flags = [tmp_path / f"{job}-{n}" for n in range(WRITERS)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, job, str(folder), str(flag), str(ROUNDS)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in flags
    ]
    try:
        for round in range(ROUNDS):
            wait_for([Path(f"{flag}-ready-{round}") for flag in flags], processes)
            with session_scope(engine) as session:
                session.execute(delete(Source))
            for flag in flags:
                Path(f"{flag}-go-{round}").touch()
            wait_for([Path(f"{flag}-done-{round}") for flag in flags], processes)
            yield [p.stdout.readline().strip() for p in processes]  # type: ignore[union-attr]
        for process in processes:
            assert process.wait(timeout=60) == 0, process.stderr.read()  # type: ignore[union-attr]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()


def wait_for(paths: list[Path], processes: list[subprocess.Popen]) -> None:
    while not all(path.exists() for path in paths):
        for process in processes:
            assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.01)


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count(Source.id))) or 0,
            session.scalar(select(func.count(Article.id))) or 0,
            session.scalar(select(func.count(Passage.id))) or 0,
        )


@pytest.mark.slow
def test_concurrent_ingests_of_one_folder_all_succeed(engine: Engine, tmp_path: Path) -> None:
    """Writers ingesting the same folder at once all succeed, and each article is stored once."""
    for lines in races(engine, tmp_path, "ingest", SAMPLE_CORPUS):
        # Each writer stored or found all 12 articles: none failed, none was lost.
        assert lines == ["12"] * WRITERS
        sources, articles, passages = counts(engine)
        assert (sources, articles) == (1, 12)
        with session_scope(engine) as session:
            keys = session.scalar(select(func.count(func.distinct(Article.key))))
            positions = session.execute(
                select(Passage.article_id, Passage.position)
                .group_by(Passage.article_id, Passage.position)
                .having(func.count() > 1)
            ).all()
        assert keys == 12 and positions == []
        assert passages > 12


@pytest.mark.slow
def test_concurrent_adds_of_one_source_name_it(engine: Engine, tmp_path: Path) -> None:
    """Writers adding the same source at once: one adds it, the others say it exists."""
    folder = tmp_path / "news"
    folder.mkdir()
    for lines in races(engine, tmp_path, "add", folder):
        added = [line for line in lines if line.startswith("added ")]
        refused = [line for line in lines if not line.startswith("added ")]
        assert len(added) == 1, lines
        assert all(
            line.startswith("InputError already a source: sample (id ") for line in refused
        ), lines
        assert len(refused) == WRITERS - 1
        assert counts(engine)[0] == 1


HOLD_LOCK = """
import sqlite3, sys, time
from pathlib import Path
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE sources SET name = name")
Path(sys.argv[2]).touch()
time.sleep(2)
connection.execute("COMMIT")
"""


def test_a_sqlite_writer_waits_for_another_process_lock(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """While another process holds SQLite's write lock, an ingest waits for it instead of
    failing with "database is locked"."""
    database = sqlite_engine.url.database
    assert database is not None
    ready = tmp_path / "locked"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, database, str(ready)])
    try:
        wait_for([ready], [holder])
        report = ingest_paths(sqlite_engine, [SAMPLE_CORPUS], "sample")
    finally:
        assert holder.wait(timeout=60) == 0
    assert report.result.added == 12 and counts(sqlite_engine)[1] == 12
