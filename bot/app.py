"""The Discord client: intents, cogs, command sync, and the one error handler."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.errors import report_error
from bot.resources import Resources
from bot.services import Services
from bot.settings import Settings
from ingest.dates import load_date_reader
from ingest.errors import NewsbotError

log = logging.getLogger(__name__)

# How often the schedule looks for due sources (each is due every NEWSBOT_REFRESH_MINUTES).
REFRESH_POLL_SECONDS = 60.0

EXTENSIONS = (
    "bot.cogs.ask",
    "bot.cogs.reindex",
    "bot.cogs.sources",
    "bot.cogs.about",
    "bot.cogs.votes",
    "bot.cogs.check",
    "bot.cogs.follow",
)

INVITE_SCOPES = ("bot", "applications.commands")
# Slash commands are answered through the interaction itself and need none of these; they
# are for answers to mentions (a reply with an embed, in channels and threads) and for the
# reindex progress message once its interaction has expired.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    read_message_history=True,
)


def intents_for(settings: Settings) -> discord.Intents:
    """The gateway events the bot needs, and no privileged ones unless configured."""
    intents = discord.Intents.none()
    intents.guilds = True  # servers, channels and roles: the moderator/admin role checks
    intents.guild_messages = True  # messages that mention the bot, or reply to it
    intents.dm_messages = True  # questions sent in a direct message
    # Privileged: only to read un-mentioned follow-ups in the bot's threads.
    intents.message_content = settings.message_content_intent
    return intents


def shards_of(settings: Settings) -> list[int] | None:
    """The shards this process connects (all of them when no ids are set); None unsharded."""
    if settings.shard_count is None:
        return None
    return settings.shard_ids or list(range(settings.shard_count))


def holds_shard_zero(settings: Settings) -> bool:
    """Whether this process does the bot-wide work: it is the only one, or it holds shard 0.

    A sharded deployment runs every shard, each in one process (README: Sharding), so exactly
    one process holds shard 0, the one Discord also sends the direct messages to.
    """
    shards = shards_of(settings)
    return shards is None or 0 in shards


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES
    )


class NewsTree(app_commands.CommandTree):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        await report_error(interaction, error)


class NewsBot(commands.Bot):
    """Handed its resources (database, index, model) by whoever opened them.

    Every message it sends pings nobody: ``AllowedMentions.none()`` here, and again on each
    send, so a quoted "@everyone" stays text.
    """

    def __init__(
        self,
        resources: Resources,
        services: Services | None = None,
        *,
        background: bool = True,
        **client_options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents_for(resources.settings),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            tree_cls=NewsTree,
            **client_options,
        )
        self.resources = resources
        self.services = services or Services.create(resources)
        # Off in tests that check the commands alone: no model loading, no fetching.
        self.background = background
        self.holds_shard_zero = holds_shard_zero(resources.settings)
        self._warm_up: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Commands belong to the application, not to a shard: one sync serves every process.
        # Only the process holding shard 0 sends it, so that N processes starting together do
        # not send N identical syncs into Discord's rate limits on command updates.
        if self.holds_shard_zero:
            await self.sync_commands()
        if self.background:
            self.start_background_work()

    def start_background_work(self) -> None:
        """What the bot does on its own, besides answering; ``close`` stops all of it."""
        if self.services.follower is not None:
            # Workers fetch and embed; this bot follows the database (bot/jobs/follow.py).
            self._warm_up = asyncio.create_task(self.follow_database())
            return
        self._warm_up = asyncio.create_task(self.warm_up())
        # Processes on one box share the database and the data directory, and every one of
        # them reloads the index another publishes (index/search.py). One schedule is enough:
        # each more would fetch every feed again and race the first to store the same articles.
        if self.holds_shard_zero:
            self.refresh_schedule.start()
        else:
            log.info("sources are refreshed by the process holding shard 0, not this one")

    async def close(self) -> None:
        self.refresh_schedule.cancel()
        if self._warm_up is not None:
            self._warm_up.cancel()
        await super().close()

    async def sync_commands(self) -> None:
        """To the test server when one is configured (instant), else globally (up to an hour)."""
        guild_id = self.resources.settings.discord_test_guild
        try:
            if guild_id:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            else:
                synced = await self.tree.sync()
        except discord.HTTPException as error:
            # The commands synced last time keep working; say what is wrong and carry on.
            log.error(
                "could not sync slash commands (%s); was the bot invited with the "
                "applications.commands scope?",
                error,
            )
            return
        where = f"to server {guild_id}" if guild_id else "globally"
        log.info("synced %d slash commands %s", len(synced), where)

    async def warm_up(self) -> None:
        """Load the model and index now, so the first question is answered as fast as the rest.

        The index first catches up with the database, which may have changed while the bot
        was down: articles stored by another tool, a database restored or swapped, another
        model configured (a rebuild). Unchanged, it costs one read of the passage list.
        """
        await asyncio.to_thread(load_date_reader)
        try:
            # Building the retriever loads the model: seconds of work, off the event loop.
            retriever = await asyncio.to_thread(lambda: self.resources.retriever)
            report = await asyncio.to_thread(retriever.sync)
            await asyncio.to_thread(retriever.live)
        except NewsbotError as error:  # a set-up mistake, said in one line
            log.error("could not load the model or index: %s", error)
            return
        except Exception:
            log.exception("could not load the model or index; questions will retry")
            return
        if report.added or report.removed or report.rebuilt:
            log.info(
                "index caught up with the database: %d passages added, %d removed%s",
                report.added,
                report.removed,
                " (rebuilt for the configured model)" if report.rebuilt else "",
            )

    async def follow_database(self) -> None:
        """Load the model, catch up with the database, then apply each change the workers make."""
        from bot.jobs.follow import follow_index
        from bot.jobs.queue import defer_embedding, libpq_url

        follower, queue = self.services.follower, self.services.queue
        assert follower is not None and queue is not None
        try:
            await asyncio.to_thread(lambda: self.resources.retriever)
        except NewsbotError as error:
            log.error("could not load the model or index: %s", error)
            return
        # Passages stored without vectors (the sample corpus a first start stored, say).
        await defer_embedding(queue)
        # One process posts the follows' news, for every shard: each post is sent once.
        await follow_index(
            libpq_url(self.resources.settings.resolved_database_url),
            follower.update,
            stored=self.services.sources.announce if self.holds_shard_zero else None,
        )

    @tasks.loop(seconds=REFRESH_POLL_SECONDS)
    async def refresh_schedule(self) -> None:
        """Fetch the sources that are due; each source has its own schedule."""
        try:
            report = await self.services.sources.refresh_due()
            if report.index is not None:
                log.info("scheduled refresh: %d passages added", report.index.added)
        except Exception:
            # Logged and retried at the next poll: an exception would end the loop.
            log.exception("scheduled refresh failed; trying again later")

    async def on_ready(self) -> None:
        assert self.user is not None
        settings = self.resources.settings
        shards = shards_of(settings)
        log.info(
            "logged in as %s (id %s) in %d servers%s",
            self.user,
            self.user.id,
            len(self.guilds),
            "" if shards is None else f" on shards {shards} of {settings.shard_count}",
        )
        if self.application_id:
            log.info("invite link: %s", invite_url(self.application_id))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: the ask cog's listener answers questions that mention the bot."""


class ShardedNewsBot(NewsBot, commands.AutoShardedBot):
    """The bot as one of several processes: it connects only the shards it is given.

    Discord sends each server's events to the shard ``(guild_id >> 22) % shard_count`` (and
    direct messages to shard 0), so every mention and command reaches exactly one process.
    """

    def __init__(
        self, resources: Resources, services: Services | None = None, *, background: bool = True
    ) -> None:
        settings = resources.settings
        super().__init__(
            resources,
            services,
            background=background,
            shard_count=settings.shard_count,
            shard_ids=shards_of(settings),
        )


def create_bot(
    resources: Resources, services: Services | None = None, *, background: bool = True
) -> NewsBot:
    """A :class:`ShardedNewsBot` when ``NEWSBOT_SHARD_COUNT`` is set, else the one-process bot."""
    if resources.settings.shard_count is None:
        return NewsBot(resources, services, background=background)
    return ShardedNewsBot(resources, services, background=background)
