"""Managing sources: add (validated), list with health, remove with everything they brought."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.changelog import record_changes
from ingest.errors import InputError
from ingest.fetch import address_refusal, host_key
from ingest.models import GLOBAL_GUILD, Article, Milestone, Passage, Source
from ingest.sanitize import clean_line, web_link
from ingest.store import insert_source

log = logging.getLogger(__name__)

WEB_SCHEMES = ("http", "https")
# Reached when a source is first removed: the sample corpus is then never seeded again.
HAD_SOURCES = "had_sources"
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class SourceStatus:
    """A source and its health, as ``sources list`` and ``/source list`` show it."""

    id: int
    name: str
    kind: str
    location: str
    guild_id: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    articles: int
    passages: int

    @classmethod
    def of(cls, source: Source, articles: int = 0, passages: int = 0) -> SourceStatus:
        return cls(
            id=source.id,
            name=source.name,
            kind=source.kind,
            location=source.location,
            guild_id=source.guild_id,
            last_success_at=source.last_success_at,
            last_error=source.last_error,
            last_error_at=source.last_error_at,
            articles=articles,
            passages=passages,
        )


@dataclass(frozen=True)
class Removed:
    name: str
    articles: int
    passages: int


def validate_web_url(url: str) -> str:
    """A syntactically valid http(s) URL, or a one-line reason it is not one.

    Whether its host may be fetched (no internal addresses) is decided at fetch time, on
    every hop, by the fetcher.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InputError(f"not a valid URL: {url!r}") from error
    if not parts.scheme:
        raise InputError(
            f"only http and https sources are allowed, and {url!r} is no URL: give the whole "
            "address, such as https://example.com/feed.xml"
        )
    if parts.scheme.lower() not in WEB_SCHEMES:
        raise InputError(f"only http and https sources are allowed, not {parts.scheme}:")
    if not parts.hostname:
        raise InputError(f"the URL has no host: {url!r}")
    if parts.username or parts.password:
        raise InputError("URLs with credentials are not accepted")
    return url


def refuse_internal_address(url: str, allow_hosts: frozenset[str] = frozenset()) -> None:
    """Refuse a URL whose host is or resolves to an internal address, as the fetcher would.

    Checked when a source is added, so the mistake is told to whoever made it rather than
    found at the next refresh; the fetcher checks again on every request and redirect (DNS
    answers change). ``allow_hosts`` are ``FetchPolicy.allow_hosts``'s ``host:port`` pairs.
    A host that does not resolve now is let through: the refresh reports it if it stays so.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise InputError(f"the URL has an invalid port: {url!r}") from None
    if host_key(host, port) in allow_hosts:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        log.info("adding %s: %s does not resolve now (%s)", url, host, error)
        return
    for address in dict.fromkeys(str(info[4][0]) for info in infos):
        reason = address_refusal(address)
        if reason is not None:
            where = reason if host == address else f"{host} resolves to {reason}"
            raise InputError(f"refused: {where}; newsbot fetches only public addresses")


def add_source(
    session: Session, location: str, name: str | None = None, guild_id: int = GLOBAL_GUILD
) -> Source:
    """Store a new web source (kind decided on first fetch) or a local file or folder."""
    if "://" in location:
        location = web_link(location.strip())  # also refuses line breaks and over-long URLs
        kind = "web"
        default_name = urlsplit(location).hostname or location
    else:
        path = Path(location).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {location}")
        location = str(path.resolve())
        kind = "local"
        default_name = path.name
    name = clean_line(name or default_name)[:MAX_NAME_CHARS]
    existing = session.scalar(
        select(Source).where(Source.guild_id == guild_id, Source.location == location)
    )
    if existing is not None:
        raise InputError(f"already a source: {existing.name} (id {existing.id})")
    # Another process may add the same location between the check above and here.
    source, created = insert_source(session, name, kind, location, guild_id)
    if not created:
        raise InputError(f"already a source: {source.name} (id {source.id})")
    log.info("source %s added: %s (%s)", source.id, location, kind)
    return source


def list_sources(session: Session, guild_id: int | None = None) -> list[SourceStatus]:
    """Sources one server can see (its own and global ones), or all of them."""
    articles = (
        select(Article.source_id, func.count(Article.id).label("n"))
        .group_by(Article.source_id)
        .subquery()
    )
    passages = (
        select(Article.source_id, func.count(Passage.id).label("n"))
        .join(Passage, Passage.article_id == Article.id)
        .group_by(Article.source_id)
        .subquery()
    )
    query = (
        select(Source, func.coalesce(articles.c.n, 0), func.coalesce(passages.c.n, 0))
        .outerjoin(articles, articles.c.source_id == Source.id)
        .outerjoin(passages, passages.c.source_id == Source.id)
        .order_by(Source.id)
    )
    if guild_id is not None:
        query = query.where(Source.guild_id.in_([GLOBAL_GUILD, guild_id]))
    return [
        SourceStatus.of(source, int(n_articles), int(n_passages))
        for source, n_articles, n_passages in session.execute(query)
    ]


def remove_source(session: Session, source_id: int, guild_id: int | None = None) -> Removed:
    """Delete a source with its articles and passages, and log the passages as removed.

    With ``guild_id`` given, only that server's own sources can be removed.
    """
    source = session.get(Source, source_id)
    if source is None or (guild_id is not None and source.guild_id != guild_id):
        raise InputError(f"no source with id {source_id} on this server")
    n_articles = session.scalar(
        select(func.count(Article.id)).where(Article.source_id == source_id)
    )
    passage_ids = list(
        session.scalars(
            select(Passage.id)
            .join(Article, Passage.article_id == Article.id)
            .where(Article.source_id == source_id)
        )
    )
    removed = Removed(source.name, int(n_articles or 0), len(passage_ids))
    _reach(session, HAD_SOURCES)
    session.delete(source)
    session.flush()
    record_changes(session, removed=passage_ids)
    log.info("source %s removed with %s articles", source_id, removed.articles)
    return removed


def never_had_sources(session: Session) -> bool:
    """True for a database with no source that never had one removed: a first run."""
    if session.get(Milestone, HAD_SOURCES) is not None:
        return False
    return session.scalar(select(func.count(Source.id))) == 0


def _reach(session: Session, name: str) -> None:
    if session.get(Milestone, name) is None:
        session.add(Milestone(name=name))
        session.flush()
