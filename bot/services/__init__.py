"""What the bot does, without Discord: each command awaits one of these services.

The Discord cogs and the local console call the same methods, so both behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.context import AppContext
from bot.services.about import AboutService
from bot.services.ask import AskService
from bot.services.reindex import ReindexService
from bot.services.sources import SourceService
from ingest.models import GLOBAL_GUILD

if TYPE_CHECKING:
    import procrastinate

    from bot.jobs.follow import IndexFollower


def guild_scope(guild_id: int | None) -> int:
    """The sources a Discord conversation may quote: its server's and global ones.

    A DM belongs to no server, so it sees global sources only (``None`` would mean "every
    server's sources", which only the local console may ask for).
    """
    return GLOBAL_GUILD if guild_id is None else guild_id


@dataclass
class Services:
    ask: AskService
    reindex: ReindexService
    sources: SourceService
    about: AboutService
    # Set when workers fetch and embed (NEWSBOT_JOBS=queue): the bot follows the database.
    follower: IndexFollower | None = None
    queue: procrastinate.App | None = None

    @classmethod
    def create(cls, context: AppContext, cooldown_seconds: float | None = None) -> Services:
        return cls(
            ask=AskService(context, cooldown_seconds),
            reindex=ReindexService(context),
            sources=SourceService(context),
            about=AboutService(context),
        )

    @classmethod
    def queued(cls, context: AppContext, queue: procrastinate.App) -> Services:
        """The services of a bot whose workers fetch and embed (``NEWSBOT_JOBS=queue``)."""
        from bot.jobs.follow import IndexFollower
        from bot.services.queued import QueuedReindexService, QueuedSourceService

        follower = IndexFollower(lambda: context.retriever)
        return cls(
            ask=AskService(context),
            reindex=QueuedReindexService(context, queue, follower),
            sources=QueuedSourceService(context, queue, follower),
            about=AboutService(context),
            follower=follower,
            queue=queue,
        )
