"""Ingest = read → clean → split → store, for local files and folders."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ingest.extract import RawArticle, read_paths
from ingest.models import GLOBAL_GUILD
from ingest.sanitize import source_name as checked_source_name
from ingest.store import (
    BATCH_SIZE,
    INGESTED_PREFIX,
    StoreResult,
    get_or_create_source,
    store_articles,
    write_with_retry,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (done, total) as a long job advances."""


@dataclass
class IngestReport:
    source_id: int
    source_name: str
    result: StoreResult
    problems: list[str] = field(default_factory=list)


def default_source_name(paths: list[Path]) -> str:
    first = paths[0].resolve()
    return first.name if first.is_dir() else first.stem


def ingest_paths(
    engine: Engine,
    paths: list[Path],
    source_name: str | None = None,
    guild_id: int = GLOBAL_GUILD,
    progress: Progress | None = None,
) -> IngestReport:
    """Read the files under ``paths`` into one local source; bad files are reported and skipped."""
    name = checked_source_name(source_name or default_source_name(paths))
    read = read_paths(paths)
    report = store_raw_articles(engine, read.articles, name, guild_id, progress)
    report.problems[:0] = read.problems
    for problem in read.problems:
        log.warning("skipped: %s", problem)
    return report


def store_raw_articles(
    engine: Engine,
    articles: list[RawArticle],
    source_name: str,
    guild_id: int = GLOBAL_GUILD,
    progress: Progress | None = None,
    kind: str = "local",
    location: str | None = None,
) -> IngestReport:
    """Store already-read articles into the named source, in batches of one transaction each.

    Another process may store into the same source at the same time: each batch is retried
    when it loses a race, so both finish and every article is stored once.
    """
    location = location or f"{INGESTED_PREFIX}{source_name}"

    def batch(chunk: list[RawArticle]) -> Callable[[Session], StoreResult]:
        def store(session: Session) -> StoreResult:
            source = get_or_create_source(session, source_name, kind, location, guild_id)
            return store_articles(session, source, chunk)

        return store

    source_id = write_with_retry(
        engine,
        lambda session: get_or_create_source(session, source_name, kind, location, guild_id).id,
    )
    total = StoreResult()
    for start in range(0, len(articles), BATCH_SIZE):
        total.merge(write_with_retry(engine, batch(articles[start : start + BATCH_SIZE])))
        if progress:
            progress(min(start + BATCH_SIZE, len(articles)), len(articles))
    return IngestReport(source_id=source_id, source_name=source_name, result=total)
