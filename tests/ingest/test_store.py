"""Storing articles and passages, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from ingest import store
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


def test_a_store_names_the_articles_and_passages_it_wrote(engine: Engine) -> None:
    """New or changed articles and the passages inserted for them come back by id."""
    first = store_raw_articles(engine, [article("bridge", BODY)], "ledger").result
    updated = BODY.replace("fourteen months", "sixteen months")
    second = store_raw_articles(engine, [article("bridge", updated)], "ledger").result
    unchanged = store_raw_articles(engine, [article("bridge", updated)], "ledger").result
    with session_scope(engine) as session:
        (article_id,) = session.scalars(select(Article.id))
        (passage_id,) = session.scalars(select(Passage.id))
    assert first.article_ids == second.article_ids == [article_id]
    assert second.passage_ids == [passage_id] and first.passage_ids != [passage_id]
    assert (unchanged.article_ids, unchanged.passage_ids) == ([], [])


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


FOOTER = "Sign up for the Ledger's morning briefing to get every story in your inbox daily."
PLACES = "Alder Birch Cedar Dogwood Elm Fir Gorse Hazel Ivy Juniper Larch Maple Oak Pine".split()


def story(number: int, footer: bool = True) -> RawArticle:
    """An article of its own (no near-copy of another) ending in the outlet's footer."""
    place = f"{PLACES[number % len(PLACES)]} Street number {number}"
    lines = [
        f"Crews on {place} began replacing the water main on Monday after a burst flooded cellars.",
        f"Residents of {place} will have water from a tanker until the work ends in {number} days.",
    ]
    return article(f"story-{number}", "\n\n".join(lines + [FOOTER] * footer), title=place)


def passages_with_footer(engine: Engine) -> int:
    with session_scope(engine) as session:
        query = select(func.count(Passage.id)).where(Passage.text.contains("morning briefing"))
        return session.scalar(query) or 0


def test_a_shared_footer_leaves_older_articles_once_it_repeats(engine: Engine) -> None:
    """The first article keeps the line until a second story repeats it; then both lose it."""
    store_raw_articles(engine, [story(1)], "ledger")
    assert passages_with_footer(engine) == 1
    store_raw_articles(engine, [story(2)], "ledger")
    assert passages_with_footer(engine) == 0
    store_raw_articles(engine, [story(2, footer=False)], "ledger")
    assert passages_with_footer(engine) == 1  # no longer repeated: story 1 gets it back


def test_storing_batches_that_share_a_footer_splits_older_articles_at_most_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New batches of an outlet with a footer split only the new articles, not every older one."""
    split: list[int] = []
    real_resplit = store._resplit

    def counting_resplit(article: Article, *args: Any) -> list[str] | None:
        split.append(article.id)
        return real_resplit(article, *args)

    monkeypatch.setattr(store, "_resplit", counting_resplit)
    for batch in range(5):
        store_raw_articles(engine, [story(batch * 10 + i) for i in range(10)], "ledger")
    assert passages_with_footer(engine) == 0
    assert max(Counter(split).values()) <= 2  # its own split, and once when the footer repeated
    assert len(split) <= 50 + 1


def test_boilerplate_lookups_use_an_index(sqlite_engine: Engine) -> None:
    """Every query on paragraph_sightings while storing searches an index, never scans."""
    store_raw_articles(sqlite_engine, [story(i) for i in range(3)], "ledger")
    statements: list[tuple[str, Any]] = []

    def remember(connection, cursor, statement, parameters, context, executemany) -> None:
        if "paragraph_sightings" in statement and statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(sqlite_engine, "before_cursor_execute", remember)
    try:
        store_raw_articles(sqlite_engine, [story(i) for i in range(3, 6)], "ledger")
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", remember)
    assert statements
    with sqlite_engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = [row[-1] for row in plan]
            assert not any(d.startswith("SCAN paragraph_sightings") for d in details), details
