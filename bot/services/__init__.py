"""What the bot does, without Discord: each command awaits one of these services.

The Discord cogs, the local console and the command line call the same methods, so all three
behave alike. Each service is handed the process's ``Resources`` (``bot/resources.py``) and
opens nothing of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.resources import Resources
from bot.services.about import AboutService
from bot.services.ask import AskService
from bot.services.check import CheckService
from bot.services.feedback import FeedbackService
from bot.services.follow import FollowService
from bot.services.reindex import ReindexService
from bot.services.sources import SourceService
from ingest.models import GLOBAL_GUILD


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
    check: CheckService
    feedback: FeedbackService
    follows: FollowService

    @classmethod
    def create(cls, resources: Resources, cooldown_seconds: float | None = None) -> Services:
        ask = AskService(resources, cooldown_seconds)
        return cls(
            ask=ask,
            reindex=ReindexService(resources),
            sources=SourceService(resources),
            about=AboutService(resources),
            check=CheckService(resources, ask),
            feedback=FeedbackService(resources),
            follows=FollowService(resources),
        )
