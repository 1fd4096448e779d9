"""Followed stories in SQL: a server's follows, and the articles each one has handled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.errors import InputError
from ingest.models import GLOBAL_GUILD, Article, Follow, FollowPost, Passage, Source
from ingest.store import IN_CHUNK

# Each follow costs one search per refresh that stores something it can see.
MAX_FOLLOWS_PER_GUILD = 25
POSTED, NAMED, HELD = "posted", "named", "held"
# How far back a new article is compared with what a follow already posted: the same story
# from another outlet a few refreshes later is not posted again.
RECENT_POSTS = timedelta(days=2)


@dataclass(frozen=True)
class FollowRecord:
    """A follow as the services and renderers see it (no session attached)."""

    id: int
    guild_id: int
    channel_id: int
    topic: str
    source: str | None
    paused: bool
    disabled: str | None
    summary_message_id: int | None = None
    summary_started_at: datetime | None = None

    @classmethod
    def of(cls, follow: Follow) -> FollowRecord:
        return cls(
            id=follow.id,
            guild_id=follow.guild_id,
            channel_id=follow.channel_id,
            topic=follow.topic,
            source=follow.source,
            paused=bool(follow.paused),
            disabled=follow.disabled,
            summary_message_id=follow.summary_message_id,
            summary_started_at=follow.summary_started_at,
        )


def add_follow(
    session: Session,
    guild_id: int,
    channel_id: int,
    topic: str,
    source: str | None,
    created_by: int,
) -> FollowRecord:
    """A new follow; the same topic twice in one channel, or too many, is refused."""
    own = list(session.scalars(select(Follow).where(Follow.guild_id == guild_id)))
    for follow in own:
        if follow.channel_id == channel_id and follow.topic.casefold() == topic.casefold():
            raise InputError(f"This channel already follows {topic!r} (follow #{follow.id}).")
    if len(own) >= MAX_FOLLOWS_PER_GUILD:
        raise InputError(
            f"This server already has {len(own)} follows, the most allowed; remove one first."
        )
    follow = Follow(
        guild_id=guild_id,
        channel_id=channel_id,
        topic=topic,
        source=source,
        created_by=created_by,
        paused=False,
    )
    session.add(follow)
    session.flush()
    return FollowRecord.of(follow)


def list_follows(session: Session, guild_id: int) -> list[FollowRecord]:
    query = select(Follow).where(Follow.guild_id == guild_id).order_by(Follow.id)
    return [FollowRecord.of(f) for f in session.scalars(query)]


def own_follow(session: Session, follow_id: int, guild_id: int) -> Follow:
    """The follow with this id in this server; another server's is "no such follow" too."""
    follow = session.get(Follow, follow_id)
    if follow is None or follow.guild_id != guild_id:
        raise InputError(f"no follow with id {follow_id} on this server")
    return follow


def remove_follow(session: Session, follow_id: int, guild_id: int) -> FollowRecord:
    follow = own_follow(session, follow_id, guild_id)
    record = FollowRecord.of(follow)
    session.delete(follow)
    return record


def set_paused(session: Session, follow_id: int, guild_id: int, paused: bool) -> FollowRecord:
    """Pause or resume; resuming a disabled follow also clears why it was disabled."""
    follow = own_follow(session, follow_id, guild_id)
    follow.paused = paused
    if not paused:
        follow.disabled = None
    return FollowRecord.of(follow)


def disable_follows(
    session: Session, reason: str, *, follow_id: int | None = None, channel_id: int | None = None
) -> list[FollowRecord]:
    """Stop one follow, or every follow of a channel, saying why (shown in /follow list)."""
    query = select(Follow).where(Follow.disabled.is_(None))
    if follow_id is not None:
        query = query.where(Follow.id == follow_id)
    if channel_id is not None:
        query = query.where(Follow.channel_id == channel_id)
    stopped = list(session.scalars(query))
    for follow in stopped:
        follow.disabled = reason
    return [FollowRecord.of(f) for f in stopped]


@dataclass(frozen=True)
class StoredArticle:
    article_id: int
    guild_id: int  # of its source; GLOBAL_GUILD articles are seen by every server


