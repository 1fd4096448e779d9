"""/follow add|list|remove|pause|resume, and posting each follow's news in its channel.

After every refresh that stored articles (the schedule or /source refresh), the follows that
can see them get at most one post each; a channel that was deleted, or where the bot may no
longer post, disables its follows, and /follow list says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits, render_follow
from bot.checks import is_staff, staff_only
from bot.render import NO_MENTIONS
from bot.respond import follow_up, think
from bot.services.follow import MAX_TOPIC_CHARS, FollowNews
from ingest.errors import InputError
from ingest.follows import FollowRecord

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

PostChannel = discord.TextChannel | discord.Thread
CHANNEL_DELETED = "its channel was deleted"
NEEDED = "View Channel, Send Messages and Embed Links"


def missing_permissions(channel: PostChannel) -> str | None:
    """Why the bot cannot post its embeds in ``channel``, or None when it can."""
    me = channel.guild.me
    if me is None:  # the server is not in this process's cache: the send itself will tell
        return None
    allowed = channel.permissions_for(me)
    # In a thread, Send Messages in Threads is what counts, not Send Messages.
    thread = isinstance(channel, discord.Thread)
    sends = allowed.send_messages_in_threads if thread else allowed.send_messages
    if allowed.view_channel and sends and allowed.embed_links:
        return None
    return f"newsbot may not post in #{channel.name} (it needs {NEEDED} there)"


def may_follow(interaction: discord.Interaction) -> bool:
    """The cog's check, for autocomplete (which skips it): nothing for other members."""
    return is_staff(interaction, "admin", "manage_channels")


