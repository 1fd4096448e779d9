"""Writing articles and their passages, and the queries the rest of newsbot needs."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import Engine, Insert, Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ingest.changelog import record_changes
from ingest.clean import boilerplate_hashes, candidate_paragraphs, clean_paragraphs, paragraph_hash
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.extract import RawArticle
from ingest.models import GLOBAL_GUILD, Article, FeedItem, ParagraphSighting, Passage, Source
from ingest.sanitize import clean_line
from ingest.split import split_passages

log = logging.getLogger(__name__)

IN_CHUNK = 500
# Articles written per transaction.
BATCH_SIZE = 100
# A write that lost a race to another process (the same article or source inserted at once)
# is run again from the start: it then reads the winner's rows and updates or skips them.
WRITE_ATTEMPTS = 5
# PostgreSQL's deadlock_detected and serialization_failure: the transaction can simply be rerun.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

T = TypeVar("T")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoreResult:
    """What one batch changed."""

    added: int = 0
    updated: int = 0  # new text, or the same text with a new date or outlet
    unchanged: int = 0
    duplicates: int = 0
    passages_added: int = 0
    passages_removed: int = 0
    # What a hook after the write (index it, tell a story's followers) needs: the articles
    # added or updated, and the passages inserted (a re-split article's among them).
    article_ids: list[int] = field(default_factory=list)
    passage_ids: list[int] = field(default_factory=list)
    # Passages deleted (an article re-split), and kept passages whose article got a new
    # date or outlet: with ``passage_ids``, what the change log says this write did.
    removed_ids: list[int] = field(default_factory=list)
    retagged_ids: list[int] = field(default_factory=list)

    def merge(self, other: StoreResult) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.passages_added += other.passages_added
        self.passages_removed += other.passages_removed
        self.article_ids.extend(other.article_ids)
        self.passage_ids.extend(other.passage_ids)
        self.removed_ids.extend(other.removed_ids)
        self.retagged_ids.extend(other.retagged_ids)


@contextmanager
def write_scope(engine: Engine) -> Iterator[Session]:
    """One short write transaction, committed on success, rolled back on any error.

    On SQLite it takes the write lock up front (``BEGIN IMMEDIATE``). Otherwise the driver
    starts the transaction only at the first write, so the reads before it (is this article
    stored yet?) can be outdated by another process's commit, and the insert then fails on
    a unique constraint. With the lock taken first, a second writer waits for it (up to the
    connection's busy timeout) and then reads what the first one committed.
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        if engine.dialect.name == "sqlite":
            connection = session.connection()
            # Unless the engine already began the transaction itself.
            if not getattr(connection.connection.dbapi_connection, "in_transaction", False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def write_with_retry(engine: Engine, work: Callable[[Session], T]) -> T:
    """``work`` in a ``write_scope``, run again when a concurrent writer won a race.

    On PostgreSQL two processes can both find an article missing and insert it; the second
    waits for the first to commit and gets a unique violation. Rerun, ``work`` reads the
    committed row and updates or skips it, so the loser's articles are still stored.
    """
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with write_scope(engine) as session:
                return work(session)
        except DBAPIError as error:
            if attempt == WRITE_ATTEMPTS or not _lost_a_race(error):
                raise
            log.info("a concurrent write conflicted (%s); retrying", _first_line(error))
            time.sleep(random.uniform(0.01, 0.1) * attempt)
    raise AssertionError("unreachable")


def _lost_a_race(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", error)).strip().splitlines()[0][:200]


def insert_source(
    session: Session, name: str, kind: str, location: str, guild_id: int = GLOBAL_GUILD
) -> tuple[Source, bool]:
    """The source at (server, location), and whether this call created it.

    ``INSERT ... ON CONFLICT DO NOTHING``: when another process adds the same source at the
    same moment, this one waits for it and then uses its row instead of failing.
    """
    table = cast(Table, Source.__table__)
    values = {"name": name, "kind": kind, "location": location, "guild_id": guild_id}
    dialect = session.get_bind().dialect.name
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values).on_conflict_do_nothing()
    else:  # other databases: a conflict raises, and write_with_retry runs the work again
        statement = insert(table).values(values)
    created = session.execute(statement.returning(table.c.id)).first() is not None
    source = session.scalar(
        select(Source).where(Source.guild_id == guild_id, Source.location == location)
    )
    assert source is not None
    return source, created


def get_or_create_source(
    session: Session, name: str, kind: str, location: str, guild_id: int = GLOBAL_GUILD
) -> Source:
    source = session.scalar(
        select(Source).where(Source.guild_id == guild_id, Source.location == location)
    )
    if source is None:
        source, _ = insert_source(session, name, kind, location, guild_id)
    return source


def store_articles(session: Session, source: Source, raws: Sequence[RawArticle]) -> StoreResult:
    """Insert new articles, replace changed ones, and (re)split what that affects.

    Ingesting the same articles twice changes nothing; a paragraph that now repeats across
    independent articles of an outlet becomes boilerplate and leaves every passage it was in.
    """
    result = StoreResult()
    by_key = {raw.key: raw for raw in raws}
    # Hashes first, then articles: on PostgreSQL (read committed) another writer may commit
    # these very articles between the two reads. Read in this order, its articles are then
    # found by key (unchanged); the other way round they were missed by key but their hashes
    # seen, and miscounted as duplicates of themselves.
    known_hashes = set(
        session.scalars(select(Article.content_hash).where(Article.source_id == source.id))
    )
    existing = _articles_by_key(session, source.id, list(by_key))
    touched: list[Article] = []
    retitled: set[int] = set()
    retagged: set[int] = set()  # articles with a new date or outlet
    for key, raw in by_key.items():
        digest = _body_hash(raw)
        article = existing.get(key)
        if article is not None and article.content_hash == digest:
            # Same text, but a corrected date or outlet is an update too: the index must
            # hear of it (the change log says its passages were re-tagged).
            if _update_metadata(article, raw, source):
                result.updated += 1
                result.article_ids.append(article.id)
                retagged.add(article.id)
            else:
                result.unchanged += 1
            continue
        if article is None and digest in known_hashes:
            result.duplicates += 1
            continue
        if article is None:
            article = Article(source_id=source.id, key=key)
            session.add(article)
            result.added += 1
        else:
            result.updated += 1
            if article.title != raw.title:
                retitled.add(article.id)
        if _update_metadata(article, raw, source):
            retagged.add(article.id)
        article.title = raw.title
        article.body = raw.body
        article.content_hash = digest
        known_hashes.add(digest)
        touched.append(article)
    session.flush()
    if touched:
        result.article_ids.extend(a.id for a in touched)
        changed = _record_sightings(session, touched)
        inserted, removed = _resplit_all(
            session, _articles_to_split(session, touched, changed), retitled
        )
        result.passages_added += len(inserted)
        result.passages_removed += len(removed)
        result.passage_ids.extend(inserted)
        result.removed_ids.extend(removed)
    result.retagged_ids.extend(_kept_passages(session, retagged, set(result.passage_ids)))
    record_changes(session, result.passage_ids, result.removed_ids, result.retagged_ids)
    return result


def _kept_passages(session: Session, article_ids: set[int], new: set[int]) -> list[int]:
    """The passages of these articles that this write did not (re)create."""
    found: list[int] = []
    ids = sorted(article_ids)
    for start in range(0, len(ids), IN_CHUNK):
        query = select(Passage.id).where(Passage.article_id.in_(ids[start : start + IN_CHUNK]))
        found.extend(pid for pid in session.scalars(query) if pid not in new)
    return sorted(found)


def _body_hash(raw: RawArticle) -> str:
    return text_hash(f"{raw.title}\x1f{raw.body}")


def _update_metadata(article: Article, raw: RawArticle, source: Source) -> bool:
    """Copy the raw article's metadata; whether a date or outlet search filters by changed."""
    outlet = (raw.outlet or source.name)[:200]
    changed = article.id is not None and (
        article.outlet != outlet or article.published_at != raw.published_at
    )
    article.url = raw.url
    article.outlet = outlet
    article.author = raw.author[:500] if raw.author else None
    article.published_at = raw.published_at
    return changed


def _articles_by_key(session: Session, source_id: int, keys: list[str]) -> dict[str, Article]:
    found: dict[str, Article] = {}
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        query = select(Article).where(Article.source_id == source_id, Article.key.in_(chunk))
        found.update((a.key, a) for a in session.scalars(query))
    return found


def _scope(article: Article) -> str:
    return f"{article.source_id}:{article.outlet}"


def _record_sightings(session: Session, articles: list[Article]) -> set[tuple[str, str]]:
    """Record the paragraphs the articles hold now.

    Returns the (scope, paragraph hash) pairs whose boilerplate status this changed: only
    older articles holding one of those need splitting again. A newsletter footer that is
    already boilerplate stays so, and its thousands of older holders are left alone.
    """
    ids = [a.id for a in articles]
    seen = [
        (a.id, h, _scope(a))
        for a in articles
        for h in {paragraph_hash(p) for p in candidate_paragraphs(a.title, a.body)}
    ]
    affected: dict[str, set[str]] = {}
    for _, digest, scope in [*_sightings(session, ParagraphSighting.article_id, ids), *seen]:
        affected.setdefault(scope, set()).add(digest)
    rows = [{"article_id": a, "paragraph_hash": h, "scope": s} for a, h, s in seen]
    before = _boilerplate_pairs(session, affected)
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        session.execute(delete(ParagraphSighting).where(ParagraphSighting.article_id.in_(chunk)))
    if rows:
        session.execute(insert(ParagraphSighting), rows)
    return before ^ _boilerplate_pairs(session, affected)


def _boilerplate_pairs(session: Session, hashes: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The (scope, hash) pairs among ``hashes`` (hashes by scope) that are boilerplate now."""
    return {
        (scope, digest)
        for scope, digests in hashes.items()
        for digest in _Repeats(session, scope).boilerplate(digests)
    }


def _sightings(
    session: Session, column: object, values: Iterable[object], scopes: Iterable[str] = ()
) -> list[tuple]:
    """Sightings whose ``column`` is one of ``values`` (and whose scope is one of ``scopes``).

    Look-ups by paragraph hash must name their scopes: only the (scope, hash) index serves
    them, and without it each stored article would scan the whole table inside its write.
    """
    values = list(values)
    scopes = sorted(set(scopes))
    rows: list[tuple] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        query = select(
            ParagraphSighting.article_id, ParagraphSighting.paragraph_hash, ParagraphSighting.scope
        ).where(column.in_(chunk))  # type: ignore[attr-defined]
        if scopes:
            query = query.where(ParagraphSighting.scope.in_(scopes))
        rows.extend(tuple(row) for row in session.execute(query))
    return rows


class _Repeats:
    """Which paragraphs of one scope (source and outlet) are boilerplate, hash by hash.

    Each lookup reads a hash's first few holders by index, never every article of the
    outlet: a paragraph is boilerplate once two independent articles hold it, and
    :func:`boilerplate_hashes` decides that in article-id order.
    """

    PAGE = 16

    def __init__(self, session: Session, scope: str) -> None:
        self.session = session
        self.scope = scope
        self._hashes_of: dict[int, set[str]] = {}

    def boilerplate(self, hashes: Iterable[str]) -> set[str]:
        repeated: list[str] = []
        wanted = sorted(set(hashes))
        for start in range(0, len(wanted), IN_CHUNK):
            query = (
                select(ParagraphSighting.paragraph_hash)
                .where(
                    ParagraphSighting.scope == self.scope,
                    ParagraphSighting.paragraph_hash.in_(wanted[start : start + IN_CHUNK]),
                )
                .group_by(ParagraphSighting.paragraph_hash)
                .having(func.count() >= 2)
            )
            repeated.extend(self.session.scalars(query))
        return {digest for digest in repeated if self._is_boilerplate(digest)}

    def _is_boilerplate(self, digest: str) -> bool:
        holders: dict[int, set[str]] = {}
        after = -1
        while True:
            page = list(
                self.session.scalars(
                    select(ParagraphSighting.article_id)
                    .where(
                        ParagraphSighting.paragraph_hash == digest,
                        ParagraphSighting.scope == self.scope,
                        ParagraphSighting.article_id > after,
                    )
                    .order_by(ParagraphSighting.article_id)
                    .limit(self.PAGE)
                )
            )
            if not page:
                return False
            holders.update((article_id, self._hashes(article_id)) for article_id in page)
            # The first holders in id order decide, as over the whole outlet.
            if digest in boilerplate_hashes(holders):
                return True
            after = page[-1]

    def _hashes(self, article_id: int) -> set[str]:
        if article_id not in self._hashes_of:
            query = select(ParagraphSighting.paragraph_hash).where(
                ParagraphSighting.article_id == article_id, ParagraphSighting.scope == self.scope
            )
            self._hashes_of[article_id] = set(self.session.scalars(query))
        return self._hashes_of[article_id]


def _articles_to_split(
    session: Session, touched: list[Article], changed: set[tuple[str, str]]
) -> list[Article]:
    """The touched articles, plus older ones holding a paragraph whose status ``changed``."""
    by_scope: dict[str, list[str]] = {}
    for scope, digest in changed:
        by_scope.setdefault(scope, []).append(digest)
    sharing: set[int] = set()
    for scope, digests in by_scope.items():
        for start in range(0, len(digests), IN_CHUNK):
            query = select(ParagraphSighting.article_id).where(
                ParagraphSighting.paragraph_hash.in_(digests[start : start + IN_CHUNK]),
                ParagraphSighting.scope == scope,
            )
            sharing.update(session.scalars(query))
    sharing -= {a.id for a in touched}
    others = [session.get(Article, article_id) for article_id in sorted(sharing)]
    return touched + [a for a in others if a is not None]


def _boilerplate_of(session: Session, articles: list[Article]) -> dict[int, set[str]]:
    """Each article's boilerplate paragraph hashes, looked up scope by scope in bulk."""
    own: dict[int, set[str]] = {a.id: set() for a in articles}
    for article_id, digest, _ in _sightings(
        session, ParagraphSighting.article_id, [a.id for a in articles]
    ):
        own[article_id].add(digest)
    by_scope: dict[str, list[Article]] = {}
    for article in articles:
        by_scope.setdefault(_scope(article), []).append(article)
    found: dict[int, set[str]] = {}
    for scope, members in by_scope.items():
        repeated = _Repeats(session, scope).boilerplate(set().union(*(own[a.id] for a in members)))
        found.update((a.id, own[a.id] & repeated) for a in members)
    return found


def _resplit_all(
    session: Session, articles: list[Article], renew: set[int]
) -> tuple[list[int], list[int]]:
    """Re-split these articles: the passages inserted and the ones removed (ids).

    See :func:`_resplit`.
    """
    boilerplate = _boilerplate_of(session, articles)
    old: dict[int, list[str]] = {a.id: [] for a in articles}
    old_ids: dict[int, list[int]] = {a.id: [] for a in articles}
    ids = list(old)
    for start in range(0, len(ids), IN_CHUNK):
        query = (
            select(Passage.article_id, Passage.id, Passage.text)
            .where(Passage.article_id.in_(ids[start : start + IN_CHUNK]))
            .order_by(Passage.article_id, Passage.position)
        )
        for article_id, passage_id, text in session.execute(query):
            old[article_id].append(text)
            old_ids[article_id].append(passage_id)
    removed: list[int] = []
    rows: list[dict[str, object]] = []
    replaced: list[int] = []
    resplit: list[int] = []
    for article in articles:
        texts = _resplit(article, boilerplate[article.id], old[article.id], article.id in renew)
        if texts is None:
            continue
        rows.extend(
            {"article_id": article.id, "position": i, "text": t, "text_hash": text_hash(t)}
            for i, t in enumerate(texts)
        )
        removed.extend(old_ids[article.id])
        resplit.append(article.id)
        if old[article.id]:
            replaced.append(article.id)
    for start in range(0, len(replaced), IN_CHUNK):
        chunk = replaced[start : start + IN_CHUNK]
        session.execute(delete(Passage).where(Passage.article_id.in_(chunk)))
    if not rows:
        return [], removed
    # One multi-row insert: ORM objects per passage cost more than the splitting. The new
    # ids are read back by article (indexed) rather than with RETURNING, which made this
    # insert 1.3x (SQLite) to 1.7x (PostgreSQL) slower.
    session.execute(insert(Passage), rows)
    inserted: list[int] = []
    for start in range(0, len(resplit), IN_CHUNK):
        chunk = resplit[start : start + IN_CHUNK]
        inserted.extend(session.scalars(select(Passage.id).where(Passage.article_id.in_(chunk))))
    return inserted, removed


def _resplit(
    article: Article, boilerplate: set[str], old: list[str], renew: bool
) -> list[str] | None:
    """The article's new passage texts, or None when its stored passages stay as they are.

    A passage row is never edited: the index keys vectors and BM25 documents (title and
    text) by passage id, so a new title (``renew``) needs new rows too, or search would keep
    the old headline's words. Vectors of unchanged text come from the embedding cache.
    """
    texts = split_passages(clean_paragraphs(article.title, article.body, boilerplate))
    return None if texts == old and not renew else texts


# --- a refreshed source's rows ----------------------------------------------------------------

# Sources `newsbot ingest` created: there is no path to read again.
INGESTED_PREFIX = "local:"


@dataclass(frozen=True)
class SourceSnapshot:
    """A source's row as read before the (slow, async) fetching starts."""

    id: int
    name: str
    kind: str
    location: str
    guild_id: int
    etag: str | None
    last_modified: str | None
    failures: int
    next_fetch_at: datetime | None


@dataclass(kw_only=True)
class SourceUpdate:
    """What a successful fetch of a source writes: its articles, and what it learnt."""

    articles: list[RawArticle] = field(default_factory=list)
    kind: str | None = None  # set when a "web" source turned out to be a feed or a page
    location: str | None = None
    validators: tuple[str | None, str | None] | None = None  # (etag, last_modified) to keep
    seen: dict[str, str] = field(default_factory=dict)  # feed entry key → fingerprint
    stopped: str | None = None  # why fetching stopped at the deadline, entries left for later


def sources_to_refresh(
    engine: Engine, source_ids: Sequence[int] | None, guild_id: int | None
) -> list[SourceSnapshot]:
    """The sources asked for (``InputError`` if one is unknown), or every refreshable one,
    of one server or all, in id order."""
    with session_scope(engine) as session:
        query = select(Source).order_by(Source.id)
        if guild_id is not None:
            query = query.where(Source.guild_id == guild_id)
        if source_ids is not None:
            query = query.where(Source.id.in_(list(source_ids)))
        else:
            query = query.where(~Source.location.startswith(INGESTED_PREFIX))
        sources = list(session.scalars(query))
        if source_ids is not None:
            missing = sorted(set(source_ids) - {s.id for s in sources})
            if missing:
                where = " on this server" if guild_id is not None else ""
                raise InputError(f"no source with id {', '.join(map(str, missing))}{where}")
        return [
            SourceSnapshot(
                id=s.id,
                name=s.name,
                kind=s.kind,
                location=s.location,
                guild_id=s.guild_id,
                etag=s.etag,
                last_modified=s.last_modified,
                failures=s.failures or 0,
                next_fetch_at=s.next_fetch_at,
            )
            for s in sources
        ]


def feed_entries_known(
    engine: Engine, source_id: int, keys: list[str]
) -> dict[str, tuple[bool, str | None]]:
    """For each key: is an article stored under it, and the fingerprint last seen for it."""
    if not keys:
        return {}
    with session_scope(engine) as session:
        stored = set(
            session.scalars(
                select(Article.key).where(Article.source_id == source_id, Article.key.in_(keys))
            )
        )
        rows = session.execute(
            select(FeedItem.key, FeedItem.fingerprint).where(
                FeedItem.source_id == source_id, FeedItem.key.in_(keys)
            )
        )
        seen = {key: fingerprint for key, fingerprint in rows}
    return {key: (key in stored, seen.get(key)) for key in keys}


def _live_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise InputError(f"source {source_id} was removed during the refresh")
    return source


def save_refresh(
    engine: Engine, source_id: int, update: SourceUpdate, now: datetime, next_at: datetime
) -> StoreResult:
    """Store the articles in batches, then what the feed said and the source's health.

    Each step is a short transaction of its own, rerun if it loses a race with another
    process writing the same rows.
    """
    if update.kind is not None:
        write_with_retry(engine, lambda session: _save_kind(session, source_id, update))
    total = StoreResult()
    for start in range(0, len(update.articles), BATCH_SIZE):
        batch = update.articles[start : start + BATCH_SIZE]
        total.merge(
            write_with_retry(
                engine,
                lambda session, batch=batch: store_articles(  # type: ignore[misc]
                    session, _live_source(session, source_id), batch
                ),
            )
        )
    write_with_retry(engine, lambda session: _save_health(session, source_id, update, now, next_at))
    return total


def _save_kind(session: Session, source_id: int, update: SourceUpdate) -> None:
    source = _live_source(session, source_id)
    location = update.location or source.location
    if location != source.location:
        clash = session.scalar(
            select(Source).where(
                Source.guild_id == source.guild_id,
                Source.location == location,
                Source.id != source_id,
            )
        )
        if clash is not None:
            raise InputError(
                f"{source.location} advertises the feed {location}, which is already"
                f" source {clash.id} ({clash.name}); remove one of them"
            )
    source.kind, source.location = update.kind or source.kind, location


def _save_health(
    session: Session, source_id: int, update: SourceUpdate, now: datetime, next_at: datetime
) -> None:
    source = _live_source(session, source_id)
    for key, fingerprint in update.seen.items():
        session.merge(FeedItem(source_id=source_id, key=key, fingerprint=fingerprint, seen_at=now))
    if update.validators is not None:
        etag, last_modified = update.validators
        source.etag = _storable(etag, Source.etag)
        source.last_modified = _storable(last_modified, Source.last_modified)
    source.last_success_at = now
    source.last_error = update.stopped
    source.last_error_at = now if update.stopped else None
    source.failures = 0
    source.next_fetch_at = next_at


def _storable(validator: str | None, column: object) -> str | None:
    """An ETag or Last-Modified value, or None (never sent back) when its column cannot hold
    it: the refresh must still be recorded as a success."""
    limit = getattr(getattr(column, "type", None), "length", None)
    return validator if validator is None or limit is None or len(validator) <= limit else None


def record_refresh_failure(
    engine: Engine,
    source_id: int,
    message: str,
    now: datetime,
    failures: int,
    next_at: datetime,
) -> None:
    """A failed refresh: the error, how many failures in a row, and when to try again."""

    def record(session: Session) -> None:
        source = session.get(Source, source_id)
        if source is None:
            return
        source.last_error = clean_line(message)[:2000]  # a server's words may hold a NUL
        source.last_error_at = now
        source.failures = failures
        source.next_fetch_at = next_at

    write_with_retry(engine, record)


# --- queries used by the index and the answer layer -------------------------------------------


@dataclass(frozen=True)
class PassageRecord:
    """A passage with everything needed to quote and cite it."""

    passage_id: int
    text: str
    article_id: int
    position: int
    title: str
    outlet: str
    url: str | None
    published_at: datetime | None
    source_id: int
    guild_id: int


def passages_by_id(session: Session, ids: Sequence[int]) -> dict[int, PassageRecord]:
    found: dict[int, PassageRecord] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = list(ids[start : start + IN_CHUNK])
        query = (
            select(
                Passage.id,
                Passage.text,
                Article.id,
                Passage.position,
                Article.title,
                Article.outlet,
                Article.url,
                Article.published_at,
                Source.id,
                Source.guild_id,
            )
            .join(Article, Passage.article_id == Article.id)
            .join(Source, Article.source_id == Source.id)
            .where(Passage.id.in_(chunk))
        )
        for row in session.execute(query):
            record = PassageRecord(
                passage_id=row[0],
                text=row[1],
                article_id=row[2],
                position=row[3],
                title=row[4],
                outlet=row[5],
                url=row[6],
                published_at=row[7],
                source_id=row[8],
                guild_id=row[9],
            )
            found[record.passage_id] = record
    return found


def passages_beside(
    session: Session, places: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """The texts of the passages just before and after each (article id, position)."""
    wanted = sorted(
        {(article, position + step) for article, position in places for step in (-1, 1)}
    )
    found: dict[tuple[int, int], str] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        # Two plain IN lists, not a row-value IN: SQLite scans the whole table for the latter
        # (20 ms at 70k passages), while these use the (article, position) index.
        query = select(Passage.article_id, Passage.position, Passage.text).where(
            Passage.article_id.in_(sorted({article for article, _ in chunk})),
            Passage.position.in_(sorted({position for _, position in chunk})),
        )
        asked = set(chunk)
        for article, position, text in session.execute(query):
            if (article, position) in asked:
                found[(article, position)] = text
    return found


@dataclass(frozen=True)
class CorpusStats:
    sources: int
    articles: int
    passages: int


def corpus_stats(session: Session, guild_id: int | None = None) -> CorpusStats:
    """Counts for everything, or for what one server can see (its sources and global ones)."""
    visible = (
        Source.guild_id.in_([GLOBAL_GUILD, guild_id]) if guild_id is not None else Source.id > 0
    )
    sources = session.scalar(select(func.count(Source.id)).where(visible)) or 0
    articles = session.scalar(select(func.count(Article.id)).join(Source).where(visible)) or 0
    passages = (
        session.scalar(
            select(func.count(Passage.id))
            .join(Article, Passage.article_id == Article.id)
            .join(Source, Article.source_id == Source.id)
            .where(visible)
        )
        or 0
    )
    return CorpusStats(sources=sources, articles=articles, passages=passages)
