"""What questions are answered from: a server's counts and freshness, the host's statistics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.resources import Resources
from bot.services.feedback import VoteShare, helpful_share
from index.search import orphan_ids
from index.vectors import Manifest, read_catalog_ids, read_manifest
from ingest.db import session_scope
from ingest.sources import list_sources
from ingest.store import CorpusStats, corpus_stats


@dataclass(frozen=True)
class About:
    sources: int
    articles: int
    passages: int
    last_refresh: datetime | None
    index_built: datetime | None
    votes: VoteShare = field(default_factory=lambda: VoteShare(0, 0))  # the last 30 days


@dataclass(frozen=True)
class Stats:
    """Everything stored, the live index (None before the first build), the database."""

    counts: CorpusStats
    manifest: Manifest | None
    database: str  # its URL, password hidden


class AboutService:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def about(self, guild_id: int | None) -> About:
        """Counts for what ``guild_id`` can see (None: everything)."""
        return await asyncio.to_thread(self._about, guild_id)

    def _about(self, guild_id: int | None) -> About:
        with session_scope(self.resources.engine) as session:
            stats = corpus_stats(session, guild_id)
            fetched = [s.last_success_at for s in list_sources(session, guild_id)]
        votes = helpful_share(self.resources.engine, guild_id)
        manifest = read_manifest(self.resources.settings.index_dir)
        return About(
            sources=stats.sources,
            articles=stats.articles,
            passages=stats.passages,
            last_refresh=max((f for f in fetched if f is not None), default=None),
            index_built=datetime.fromtimestamp(manifest.built_at, UTC) if manifest else None,
            votes=votes,
        )

    def stats_blocking(self) -> Stats:
        """``newsbot stats``: every source's counts and the live index."""
        engine, index_dir = self.resources.engine, self.resources.settings.index_dir
        if len(orphan_ids(engine, read_catalog_ids(index_dir))):
            # An interrupted removal left vectors of deleted passages: repair before counting.
            self.resources.retriever.sync()
        with session_scope(engine) as session:
            counts = corpus_stats(session)
        return Stats(
            counts, read_manifest(index_dir), engine.url.render_as_string(hide_password=True)
        )
