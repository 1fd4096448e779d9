"""What a server's questions are answered from: counts, freshness, index age."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.context import AppContext
from index.segments import read_manifest
from ingest.db import session_scope
from ingest.sources import list_sources
from ingest.store import corpus_stats


@dataclass(frozen=True)
class About:
    sources: int
    articles: int
    passages: int
    last_refresh: datetime | None
    index_built: datetime | None


class AboutService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def about(self, guild_id: int | None) -> About:
        """Counts for what ``guild_id`` can see (None: everything)."""
        return await asyncio.to_thread(self._about, guild_id)

    def _about(self, guild_id: int | None) -> About:
        with session_scope(self.context.engine) as session:
            stats = corpus_stats(session, guild_id)
            fetched = [s.last_success_at for s in list_sources(session, guild_id)]
        manifest = read_manifest(self.context.settings.index_dir)
        return About(
            sources=stats.sources,
            articles=stats.articles,
            passages=stats.passages,
            last_refresh=max((f for f in fetched if f is not None), default=None),
            index_built=datetime.fromtimestamp(manifest.built_at, UTC) if manifest else None,
        )
