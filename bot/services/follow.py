"""Followed stories: which newly stored passages each follow posts, within its hourly cap.

A refresh hands over the articles it stored once the index has them (``SourceService``
subscribers). For each active follow that can see some of them, the follow's topic is
answered like ``/ask`` over those articles alone, with the same ranking, and each story is
judged by the same abstention an answer quoting it first would apply: a follow posts what an
answer to its topic would quote, and nothing when such an answer would say "not found".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.resources import Resources
from index.answer import NO_BARS, Answerer, Quote, near_duplicate, word_shingles
from index.search import SearchFilters
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.follows import (
    HELD,
    NAMED,
    POSTED,
    FollowRecord,
    StoredArticle,
    add_follow,
    disable_follows,
    follows_seeing,
    handled_articles,
    held_since,
    list_follows,
    passage_texts,
    passage_texts_by_id,
    posts_since,
    recent_posted_passages,
    record_handled,
    remove_follow,
    set_paused,
    set_summary,
    stored_articles,
)
from ingest.models import GLOBAL_GUILD
from ingest.store import passages_by_id, write_with_retry

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_TOPIC_CHARS = 200
# One post quotes its best story and names at most this many other matching stories.
STORIES_PER_POST = 4
CAP_WINDOW = timedelta(hours=1)
# Passages ranked per refresh and follow, beyond the stories of one post: room for a few
# passages of each story, which its own abstention decision reads.
CANDIDATES = 12


@dataclass(frozen=True)
class Story:
    """One matching story: its best quote, and the other outlets that carry the same text."""

    quote: Quote
    article_id: int
    also_in: list[str] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)  # the other outlets' article ids


@dataclass(frozen=True)
class FollowNews:
    """What one follow posts after one refresh: one post, or the "N more" summary."""

    follow: FollowRecord
    stories: list[Story]  # best first: the first quoted, the next named, the rest counted
    cap: int  # the follow's posts an hour at most
    capped: bool = False  # the hourly cap is reached: a summary instead of a post
    held: int = 0  # stories held back this hour, these included (when capped)
    edit_summary: int | None = None  # the summary message to update, if this hour has one

    @property
    def lead(self) -> Story:
        return self.stories[0]

    @property
    def named(self) -> list[Story]:
        """The other stories a post names, with their links."""
        return self.stories[1:STORIES_PER_POST]

    @property
    def unnamed(self) -> int:
        """Matching stories a post only counts ("and 3 more"): one post per refresh."""
        return max(0, len(self.stories) - STORIES_PER_POST)


class FollowService:
    """Follows per server, and matching new articles against them (blocking work in threads)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.engine = resources.engine

    @property
    def hourly_cap(self) -> int:
        return self.resources.settings.follow_hourly_cap

    # --- managing -----------------------------------------------------------------------

    async def add(
        self, guild_id: int, channel_id: int, topic: str, source: str | None, user_id: int
    ) -> FollowRecord:
        topic = validate_topic(topic)
        source = await self.check_source(guild_id, source)

        return await asyncio.to_thread(
            write_with_retry,
            self.engine,
            lambda session: add_follow(session, guild_id, channel_id, topic, source, user_id),
        )

    async def check_source(self, guild_id: int | None, source: str | None) -> str | None:
        """The source or outlet name, tidied, or ``InputError`` when it names nothing here:
        a typo would otherwise follow nothing, silently."""
        source = " ".join(source.split()) if source and source.strip() else None
        if source is not None:
            filters = SearchFilters(guild_id=guild_id)
            await asyncio.to_thread(self.resources.retriever.narrowed, filters, source)
        return source

    async def listed(self, guild_id: int) -> list[FollowRecord]:
        return await asyncio.to_thread(
            self._in_session, lambda session: list_follows(session, guild_id)
        )

    async def choices(self, guild_id: int, typed: str, limit: int) -> list[FollowRecord]:
        """This server's follows whose topic contains ``typed`` (for autocomplete)."""
        needle = typed.casefold().strip()
        follows = await self.listed(guild_id)
        return [
            f for f in follows if not needle or needle in f.topic.casefold() or needle == str(f.id)
        ][:limit]

    async def remove(self, follow_id: int, guild_id: int) -> FollowRecord:
        return await asyncio.to_thread(
            self._in_session, lambda session: remove_follow(session, follow_id, guild_id)
        )

    async def pause(self, follow_id: int, guild_id: int, paused: bool) -> FollowRecord:
        return await asyncio.to_thread(
            self._in_session, lambda session: set_paused(session, follow_id, guild_id, paused)
        )

    async def disable(
        self, reason: str, *, follow_id: int | None = None, channel_id: int | None = None
    ) -> list[FollowRecord]:
        """Stop posting (a deleted channel, a lost permission); ``/follow list`` says why."""
        stopped = await asyncio.to_thread(
            self._in_session,
            lambda session: disable_follows(
                session, reason, follow_id=follow_id, channel_id=channel_id
            ),
        )
        for follow in stopped:
            log.warning("follow #%d (%r) disabled: %s", follow.id, follow.topic, reason)
        return stopped

    def _in_session(self, work: Callable[[Session], T]) -> T:
        with session_scope(self.engine) as session:
            return work(session)

    # --- matching -----------------------------------------------------------------------

    async def news_for(
        self, article_ids: list[int], now: datetime | None = None
    ) -> list[FollowNews]:
        """What each active follow posts about these newly stored (and indexed) articles."""
        if not article_ids:
            return []
        return await asyncio.to_thread(self._news_for, article_ids, now or datetime.now(UTC))

    def _news_for(self, article_ids: list[int], now: datetime) -> list[FollowNews]:
        with session_scope(self.engine) as session:
            stored = stored_articles(session, article_ids)
            follows = follows_seeing(session, {a.guild_id for a in stored})
        found: list[FollowNews] = []
        for follow in follows:
            try:
                news = self._news_of(follow, stored, now)
            except Exception:  # one follow's failure must not keep the others' news
                log.exception("matching follow #%d (%r) failed", follow.id, follow.topic)
                continue
            if news is not None:
                found.append(news)
        return found

    async def stories_in(
        self, topic: str, guild_id: int | None, article_ids: list[int], source: str | None
    ) -> list[Story]:
        """:meth:`stories` among the articles a server (None: any) can see (the console)."""

        def find() -> list[Story]:
            with session_scope(self.engine) as session:
                stored = stored_articles(session, article_ids)
            visible = [a.article_id for a in stored if _sees(guild_id, a)]
            return self.stories(topic, guild_id, visible, source) if visible else []

        return await asyncio.to_thread(find)

    def _news_of(
        self, follow: FollowRecord, stored: list[StoredArticle], now: datetime
    ) -> FollowNews | None:
        visible = [a.article_id for a in stored if _sees(follow.guild_id, a)]
        with session_scope(self.engine) as session:
            unseen = sorted(set(visible) - handled_articles(session, follow.id, visible))
            if not unseen:
                return None
            posted = passage_texts_by_id(session, recent_posted_passages(session, follow.id, now))
        stories, repeats = _split_repeats(
            self.stories(follow.topic, follow.guild_id, unseen, follow.source), posted
        )
        if repeats:
            # Another outlet's copy of what this follow posted lately: remembered, not posted.
            rows = [(a, None, NAMED) for s in repeats for a in (s.article_id, *s.copies)]
            write_with_retry(
                self.engine, lambda session: record_handled(session, follow.id, rows, now)
            )
        if not stories:
            return None
        cap = self.hourly_cap
        with session_scope(self.engine) as session:
            if posts_since(session, follow.id, now - CAP_WINDOW) < cap:
                return FollowNews(follow, stories, cap)
            started = follow.summary_started_at
            live = started is not None and started >= now - CAP_WINDOW
            before = len(held_since(session, follow.id, started)) if started and live else 0
        return FollowNews(
            follow,
            stories,
            cap,
            capped=True,
            held=before + len(stories),
            edit_summary=follow.summary_message_id if live else None,
        )

    def stories(
        self, topic: str, guild_id: int | None, article_ids: list[int], source: str | None = None
    ) -> list[Story]:
        """The stories among these articles an answer to ``topic`` would quote, best first.

        A story carried by several outlets (passages of the same text) is one story, the
        others named in its ``also_in``.
        """
        filters = SearchFilters(guild_id=guild_id, article_ids=tuple(article_ids))
        if source is not None:
            try:
                filters = self.resources.retriever.narrowed(filters, source)
            except InputError:
                return []  # its source is gone, or has no articles yet
        # Every story is judged on its own, as an answer quoting it first would be: the
        # answer's abstention over that story's passages. (The bars a second quote of one
        # answer must clear would make a story's fate depend on what arrived with it.)
        settings = self.resources.settings
        answerer = Answerer(
            self.engine,
            self.resources.retriever,
            min_score=settings.min_score,
            min_coverage=settings.min_coverage,
            bars=NO_BARS,
        )
        answer = answerer.answer(topic, k=STORIES_PER_POST, filters=filters, extra=CANDIDATES)
        if answer.abstained:
            return []
        quotes = [*answer.passages, *answer.more]
        with session_scope(self.engine) as session:
            records = passages_by_id(session, [q.passage_id for q in quotes])
            texts = {
                article: (outlet, [word_shingles(p) for p in passages])
                for article, (outlet, passages) in passage_texts(session, article_ids).items()
            }
        quotes = [q for q in quotes if q.passage_id in records]  # none removed meanwhile
        by_article: dict[int, list[Quote]] = {}
        for quote in quotes:
            by_article.setdefault(records[quote.passage_id].article_id, []).append(quote)
        answered = {
            article for article, own in by_article.items() if answerer.answers(topic, own, records)
        }
        stories: list[Story] = []
        taken: set[int] = set()
        for quote in quotes:
            article = records[quote.passage_id].article_id
            if article in taken or article not in answered:
                continue  # another passage of a story already chosen, or not about the topic
            mine = word_shingles(records[quote.passage_id].text)
            copies = [
                (other, outlet)
                for other, (outlet, passages) in texts.items()
                if other not in taken
                and other != article
                and any(near_duplicate(mine, passage) for passage in passages)
            ]
            taken.update([article, *(other for other, _ in copies)])
            also_in = list(dict.fromkeys(o for _, o in copies if o != quote.source))
            stories.append(Story(quote, article, also_in, [other for other, _ in copies]))
        return stories

    async def record(
        self, news: FollowNews, message_id: int | None, now: datetime | None = None
    ) -> None:
        """Remember what was posted (or held), once the post or the summary went out."""
        now = now or datetime.now(UTC)
        status = HELD if news.capped else POSTED
        rows: list[tuple[int, int | None, str]] = []
        for number, story in enumerate(news.stories):
            lead = status if number == 0 or news.capped else NAMED
            rows.append((story.article_id, story.quote.passage_id, lead))
            rows.extend((copy, None, NAMED) for copy in story.copies)

        def write(session: Session) -> None:
            record_handled(session, news.follow.id, rows, now)
            if news.capped:
                started = news.follow.summary_started_at if news.edit_summary else now
                set_summary(session, news.follow.id, message_id, started)

        await asyncio.to_thread(write_with_retry, self.engine, write)


def validate_topic(topic: str) -> str:
    """The topic with its whitespace tidied, or an ``InputError`` saying what is wrong."""
    cleaned = " ".join(topic.split())
    if not cleaned:
        raise InputError("the topic is empty")
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise InputError(
            f"the topic is too long ({len(cleaned)} characters; at most {MAX_TOPIC_CHARS})"
        )
    return cleaned


def _sees(guild_id: int | None, article: StoredArticle) -> bool:
    """Whether a server (None: the console, which sees all) can see the article."""
    return guild_id is None or article.guild_id in (GLOBAL_GUILD, guild_id)


def _split_repeats(stories: list[Story], posted: list[str]) -> tuple[list[Story], list[Story]]:
    """The stories that are news, and those whose quote repeats a passage posted lately."""
    earlier = [word_shingles(text) for text in posted]
    fresh: list[Story] = []
    repeats: list[Story] = []
    for story in stories:
        mine = word_shingles(story.quote.text)
        repeat = any(near_duplicate(mine, other) for other in earlier)
        (repeats if repeat else fresh).append(story)
    return fresh, repeats
