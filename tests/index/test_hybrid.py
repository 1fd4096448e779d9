"""Hybrid retrieval without the real model: a bag-of-words fake embedder, tiny corpora."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Engine

from index.embedder import Embedder
from index.search import Retriever, SearchFilters
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.pipeline import store_raw_articles
from ingest.sources import remove_source
from tests.index.words import DAY, FIRE, NOW, TRAM, WordEmbedder, article


def top_title(retriever: Retriever, query: str, filters: SearchFilters | None = None) -> str:
    from index.answer import Answerer

    answerer = Answerer(retriever.engine, retriever, min_score=0.0, min_coverage=0.0)
    answer = answerer.answer(query, 1, filters)
    return answer.passages[0].title if answer.passages else ""


def test_sync_saves_a_lexical_index_beside_the_vectors(retriever: Retriever) -> None:
    """Each published version holds BM25 over every indexed passage."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    assert len(retriever.live().lexical) == retriever.searchable_count() == 2


def test_sync_updates_and_prunes_the_lexical_index(retriever: Retriever) -> None:
    """New articles become findable by their words; removed ones are gone."""
    first = store_raw_articles(retriever.engine, [TRAM], "ledger")
    retriever.sync()
    store_raw_articles(retriever.engine, [FIRE], "wire")
    retriever.sync()
    assert top_title(retriever, "Sorrel Ridge") == "Wildfire contained"
    with session_scope(retriever.engine) as session:
        remove_source(session, first.source_id)
    retriever.sync()
    lexical = Retriever(retriever.engine, retriever.embedder, retriever.root).live().lexical
    assert len(lexical) == 1
    assert [h.passage_id for h in retriever.search("tram council", k=5)] == lexical.ids.tolist()


def test_lexical_search_respects_guilds(retriever: Retriever) -> None:
    """A keyword match from another server's source is never returned."""
    store_raw_articles(retriever.engine, [TRAM], "one", guild_id=1)
    store_raw_articles(retriever.engine, [FIRE], "two", guild_id=2)
    retriever.sync()
    hits = retriever.search("Sorrel Ridge wildfire", k=5, filters=SearchFilters(guild_id=1))
    assert hits and all(h.passage_id != _passage_of(retriever, "fire") for h in hits)


def _passage_of(retriever: Retriever, key: str) -> int:
    from sqlalchemy import select

    from ingest.models import Article, Passage

    with session_scope(retriever.engine) as session:
        return int(
            session.scalars(select(Passage.id).join(Article).where(Article.key == key)).one()
        )


def test_as_of_keeps_a_grace_day_but_hides_later_news(retriever: Retriever) -> None:
    """A story dated hours after "as of" is still seen; one dated days later is not."""
    late = article("late", "Tram opens", "The Eastshore tram opened to passengers.", NOW + 5 * DAY)
    store_raw_articles(retriever.engine, [TRAM, late], "ledger")
    retriever.sync()
    assert retriever.searchable_count(SearchFilters(as_of=NOW)) == 1
    assert retriever.searchable_count(SearchFilters(as_of=NOW + 5 * DAY - DAY / 2)) == 2


def test_newer_of_two_equal_passages_ranks_first(retriever: Retriever) -> None:
    """Same words, different dates: the recent one wins as of now."""
    body = "The Harbor City ferry fare rises to four dollars in July."
    old = article("old", "Ferry fare rises (2019)", body, NOW - 2000 * DAY)
    new = article("new", "Ferry fare rises", body + " ", NOW - DAY)
    store_raw_articles(retriever.engine, [old], "archive")
    store_raw_articles(retriever.engine, [new], "ledger")
    retriever.sync()
    assert top_title(retriever, "How much is the ferry fare?", SearchFilters(as_of=NOW)) == (
        "Ferry fare rises"
    )


def test_according_to_an_outlet_filters_by_it(retriever: Retriever) -> None:
    """ "According to Valley Wire" only quotes that outlet."""
    other = article(
        "tram-wire",
        "Tram vote",
        "Valley Wire: the tram line vote was close.",
        NOW - DAY,
        outlet="Valley Wire",
    )
    store_raw_articles(retriever.engine, [TRAM, other], "mixed")
    retriever.sync()
    assert top_title(retriever, "What happened to the tram line, according to Valley Wire?") == (
        "Tram vote"
    )


def test_explicit_month_in_the_question_is_a_filter(retriever: Retriever) -> None:
    """ "In March" hides articles from other months."""
    march = article(
        "march", "Tram budget", "The tram line budget was cut.", datetime(2025, 3, 9, tzinfo=UTC)
    )
    store_raw_articles(retriever.engine, [TRAM, march], "ledger")
    retriever.sync()
    question = "What happened to the tram line in March?"
    assert top_title(retriever, question, SearchFilters(as_of=NOW)) == "Tram budget"
    hits = retriever.search(question, k=5, filters=SearchFilters(as_of=NOW))
    assert len(hits) == 1


