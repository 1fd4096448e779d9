"""Storing articles and passages, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from ingest.db import session_scope
from ingest.extract import RawArticle
from ingest.models import Article, Passage
from ingest.pipeline import ingest_paths, store_raw_articles
from ingest.sample import SAMPLE_CORPUS
from ingest.sources import remove_source
from ingest.split import MAX_PASSAGE_CHARS
from ingest.store import passages_beside


def article(
    key: str, body: str, title: str = "Bridge closes for repairs", **extra: Any
) -> RawArticle:
    return RawArticle(title=title, body=body, key=key, url=f"https://ledger.example/{key}", **extra)


BODY = (
    "The Old Mill Bridge will close on Monday for fourteen months of repairs.\n\n"
    "Inspectors found corroded bearings during a routine check in September."
)


def counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        return (
            session.scalar(select(func.count(Article.id))) or 0,
            session.scalar(select(func.count(Passage.id))) or 0,
        )


def test_ingesting_twice_adds_nothing(engine: Engine) -> None:
    """The same sample corpus ingested twice leaves the same articles and passages."""
    first = ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    before = counts(engine)
    second = ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    assert first.result.added == 12
    assert second.result.added == 0 and second.result.unchanged == 12
    assert second.result.passages_added == 0
    assert counts(engine) == before


def test_changed_article_replaces_its_passages(engine: Engine) -> None:
    """An updated article keeps one copy: new passages in, old ones out."""
    store_raw_articles(engine, [article("bridge", BODY)], "ledger")
    updated = BODY.replace("fourteen months", "sixteen months")
    result = store_raw_articles(engine, [article("bridge", updated)], "ledger").result
    assert (result.updated, result.passages_removed) == (1, 1)
    with session_scope(engine) as session:
        texts = list(session.scalars(select(Passage.text)))
    assert len(texts) == 1 and "sixteen months" in texts[0]


def test_same_story_under_another_url_is_a_duplicate(engine: Engine) -> None:
    """Identical text at a second URL of the same source is not stored twice."""
    result = store_raw_articles(
        engine, [article("bridge", BODY), article("bridge?amp=1", BODY)], "ledger"
    ).result
    assert (result.added, result.duplicates) == (1, 1)


def test_passages_fit_and_point_back_to_their_article(engine: Engine) -> None:
    """Every stored passage is at most 1,000 characters and knows its article and position."""
    ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    with session_scope(engine) as session:
        rows = session.execute(select(Passage.text, Passage.article_id, Passage.position)).all()
    assert rows
    assert all(len(text) <= MAX_PASSAGE_CHARS for text, _, _ in rows)
    positions: dict[int, list[int]] = {}
    for _, article_id, position in rows:
        positions.setdefault(article_id, []).append(position)
    assert all(sorted(p) == list(range(len(p))) for p in positions.values())


def test_noise_never_becomes_a_passage(engine: Engine) -> None:
    """UI lines, bylines and author bios of the sample outlets are not stored as passages."""
    ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    with session_scope(engine) as session:
        texts = list(session.scalars(select(Passage.text)))
    paragraphs = [p for t in texts for p in t.split("\n\n")]
    for noise in ("Read more", "Show More", "News Feed", "min read", "Avatar", "Article image"):
        assert not any(p.strip() == noise for p in paragraphs), noise
    assert not any(p.startswith("Related Sources") for p in paragraphs)


def test_removing_a_source_removes_its_articles_and_passages(engine: Engine) -> None:
    """`sources remove` leaves nothing of the source behind in the database."""
    report = store_raw_articles(engine, [article("bridge", BODY)], "ledger")
    store_raw_articles(engine, [article("other", BODY + "\n\nA third line of news.")], "dispatch")
    with session_scope(engine) as session:
        removed = remove_source(session, report.source_id)
    assert (removed.articles, removed.passages) == (1, 1)
    assert counts(engine) == (1, 1)


def test_passages_beside_returns_just_the_neighbours_asked_for(engine: Engine) -> None:
    """Only the passages right before and after each place come back, with their text."""
    ingest_paths(engine, [SAMPLE_CORPUS], "sample")
    with session_scope(engine) as session:
        rows = session.execute(select(Passage.article_id, Passage.position, Passage.text)).all()
        text = {(article, position): body for article, position, body in rows}
        long = sorted({a for a, p in text if (a, 2) in text})[:2]
        assert len(long) == 2, "the sample corpus has articles of three passages or more"
        first, second = long
        beside = passages_beside(session, [(first, 1), (second, 0)])
    assert beside == {
        (first, 0): text[(first, 0)],
        (first, 2): text[(first, 2)],
        (second, 1): text[(second, 1)],
    }


def test_a_corrected_date_or_outlet_counts_as_an_update(engine: Engine) -> None:
    """Same text, new date or outlet: updated (so the bot syncs its index), passages kept."""
    when = datetime(2025, 3, 1, 9, tzinfo=UTC)
    first = article("bridge", BODY, published_at=when)
    store_raw_articles(engine, [first], "ledger")
    again = store_raw_articles(engine, [first], "ledger").result
    assert (again.updated, again.unchanged) == (0, 1)
    redated = replace(first, published_at=when + timedelta(days=2))
    moved = store_raw_articles(engine, [redated], "ledger").result
    assert (moved.updated, moved.unchanged, moved.passages_added) == (1, 0, 0)
    renamed = replace(redated, outlet="Harbour Post")
    assert store_raw_articles(engine, [renamed], "ledger").result.updated == 1
    with session_scope(engine) as session:
        stored = session.scalars(select(Article)).one()
        assert (stored.published_at, stored.outlet) == (when + timedelta(days=2), "Harbour Post")


def test_storing_never_scans_the_paragraph_sightings(sqlite_engine: Engine) -> None:
    """Every look-up of paragraph sightings while storing uses an index, so a write
    transaction does not grow with the whole corpus (a scan per article held the lock)."""
    from sqlalchemy import event

    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "paragraph_sightings" in statement:
            statements.append((statement, parameters))

    event.listen(sqlite_engine, "before_cursor_execute", record)
    try:
        ingest_paths(sqlite_engine, [SAMPLE_CORPUS], "sample")
        store_raw_articles(sqlite_engine, [article("bridge", BODY)], "sample")
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", record)
    assert statements
    with sqlite_engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            steps = [row[-1] for row in plan]
            assert not any(step.startswith("SCAN paragraph_sightings") for step in steps), steps
