"""The stored news: sources own articles, articles own passages.

Vectors live in the FAISS index keyed by ``Passage.id``; everything a citation needs
(text, outlet, title, date, link) lives here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

GLOBAL_GUILD = 0
"""``guild_id`` of sources added from the command line: visible to every server."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Source(Base):
    """Where articles come from: a local folder or file, a feed, or a single web page."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("guild_id", "location", name="uq_source_location"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, default=GLOBAL_GUILD, index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # "local", "web" (unfetched), "feed", "page"
    location: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Health and politeness state of web sources.
    etag: Mapped[str | None] = mapped_column(String(500), default=None)
    last_modified: Mapped[str | None] = mapped_column(String(100), default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    articles: Mapped[list[Article]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class Article(Base):
    """One news story; ``key`` (canonical URL, or path and title) identifies it in its source."""

    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("source_id", "key", name="uq_article_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(2000))
    url: Mapped[str | None] = mapped_column(String(2000), default=None)
    title: Mapped[str] = mapped_column(String(1000))
    outlet: Mapped[str] = mapped_column(String(200))
    author: Mapped[str | None] = mapped_column(String(500), default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The text as extracted, kept so a cleaning change or new boilerplate can re-split it.
    body: Mapped[str] = mapped_column(Text)

    source: Mapped[Source] = relationship(back_populates="articles")
    passages: Mapped[list[Passage]] = relationship(
        back_populates="article",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Passage.position",
    )


class Passage(Base):
    """A quotable piece of an article: one or a few paragraphs, at most 1,000 characters."""

    __tablename__ = "passages"
    __table_args__ = (
        UniqueConstraint("article_id", "position", name="uq_passage_position"),
        Index("ix_passages_text_hash", "text_hash"),
        # Ids key the vectors: SQLite must never hand a deleted passage's id to a new one, or
        # an updated article's last passages would keep their old vectors in the index.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))

    article: Mapped[Article] = relationship(back_populates="passages")


class ParagraphSighting(Base):
    """A candidate paragraph seen in an article: repeats across an outlet mark boilerplate."""

    __tablename__ = "paragraph_sightings"
    __table_args__ = (
        Index("ix_sightings_scope_hash", "scope", "paragraph_hash"),
        # Boilerplate lookups go from a paragraph to the articles holding it (ingest/store.py);
        # without this SQLite scans the whole table for each, and storing slows as it grows.
        Index("ix_sightings_hash_scope_article", "paragraph_hash", "scope", "article_id"),
    )

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    paragraph_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(300))  # source id and outlet


class FeedItem(Base):
    """What a feed last said about one entry: a changed entry is fetched again, others never.

    A table of its own (not columns on ``articles``) so existing databases need no migration.
    """

    __tablename__ = "feed_items"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(2000), primary_key=True)  # canonical entry URL
    fingerprint: Mapped[str] = mapped_column(String(64))  # hash of the entry's title, date, text
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmbeddingModel(Base):
    """An embedding model's name under a small number, so cached vectors need not repeat it."""

    __tablename__ = "embedding_models"

    # SQLite numbers only an INTEGER primary key by itself.
    id: Mapped[int] = mapped_column(
        SmallInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(500), unique=True)


class CachedEmbedding(Base):
    """A passage vector by (model, text hash), so unchanged text is never embedded twice."""

    __tablename__ = "embedding_cache"

    model_id: Mapped[int] = mapped_column(
        SmallInteger, ForeignKey("embedding_models.id", ondelete="CASCADE"), primary_key=True
    )
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Milestone(Base):
    """A one-time event this database has been through, by name (e.g. the first run)."""

    __tablename__ = "milestones"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnswerRecord(Base):
    """An answer the bot gave in Discord, kept so members can vote on it.

    ``guild_id`` is the server it was given in (``GLOBAL_GUILD`` for a direct message): votes
    are only ever read, counted and exported by server. ``kind`` is how it was asked
    ("ask", "mention", "thread", "check").
    """

    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_guild_asked", "guild_id", "asked_at"),
        # Vote buttons name their answer by id: an id must never come back for another one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    question: Mapped[str] = mapped_column(Text)
    abstained: Mapped[bool] = mapped_column(Boolean)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    quotes: Mapped[list[AnswerQuote]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="AnswerQuote.rank"
    )