@staff_only("admin", "manage_channels")
class FollowCog(
    commands.GroupCog,
    group_name="follow",
    group_description="Follow a story: new articles about a topic are posted in a channel",
):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.follows = bot.services.follows
        self._posting = asyncio.Lock()  # one refresh's news after another's, never interleaved
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        super().__init__()

    async def cog_load(self) -> None:
        self._unsubscribe = self.bot.services.sources.subscribe(self.on_articles_stored)

    async def cog_unload(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()

    # --- commands -----------------------------------------------------------------------

    @app_commands.command()
    @app_commands.describe(
        topic="The story to follow, in your own words (e.g. the harbour festival)",
        channel="Where new articles about it are posted",
        source="Only from this source or outlet (default: all of this server's news)",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        topic: app_commands.Range[str, 1, MAX_TOPIC_CHARS],
        channel: PostChannel,
        source: app_commands.Range[str, 1, limits.CHOICE_NAME] | None = None,
    ) -> None:
        """Post new articles about a topic in a channel, after each refresh."""
        await think(interaction, private=True)
        if (problem := missing_permissions(channel)) is not None:
            raise InputError(f"{problem}; allow it there, then add the follow again.")
        assert interaction.guild_id is not None  # guild_only
        follow = await self.follows.add(
            interaction.guild_id, channel.id, topic, source, interaction.user.id
        )
        await follow_up(interaction, content=render_follow.added_content(follow))

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """This server's follows, their channels, and any that stopped (and why)."""
        await think(interaction, private=True)
        assert interaction.guild_id is not None
        follows = await self.follows.listed(interaction.guild_id)
        guild_name = interaction.guild.name if interaction.guild else None
        await follow_up(interaction, embed=render_follow.follows_embed(follows, guild_name))

    @app_commands.command()
    @app_commands.describe(follow="The follow to remove")
    async def remove(self, interaction: discord.Interaction, follow: int) -> None:
        """Stop following a story."""
        await think(interaction, private=True)
        assert interaction.guild_id is not None
        removed = await self.follows.remove(follow, interaction.guild_id)
        await follow_up(interaction, content=render_follow.removed_content(removed))

    @app_commands.command()
    @app_commands.describe(follow="The follow to pause")
    async def pause(self, interaction: discord.Interaction, follow: int) -> None:
        """Stop posting a follow's news for now; /follow resume starts again."""
        await self._set_paused(interaction, follow, True)

    @app_commands.command()
    @app_commands.describe(follow="The follow to resume (a disabled one too)")
    async def resume(self, interaction: discord.Interaction, follow: int) -> None:
        """Post a paused or disabled follow's news again."""
        await self._set_paused(interaction, follow, False)

    async def _set_paused(
        self, interaction: discord.Interaction, follow: int, paused: bool
    ) -> None:
        await think(interaction, private=True)
        assert interaction.guild_id is not None
        changed = await self.follows.pause(follow, interaction.guild_id, paused)
        await follow_up(interaction, content=render_follow.paused_content(changed))

    @add.autocomplete("source")
    async def source_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # The same names /ask's source: offers (this server's sources and outlets).
        if interaction.guild_id is None or not may_follow(interaction):
            return []
        names = await self.bot.services.ask.source_names(interaction.guild_id, current)
        return [app_commands.Choice(name=name, value=name) for name in names]

    @remove.autocomplete("follow")
    @pause.autocomplete("follow")
    @resume.autocomplete("follow")
    async def follow_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None or not may_follow(interaction):
            return []
        found = await self.follows.choices(interaction.guild_id, current, limits.CHOICES)
        return [app_commands.Choice(name=render_follow.choice_name(f), value=f.id) for f in found]

    # --- posting ------------------------------------------------------------------------

    async def on_articles_stored(self, article_ids: list[int]) -> None:
        """The refresh hook: post in the background, so /source refresh answers at once."""
        task = asyncio.create_task(self.post_news(article_ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Until the posts of every refresh so far are sent (for tests and shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def post_news(self, article_ids: list[int]) -> None:
        async with self._posting:
            try:
                found = await self.follows.news_for(article_ids)
            except Exception:
                log.exception("matching follows against %d new articles failed", len(article_ids))
                return
            for news in found:
                try:
                    await self._post(news)
                except Exception:  # one channel's trouble must not keep the others' news
                    log.exception("posting follow #%d failed", news.follow.id)

    async def _post(self, news: FollowNews) -> None:
        follow = news.follow
        channel = await self._channel(follow)
        if channel is None:
            return
        try:
            message = await self._send(channel, news)
        except discord.NotFound:
            await self.follows.disable(CHANNEL_DELETED, channel_id=follow.channel_id)
            return
        except discord.Forbidden:
            name = f"#{channel.name}"
            reason = f"newsbot may no longer post in {name} (it needs {NEEDED} there)"
            await self.follows.disable(reason, follow_id=follow.id)
            return
        await self.follows.record(news, message.id)

    async def _send(self, channel: PostChannel, news: FollowNews) -> discord.Message:
        if not news.capped:
            return await channel.send(
                embed=render_follow.news_embed(news), allowed_mentions=NO_MENTIONS
            )
        content = render_follow.summary_content(news)
        if news.edit_summary is not None:
            try:
                return await channel.get_partial_message(news.edit_summary).edit(
                    content=content, allowed_mentions=NO_MENTIONS
                )
            except discord.NotFound:
                pass  # someone deleted the summary: send a new one
        return await channel.send(content, allowed_mentions=NO_MENTIONS)

    async def _channel(self, follow: FollowRecord) -> PostChannel | None:
        """The follow's channel, or None after disabling the follow when it cannot be used."""
        channel = self.bot.get_channel(follow.channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(follow.channel_id)
            except discord.NotFound:
                await self.follows.disable(CHANNEL_DELETED, channel_id=follow.channel_id)
                return None
            except discord.Forbidden:
                reason = f"newsbot can no longer see its channel (it needs {NEEDED} there)"
                await self.follows.disable(reason, follow_id=follow.id)
                return None
        if not isinstance(channel, PostChannel):
            await self.follows.disable("its channel cannot hold messages", follow_id=follow.id)
            return None
        if (problem := missing_permissions(channel)) is not None:
            await self.follows.disable(problem, follow_id=follow.id)
            return None
        return channel

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self.follows.disable(CHANNEL_DELETED, channel_id=channel.id)

    @commands.Cog.listener()
    async def on_thread_delete(self, thread: discord.Thread) -> None:
        await self.follows.disable(CHANNEL_DELETED, channel_id=thread.id)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(FollowCog(bot))
