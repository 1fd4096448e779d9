"""The passage change log, written by every passage writer, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ingest.changelog import Changes, changes_after, latest_sequence, prune_changes
from ingest.db import session_scope
from ingest.models import Passage
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from tests.conftest import REPO
from tests.ingest.test_store import BODY, article, story


def stored_ids(engine: Engine) -> list[int]:
    with session_scope(engine) as session:
        return sorted(session.scalars(select(Passage.id)))


def replayed(changes: Changes) -> list[int]:
    """The passages an index built from nothing by these changes would hold."""
    return sorted(set(changes.added) | set(changes.retagged))


def test_the_log_replayed_from_the_start_is_the_passages_table(engine: Engine) -> None:
    """New articles, a footer re-splitting an older one, an update and a removal: all logged."""
    store_raw_articles(engine, [story(1)], "ledger")
    store_raw_articles(engine, [story(2)], "ledger")  # story 1 loses the footer: re-split
    store_raw_articles(engine, [article("bridge", BODY)], "courier")
    store_raw_articles(engine, [article("bridge", BODY + "\n\nIt reopens in May.")], "courier")
    gone = store_raw_articles(engine, [article("tram", BODY, title="Trams")], "wire")
    with session_scope(engine) as session:
        remove_source(session, gone.source_id)
    changes = changes_after(engine, 0)
    assert changes.complete and changes.through == latest_sequence(engine)
    assert replayed(changes) == stored_ids(engine)
    assert len(changes.removed) == 3  # story 1's first split, the old bridge, the tram
    assert not set(changes.removed) & set(stored_ids(engine))


def test_a_new_date_on_the_same_text_logs_its_passages_as_retagged(engine: Engine) -> None:
    """A corrected date keeps the passage rows; the log names them for the index to redo."""
    first = datetime(2025, 3, 1, tzinfo=UTC)
    store_raw_articles(engine, [article("bridge", BODY, published_at=first)], "ledger")
    before = latest_sequence(engine)
    redated = article("bridge", BODY, published_at=first + timedelta(days=1))
    result = store_raw_articles(engine, [redated], "ledger").result
    assert result.updated == 1 and result.retagged_ids == stored_ids(engine)
    changes = changes_after(engine, before)
    assert changes.retagged == stored_ids(engine) and changes.added == changes.removed == []


def test_a_reader_reads_only_the_entries_after_its_cursor(engine: Engine) -> None:
    """Catching up reads the new entries, however long the log is."""
    store_raw_articles(engine, [story(n) for n in range(1, 30)], "ledger")
    cursor = latest_sequence(engine)
    new = store_raw_articles(engine, [article("bridge", BODY)], "courier").result
    changes = changes_after(engine, cursor)
    assert (changes.added, changes.entries) == (new.passage_ids, len(new.passage_ids))
    assert changes_after(engine, changes.through) == Changes(changes.through)


def test_pruning_keeps_the_window_and_a_reader_behind_it_is_told(engine: Engine) -> None:
    """Entries older than the window go (never the newest); a cursor before them is stale."""
    store_raw_articles(engine, [story(1)], "ledger")
    stale = latest_sequence(engine)
    store_raw_articles(engine, [story(3)], "ledger")
    store_raw_articles(engine, [article("bridge", BODY)], "courier")
    current = latest_sequence(engine)
    assert prune_changes(engine, timedelta(days=30)) == 0
    assert prune_changes(engine, timedelta(0)) > 0
    assert latest_sequence(engine) == current  # the newest entry stays
    assert not changes_after(engine, stale).complete
    assert changes_after(engine, current) == Changes(current)
    assert not changes_after(engine, current + 10).complete  # another database's cursor


# A writer that holds its transaction open after appending to the log (a slow commit).
SLOW_WRITER = """
import sys, time
from pathlib import Path
from ingest.db import open_engine
from ingest.extract import RawArticle
from ingest.store import get_or_create_source, store_articles, write_scope

url, name, ready, hold = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
engine = open_engine(url)
body = f"The {name} council voted on Tuesday to extend the tram line to the harbour."
raw = RawArticle(title=f"{name} trams", body=body, key=name, url=f"https://x.example/{name}")
with write_scope(engine) as session:
    source = get_or_create_source(session, name, "local", f"local:{name}")
    store_articles(session, source, [raw])
    ready.touch()
    time.sleep(hold)
print("committed", flush=True)
"""


def writer(url: str, name: str, ready: Path, hold: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, url, name, str(ready), str(hold)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.postgres
def test_a_reader_misses_no_entry_of_writers_committing_out_of_order(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    """Two writer processes on PostgreSQL: the first to append commits last. A reader that
    catches up meanwhile must not step past the first one's entries."""
    url = postgres_engine.url.render_as_string(hide_password=False)
    first = writer(url, "first", tmp_path / "first", hold=8.0)
    wait_for(tmp_path / "first", first)
    second = writer(url, "second", tmp_path / "second", hold=0.0)
    # Without the append lock the second commits while the first still holds its entries.
    while first.poll() is None and second.poll() is None:
        time.sleep(0.01)
    cursor = changes_after(postgres_engine, 0)
    seen = replayed(cursor)
    for process in (first, second):
        assert process.wait(timeout=120) == 0
    later = changes_after(postgres_engine, cursor.through)
    assert sorted(seen + replayed(later)) == stored_ids(postgres_engine)
    assert len(stored_ids(postgres_engine)) == 2