class AnswerQuote(Base):
    """A passage an answer quoted (or, when it found nothing, listed as closest), as ranked.

    ``passage_id`` is no foreign key: a vote outlives a removed source, and passage ids are
    never reused, so an old vote never points at another passage.
    """

    __tablename__ = "answer_quotes"

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1: quoted first
    passage_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)  # the ranking's score
    similarity: Mapped[float] = mapped_column(Float)  # cosine to the question
    coverage: Mapped[float] = mapped_column(Float)  # share of the question's key words


class Vote(Base):
    """One member's vote on one answer: helpful or not; voting again replaces it."""

    __tablename__ = "votes"
    __table_args__ = (Index("ix_votes_guild_voted", "guild_id", "voted_at"),)

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)  # the answer's server, for scoped counts
    helpful: Mapped[bool] = mapped_column(Boolean)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Follow(Base):
    """A story a server follows: new passages relevant to ``topic`` are posted in a channel.

    ``disabled`` says why the bot stopped posting (the channel was deleted, or it may no longer
    post there); a paused follow is kept as it is until resumed.
    """

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("guild_id", "channel_id", "topic", name="uq_follow_channel_topic"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, index=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200), default=None)  # as /ask source:
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[str | None] = mapped_column(Text, default=None)
    # The "N more" message of the hour the follow reached its cap in, edited as more arrive.
    summary_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    summary_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class FollowPost(Base):
    """An article a follow has handled, so it is never posted twice.

    ``status``: "posted" (quoted in a post), "named" (named in one: "also in", or another
    story of the same refresh), or "held" (counted in the "N more" summary past the cap).
    """

    __tablename__ = "follow_posts"
    __table_args__ = (Index("ix_follow_posts_follow_at", "follow_id", "at"),)

    follow_id: Mapped[int] = mapped_column(
        ForeignKey("follows.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    passage_id: Mapped[int | None] = mapped_column(Integer, default=None)  # what was quoted
    status: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobReport(Base):
    """How a queued job (``NEWSBOT_JOBS=queue``) is going, written by the worker running it.

    Keyed by the job queue's job id: the bot that queued a refresh or a reindex reads the
    progress and the outcome here, whichever worker (on whichever machine) ran it.
    """

    __tablename__ = "job_reports"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task: Mapped[str] = mapped_column(String(100))
    # "host:pid" of the worker process running it.
    worker: Mapped[str | None] = mapped_column(String(300), default=None)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    # JSON: what the job did (a refresh outcome, an index report), once it is over.
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassageChange(Base):
    """One entry of the passage change log: a passage added, removed, or re-tagged.

    Written in the same transaction as the passage rows (``ingest.changelog``), so an index
    that records the last ``seq`` it took in catches up by reading the entries after it,
    whatever the size of the corpus. "retagged": the passage's article got a new date or
    outlet, which the index stores beside each passage (its text and title are unchanged:
    those make new passage rows).
    """

    __tablename__ = "passage_changes"
    # SQLite: AUTOINCREMENT, so a number is never handed out twice (readers keep a cursor).
    __table_args__ = (
        Index("ix_passage_changes_changed_at", "changed_at"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    passage_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # "added", "removed", "retagged"
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassageChangeOrigin(Base):
    """One row: a random token naming this database's change log.

    An index records it beside its log position, so an index put in front of another
    database (wiped, swapped), whose log numbers its entries from 1 again, is not mistaken
    for one that is up to date.
    """

    __tablename__ = "passage_change_origin"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
