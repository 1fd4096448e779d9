"""Matching new articles against follows (SQLite and PostgreSQL): per story, server, cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.resources import Resources
from bot.services.follow import FollowService
from index.answer import DEFAULT_MIN_SCORE
from index.embedder import Embedder
from index.search import Retriever
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.fetch import SafeFetcher
from ingest.models import GLOBAL_GUILD, Article
from ingest.pipeline import store_raw_articles
from tests.bot.cogs.test_follow import FERRY, FERRY_AGAIN, FERRY_THIRD, QUARRY
from tests.bot.conftest import GUILD_A, GUILD_B, SERVER_A_NEWS, article, make_settings

NOW = datetime(2024, 5, 20, 12, tzinfo=UTC)
CHANNEL = 42


@pytest.fixture
async def service(
    engine: Engine, embedder: Embedder, tmp_path: Path
) -> AsyncIterator[FollowService]:
    """Server A's news indexed, with the product's relevance bars and a cap of 2 an hour."""
    settings = make_settings(
        tmp_path, min_score=DEFAULT_MIN_SCORE, related_quotes_only=True, follow_hourly_cap=2
    )
    retriever = Retriever(engine, embedder, settings.index_dir)
    store_raw_articles(engine, SERVER_A_NEWS, "courier", GUILD_A)
    retriever.sync()
    async with SafeFetcher(settings.fetch_policy()) as fetcher:  # what Resources always has
        yield FollowService(Resources(settings, engine, fetcher, _retriever=retriever))


def store(
    service: FollowService,
    guild_id: int,
    *stories: tuple[str, str, tuple[str, ...]],
    outlet: str = "Island Post",
) -> list[int]:
    """Store and index new articles (key, title, paragraphs) in a server; their ids."""
    raws = [article(key, title, " ".join(text), outlet, 20) for key, title, text in stories]
    store_raw_articles(service.engine, raws, f"{outlet}-{guild_id}", guild_id)
    service.resources.retriever.sync()
    with session_scope(service.engine) as session:
        keys = [key for key, _, _ in stories]
        return list(session.scalars(select(Article.id).where(Article.key.in_(keys))))


async def test_each_story_is_judged_on_its_own_not_by_what_came_with_it(
    service: FollowService,
) -> None:
    """A weaker on-topic story is still matched beside a stronger one; off-topic news is not."""
    ids = store(
        service,
        GUILD_A,
        ("sunday", "Sunday ferries to Gull Island end", FERRY),
        ("boat", "Second boat for the Gull Island ferry", FERRY_AGAIN),
        ("tickets", "Gull Island ferry tickets sold on board again", FERRY_THIRD),
        ("quarry", "Quarry Road to be resurfaced", QUARRY),
    )
    stories = service.stories("Gull Island ferry", GUILD_A, ids)
    titles = {s.quote.title for s in stories}
    assert titles == {
        "Sunday ferries to Gull Island end",
        "Second boat for the Gull Island ferry",
        "Gull Island ferry tickets sold on board again",
    }
    assert service.stories("price of smoked haddock at the fish market", GUILD_A, ids) == []


async def test_a_server_sees_its_own_and_global_articles_only(service: FollowService) -> None:
    """A's article reaches only A's follow; a global article reaches both servers' follows."""
    mine = await service.add(GUILD_A, CHANNEL, "Gull Island ferry", None, 1)
    theirs = await service.add(GUILD_B, CHANNEL + 1, "Gull Island ferry", None, 2)
    local = store(service, GUILD_A, ("sunday", "Sunday ferries to Gull Island end", FERRY))
    shared = store(service, GLOBAL_GUILD, ("boat", "Second boat for the ferry", FERRY_AGAIN))

    assert [n.follow.id for n in await service.news_for(local, NOW)] == [mine.id]
    assert [n.follow.id for n in await service.news_for(shared, NOW)] == [mine.id, theirs.id]
    with pytest.raises(InputError, match="no follow with id"):
        await service.remove(mine.id, GUILD_B)


async def test_the_hourly_cap_holds_stories_for_one_summary(service: FollowService) -> None:
    """Two posts an hour; then stories are held and counted in one summary, until the hour ends."""
    await service.add(GUILD_A, CHANNEL, "Gull Island ferry", None, 1)
    stories = [
        ("sunday", "Sunday ferries to Gull Island end", FERRY),
        ("boat", "Second boat for the Gull Island ferry", FERRY_AGAIN),
        ("tickets", "Gull Island ferry tickets sold on board again", FERRY_THIRD),
    ]
    for number, story in enumerate(stories):
        (news,) = await service.news_for(store(service, GUILD_A, story), NOW)
        assert news.capped is (number == 2)
        await service.record(news, message_id=100 + number, now=NOW)
    assert (news.held, news.edit_summary) == (1, None)

    fares = ("fares", "Gull Island ferry fares frozen", ("Gull Island ferry fares stay " * 8,))
    (news,) = await service.news_for(store(service, GUILD_A, fares), NOW + timedelta(minutes=5))
    assert (news.capped, news.held, news.edit_summary) == (True, 2, 102)
    await service.record(news, message_id=102, now=NOW + timedelta(minutes=5))

    later = NOW + timedelta(hours=2)
    late = ("late", "Gull Island ferry timetable", ("The Gull Island ferry timetable " * 8,))
    (news,) = await service.news_for(store(service, GUILD_A, late), later)
    assert not news.capped  # a new hour: posted again


async def test_a_follow_with_a_source_sees_only_that_outlet(service: FollowService) -> None:
    """source: keeps a follow to one outlet; a name that matches nothing is refused at once."""
    ferry = store(service, GUILD_A, ("sunday", "Sunday ferries to Gull Island end", FERRY))
    wire = store(
        service, GUILD_A, ("boat", "Second boat for the ferry", FERRY_AGAIN), outlet="Bay Wire"
    )
    follow = await service.add(GUILD_A, CHANNEL, "Gull Island ferry", "Bay Wire", 1)

    (news,) = await service.news_for(ferry + wire, NOW)
    assert [s.quote.source for s in news.stories] == ["Bay Wire"]
    assert follow.source == "Bay Wire"
    with pytest.raises(InputError, match="no source or outlet called 'Bay Wyre'"):
        await service.add(GUILD_A, CHANNEL, "ferry", "Bay Wyre", 1)