def test_narrowed_by_source_name_or_outlet(retriever: Retriever) -> None:
    """--source takes a source's name or an outlet; an unknown name is an error."""
    store_raw_articles(retriever.engine, [TRAM], "ledger")
    store_raw_articles(retriever.engine, [FIRE], "wire")
    retriever.sync()
    by_name = retriever.narrowed(SearchFilters(), source="wire")
    assert retriever.searchable_count(by_name) == 1
    by_outlet = retriever.narrowed(SearchFilters(), source="harbor city ledger")
    assert by_outlet.outlets == ("Harbor City Ledger",)
    assert retriever.searchable_count(by_outlet) == 1
    with pytest.raises(InputError):
        retriever.narrowed(SearchFilters(), source="Bloomberg")


def test_another_servers_outlet_is_unknown_here(retriever: Retriever) -> None:
    """A server can name only outlets it can see, by ``source`` or in the question."""
    store_raw_articles(retriever.engine, [TRAM], "ledger", guild_id=1)
    store_raw_articles(retriever.engine, [FIRE], "wire", guild_id=2)
    retriever.sync()
    assert retriever.outlets(1) == ["Harbor City Ledger"]
    assert sorted(retriever.outlets()) == ["Harbor City Ledger", "Valley Wire"]
    with pytest.raises(InputError, match="no source or outlet called 'Valley Wire'"):
        retriever.narrowed(SearchFilters(guild_id=1), source="Valley Wire")
    parsed, filters = retriever.understand(
        "What did the council approve, according to Valley Wire?", SearchFilters(guild_id=1)
    )
    assert parsed.outlets == () and filters.outlets is None
    assert retriever.search("council tram", k=1, filters=filters)


def test_index_saved_by_an_older_newsbot_is_rebuilt_on_first_use(
    retriever: Retriever, sqlite_engine: Engine
) -> None:
    """An index folder in the layout before segments (CURRENT and a version) is rebuilt."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    old = retriever.root / "v-20250101-000000-abcdef12"
    old.mkdir(parents=True)
    (old / "vectors.faiss").write_bytes(b"an older format")
    (retriever.root / "CURRENT").write_text(old.name)
    reader = Retriever(sqlite_engine, cast(Embedder, WordEmbedder()), retriever.root)
    assert reader.search("Sorrel Ridge wildfire", k=1)
    assert reader.searchable_count() == 2
    assert not old.exists() and not (retriever.root / "CURRENT").exists()


def test_quotes_show_surrounding_sentences_but_never_the_same_text_twice(
    engine: Engine, tmp_path: Path
) -> None:
    """A quote reaches into its neighbours; two quoted neighbours do not repeat each other."""
    retriever = Retriever(engine, cast(Embedder, WordEmbedder()), tmp_path / "index")

    def filler(word: str, count: int) -> str:
        return " ".join(f"{word} {n}." for n in range(count))

    paragraphs = [
        "Harbor City's council approved the Eastshore tram line on Wednesday. "
        + filler("Approval detail", 25),
        "Trams start carrying passengers in May 2027, the transit agency said. "
        + filler("Timeline detail", 25),
        "Eastshore fares will match bus fares. " + filler("Fare detail", 10),
    ]
    story = article("tram-long", "Tram line approved", "\n\n".join(paragraphs), NOW)
    store_raw_articles(retriever.engine, [story, FIRE], "ledger")
    retriever.sync()
    from index.answer import Answerer

    answerer = Answerer(retriever.engine, retriever, min_score=0.0, min_cosine=0.0)
    question = "When do Eastshore trams start carrying passengers?"
    best = answerer.answer(question, 1).passages[0].text
    assert paragraphs[1] in best
    assert "Eastshore fares will match bus fares." in best
    assert len(best) <= 1000
    quoted = [quote.text for quote in answerer.answer(question, 3).passages]
    sentences = [s for text in quoted for s in re.split(r"(?<=\.)\s+", text)]
    assert len(sentences) == len(set(sentences))


def test_words_no_indexed_article_holds_are_named(retriever: Retriever) -> None:
    """A new subject ("the airport") is told from words the articles or titles hold."""
    store_raw_articles(retriever.engine, [TRAM, FIRE], "ledger")
    retriever.sync()
    assert retriever.unindexed_words("What about the airport?") == {"airport"}
    assert retriever.unindexed_words("And the wildfires?") == set()  # stemmed: "wildfire"
    assert retriever.unindexed_words("What about the council's approval?") == set()
