"""An article changed after it was indexed: the next sync serves its new text and metadata.

The index keeps vectors and BM25 documents by passage id; these tests change a stored
article the ways ingest can (new text, new title, new outlet or date), or put another
database under the index, and check what a user of the bot would see after
``Retriever.sync``, on one long-lived retriever like the bot's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from index.answer import Answer, Answerer
from index.search import Retriever, SearchFilters
from index.segments import current_version
from ingest.db import open_engine, session_scope
from ingest.models import Article, Passage
from ingest.pipeline import store_raw_articles
from tests.index.words import DAY, FIRE, NOW, TRAM

VOTE = "Harbor City Council approved the Eastshore tram line on Wednesday, nine votes to four."
RECOUNT = "A recount overturned the Eastshore tram decision after auditors found missing ballots."


def ask(retriever: Retriever, question: str, filters: SearchFilters | None = None) -> Answer:
    """The bot's answer; abstention judged on the question's key words alone."""
    return Answerer(retriever.engine, retriever, min_score=0.0, min_cosine=0.0).answer(
        question, 1, filters
    )


def passage_ids(retriever: Retriever, key: str) -> list[int]:
    with session_scope(retriever.engine) as session:
        query = select(Passage.id).join(Article).where(Article.key == key).order_by(Passage.id)
        return list(session.scalars(query))


def test_changed_text_is_found_by_its_new_words_and_quoted_as_is(retriever: Retriever) -> None:
    """After an edit and a sync, the new wording is quoted and the old one finds nothing."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    assert VOTE in ask(retriever, "nine votes to four").passages[0].text
    before = passage_ids(retriever, "tram")

    store_raw_articles(retriever.engine, [replace(TRAM, body=RECOUNT), FIRE], "ledger")
    report = retriever.sync()

    assert not set(passage_ids(retriever, "tram")) & set(before)  # new rows, never edited ones
    assert (report.added, report.removed, report.embedded) == (1, 1, 1)
    answer = ask(retriever, "Why was the Eastshore tram decision overturned by a recount?")
    assert not answer.abstained and answer.passages[0].text == RECOUNT
    assert ask(retriever, "nine votes to four").abstained


def test_changed_title_is_searchable_and_the_old_one_is_not(retriever: Retriever) -> None:
    """A new headline over the same text: its words find the story, the old headline's don't."""
    headline = replace(TRAM, title="Tram line gets green light")
    store_raw_articles(retriever.engine, [headline, FIRE], "ledger")
    retriever.sync()
    assert ask(retriever, "green light").passages[0].title == "Tram line gets green light"

    renamed = replace(TRAM, title="Streetcar plan clears council")
    store_raw_articles(retriever.engine, [renamed, FIRE], "ledger")
    report = retriever.sync()

    assert report.embedded == 0  # same text: its vector comes from the cache
    answer = ask(retriever, "streetcar plan")
    assert not answer.abstained
    assert answer.passages[0].title == "Streetcar plan clears council"
    assert answer.passages[0].text == VOTE
    assert ask(retriever, "green light").abstained


def test_changed_outlet_is_what_questions_can_name(retriever: Retriever) -> None:
    """An article re-stored under another outlet is found by the new name, not the old."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    assert "Harbor City Ledger" in retriever.outlets()

    store_raw_articles(
        retriever.engine, [replace(TRAM, outlet="Eastshore Gazette"), FIRE], "ledger"
    )
    retriever.sync()

    assert sorted(retriever.outlets()) == ["Eastshore Gazette", "Valley Wire"]
    answer = ask(retriever, "What did the council approve, according to Eastshore Gazette?")
    assert answer.passages and answer.passages[0].text == VOTE
    narrowed = retriever.narrowed(SearchFilters(), source="Eastshore Gazette")
    assert retriever.searchable_count(narrowed) == 1


def test_changed_date_moves_the_article_in_time(retriever: Retriever) -> None:
    """A corrected publication date decides what "as of" and date windows see."""
    misdated = replace(TRAM, published_at=NOW + 30 * DAY)
    store_raw_articles(retriever.engine, [misdated, FIRE], "ledger")
    retriever.sync()
    as_of_now = SearchFilters(as_of=NOW)
    assert ask(retriever, "nine votes to four", as_of_now).abstained

    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()

    answer = ask(retriever, "nine votes to four", as_of_now)
    assert not answer.abstained and answer.passages[0].text == VOTE
    window = SearchFilters(since=NOW - 3 * DAY, until=NOW)
    assert retriever.searchable_count(window) == 2


def test_unchanged_database_publishes_no_new_version(retriever: Retriever) -> None:
    """Re-storing the same articles leaves the live index version as it was."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    version = current_version(retriever.root)

    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    report = retriever.sync()

    assert (report.added, report.removed, report.embedded) == (0, 0, 0)
    assert current_version(retriever.root) == version
    # Nor does a new process (the bot starting up) that finds the index up to date.
    restarted = Retriever(retriever.engine, retriever.embedder, retriever.root)
    assert restarted.sync().added == 0 and current_version(retriever.root) == version
    assert ask(restarted, "nine votes to four").passages[0].text == VOTE


def test_new_database_under_the_old_index_serves_its_own_passages(
    retriever: Retriever, tmp_path: Path
) -> None:
    """A wiped or swapped database reuses passage ids: their old vectors and words must go."""
    store_raw_articles(retriever.engine, [TRAM], "ledger")
    retriever.sync()

    fresh = open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        store_raw_articles(fresh, [FIRE], "wire")
        assert passage_ids(retriever, "tram") == [1]
        moved = Retriever(fresh, retriever.embedder, retriever.root)
        report = moved.sync()

        assert (report.added, report.removed, report.total) == (1, 1, 1)
        answer = ask(moved, "How contained was the Sorrel Ridge wildfire?")
        assert not answer.abstained and answer.passages[0].title == "Wildfire contained"
        best = moved.search("Sorrel Ridge wildfire contained", k=1)[0]
        assert best.similarity > 0.5  # the wildfire's own vector, not the tram's
        assert ask(moved, "nine votes to four").abstained
    finally:
        fresh.dispose()