def stored_articles(session: Session, article_ids: Sequence[int]) -> list[StoredArticle]:
    """The articles still stored among ``article_ids``, with the server that owns each."""
    found: list[StoredArticle] = []
    ids = sorted(set(article_ids))
    for start in range(0, len(ids), IN_CHUNK):
        query = (
            select(Article.id, Source.guild_id)
            .join(Source, Article.source_id == Source.id)
            .where(Article.id.in_(ids[start : start + IN_CHUNK]))
        )
        found.extend(StoredArticle(a, g) for a, g in session.execute(query))
    return found


def follows_seeing(session: Session, guild_ids: Iterable[int]) -> list[FollowRecord]:
    """Active follows of these servers (every server's, when a global article is among them)."""
    guilds = set(guild_ids)
    query = select(Follow).where(Follow.paused.is_(False), Follow.disabled.is_(None))
    if GLOBAL_GUILD not in guilds:
        query = query.where(Follow.guild_id.in_(sorted(guilds)))
    return [FollowRecord.of(f) for f in session.scalars(query.order_by(Follow.id))]


def handled_articles(session: Session, follow_id: int, article_ids: Sequence[int]) -> set[int]:
    """Which of these articles the follow has already posted, named or held."""
    query = select(FollowPost.article_id).where(
        FollowPost.follow_id == follow_id, FollowPost.article_id.in_(list(article_ids))
    )
    return set(session.scalars(query))


def recent_posted_passages(session: Session, follow_id: int, now: datetime) -> list[int]:
    """Passages the follow showed lately (newest first): a new copy of one is not news."""
    query = (
        select(FollowPost.passage_id)
        .where(
            FollowPost.follow_id == follow_id,
            FollowPost.status.in_([POSTED, NAMED]),
            FollowPost.passage_id.is_not(None),
            FollowPost.at >= now - RECENT_POSTS,
        )
        .order_by(FollowPost.at.desc())
        .limit(50)
    )
    return [p for p in session.scalars(query) if p is not None]


def posts_since(session: Session, follow_id: int, since: datetime) -> int:
    """How many posts the follow made since ``since`` (what its hourly cap counts)."""
    query = select(func.count()).where(
        FollowPost.follow_id == follow_id, FollowPost.status == POSTED, FollowPost.at >= since
    )
    return session.scalar(query) or 0


def held_since(session: Session, follow_id: int, since: datetime) -> list[int]:
    """Articles held back by the cap since ``since``, oldest first."""
    query = (
        select(FollowPost.article_id)
        .where(FollowPost.follow_id == follow_id, FollowPost.status == HELD, FollowPost.at >= since)
        .order_by(FollowPost.at, FollowPost.article_id)
    )
    return list(session.scalars(query))


def record_handled(
    session: Session,
    follow_id: int,
    rows: Sequence[tuple[int, int | None, str]],
    now: datetime,
) -> None:
    """Remember (article id, quoted passage id, status) rows; an article is kept once."""
    known = handled_articles(session, follow_id, [article for article, _, _ in rows])
    for article_id, passage_id, status in rows:
        if article_id in known:
            continue
        known.add(article_id)
        session.add(
            FollowPost(
                follow_id=follow_id,
                article_id=article_id,
                passage_id=passage_id,
                status=status,
                at=now,
            )
        )


def set_summary(
    session: Session, follow_id: int, message_id: int | None, started_at: datetime | None
) -> None:
    follow = session.get(Follow, follow_id)
    if follow is not None:
        follow.summary_message_id = message_id
        follow.summary_started_at = started_at


def passage_texts(session: Session, article_ids: Sequence[int]) -> dict[int, tuple[str, list[str]]]:
    """Each article's outlet and passage texts, in order (for the few a refresh stored)."""
    found: dict[int, tuple[str, list[str]]] = {}
    ids = sorted(set(article_ids))
    for start in range(0, len(ids), IN_CHUNK):
        query = (
            select(Article.id, Article.outlet, Passage.text)
            .join(Passage, Passage.article_id == Article.id)
            .where(Article.id.in_(ids[start : start + IN_CHUNK]))
            .order_by(Article.id, Passage.position)
        )
        for article_id, outlet, text in session.execute(query):
            found.setdefault(article_id, (outlet, []))[1].append(text)
    return found


def passage_texts_by_id(session: Session, passage_ids: Sequence[int]) -> list[str]:
    """The texts of these passages that are still stored."""
    ids = sorted(set(passage_ids))
    return list(session.scalars(select(Passage.text).where(Passage.id.in_(ids)))) if ids else []
