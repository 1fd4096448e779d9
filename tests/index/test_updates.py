"""Index updates from the passage change log: only the new entries are read and applied."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, select

from index import segments
from index.cache import remember_vectors
from index.embedder import Embedder
from index.search import Retriever, SearchFilters
from index.updates import BUILT, COMPARED, FROM_LOG
from ingest.changelog import latest_sequence, prune_changes
from ingest.db import session_scope
from ingest.models import Passage
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from tests.index.test_segments import GaussianWordEmbedder, same_results, stories, words_retriever
from tests.index.words import NOW


def built(engine: Engine, root: Path, count: int = 40) -> Retriever:
    store_raw_articles(engine, stories(count, 1), "ledger")
    retriever = words_retriever(engine, root)
    assert retriever.sync().found_by == BUILT
    return retriever


def fresh(engine: Engine, root: Path) -> Retriever:
    rebuilt = words_retriever(engine, root)
    rebuilt.rebuild()
    return rebuilt


def test_an_ingest_takes_in_only_the_log_entries_it_made(engine: Engine, tmp_path: Path) -> None:
    """Two new articles on a 120-passage index: six entries read, six passages added."""
    retriever = built(engine, tmp_path / "index")
    new = store_raw_articles(engine, stories(2, 2, "n"), "wire").result
    report = retriever.sync()
    assert (report.found_by, report.log_entries, report.added, report.removed) == (
        FROM_LOG,
        6,
        6,
        0,
    )
    assert report.total == 126 and report.log_sequence == latest_sequence(engine)
    assert set(new.passage_ids) <= set(retriever.live().catalog.ids.tolist())
    same_results(retriever, fresh(engine, tmp_path / "fresh"))
    assert retriever.sync().log_entries == 0  # nothing new: nothing read


def test_removals_and_new_dates_reach_the_index_through_the_log(
    engine: Engine, tmp_path: Path
) -> None:
    """A removed source's passages leave; an article's corrected date moves it in time."""
    retriever = built(engine, tmp_path / "index")
    gone = store_raw_articles(engine, stories(3, 3, "g"), "courier")
    retriever.sync()
    with session_scope(engine) as session:
        remove_source(session, gone.source_id)
    moved = stories(40, 1)[:1]
    redated = [replace(moved[0], published_at=NOW - timedelta(days=400))]
    store_raw_articles(engine, redated, "ledger")
    report = retriever.sync()
    assert (report.found_by, report.removed, report.added) == (FROM_LOG, 9, 0)
    recent = SearchFilters(since=NOW - timedelta(days=30), read_question=False)
    assert retriever.searchable_count(recent) == 117  # the redated article's 3 are older now
    same_results(retriever, fresh(engine, tmp_path / "fresh"))


def test_an_index_saved_before_the_log_is_compared_once(engine: Engine, tmp_path: Path) -> None:
    """No recorded entry: the whole index is compared with the database, then the log rules."""
    root = tmp_path / "index"
    retriever = built(engine, root)
    manifest = segments.read_manifest(root)
    assert manifest is not None
    segments.publish(root, replace(manifest, log_sequence=None, version="v-old"))
    store_raw_articles(engine, stories(1, 4, "n"), "wire")
    assert retriever.sync().found_by == COMPARED
    store_raw_articles(engine, stories(1, 5, "m"), "wire")
    report = retriever.sync()
    assert (report.found_by, report.added, report.total) == (FROM_LOG, 3, 126)


def test_an_index_behind_the_log_window_falls_back_to_a_full_comparison(
    engine: Engine, tmp_path: Path
) -> None:
    """A replica stopped past the window: the log no longer covers it, it compares instead."""
    root = tmp_path / "index"
    built(engine, root)
    store_raw_articles(engine, stories(2, 6, "n"), "wire")
    with session_scope(engine) as session:
        remove_source(session, 1)  # the 120 passages the index holds
    assert prune_changes(engine, timedelta(0)) > 0
    replica = words_retriever(engine, root)
    report = replica.sync()
    assert (report.found_by, report.added, report.removed, report.total) == (COMPARED, 6, 120, 6)
    same_results(replica, fresh(engine, tmp_path / "fresh"))
    assert replica.sync().found_by == FROM_LOG


def test_a_rebuild_records_the_newest_entry(engine: Engine, tmp_path: Path) -> None:
    """After a reindex the log is read from its end: nothing is applied twice."""
    retriever = built(engine, tmp_path / "index")
    store_raw_articles(engine, stories(2, 7, "n"), "wire")
    assert retriever.rebuild().log_sequence == latest_sequence(engine)
    assert retriever.sync().log_entries == 0


def test_passages_without_a_vector_wait_for_a_later_catch_up(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """With workers embedding, the index takes a logged passage once its vector is cached."""
    root = tmp_path / "index"
    built(sqlite_engine, root)
    embedder = GaussianWordEmbedder()
    replica = Retriever(sqlite_engine, cast(Embedder, embedder), root, embed_passages=False)
    new = store_raw_articles(sqlite_engine, stories(1, 8, "n"), "wire").result
    first = replica.sync()
    assert (first.added, first.total) == (0, 120)
    manifest = segments.read_manifest(root)
    assert manifest is not None and list(manifest.log_waiting) == sorted(new.passage_ids)
    with session_scope(sqlite_engine) as session:
        rows = session.execute(select(Passage.text_hash, Passage.text)).all()
    vectors = {digest: embedder.embed([text])[0] for digest, text in rows}
    remember_vectors(sqlite_engine, embedder.name, vectors)  # as a worker does
    second = replica.sync()
    assert (second.found_by, second.log_entries, second.added, second.total) == (
        FROM_LOG,
        0,
        3,
        123,
    )
    manifest = segments.read_manifest(root)
    assert manifest is not None and manifest.log_waiting == ()
