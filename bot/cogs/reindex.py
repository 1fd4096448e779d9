"""/reindex: rebuild the index in the background, with one message that shows progress."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import text
from bot.checks import staff_only
from bot.render import NO_MENTIONS, reindex_content
from bot.services.reindex import ReindexProgress, watch

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

# Discord rate-limits message edits; one every two seconds is plenty for a progress line.
EDIT_EVERY = 2.0
# Interaction tokens expire after 15 minutes; past this, progress moves to a channel message.
TOKEN_LIFETIME = 14 * 60


class ProgressMessage:
    """The interaction's reply, edited in place; a channel message once the token expires."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.started = time.monotonic()
        self.fallback: discord.Message | None = None
        self.shown = ""

    async def progress(self, progress: ReindexProgress) -> None:
        await self.show(text.reindex_progress_text(progress))

    async def show(self, line: str) -> None:
        content = reindex_content(line)
        if content == self.shown:
            return
        self.shown = content
        try:
            if time.monotonic() - self.started < TOKEN_LIFETIME:
                await self.interaction.edit_original_response(
                    content=content, allowed_mentions=NO_MENTIONS
                )
            elif self.fallback is not None:
                await self.fallback.edit(content=content, allowed_mentions=NO_MENTIONS)
            elif isinstance(self.interaction.channel, discord.abc.Messageable):
                self.fallback = await self.interaction.channel.send(
                    content, allowed_mentions=NO_MENTIONS
                )
        except discord.HTTPException as error:
            # Progress is a courtesy: the rebuild goes on whether or not it can be shown.
            log.warning("could not update the reindex progress message: %s", error)


class ReindexCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.reindexer = bot.services.reindex
        self.edit_every: float = EDIT_EVERY

    @app_commands.command()
    @staff_only("moderator")
    async def reindex(self, interaction: discord.Interaction) -> None:
        """Rebuild the search index from every stored article (moderators only)."""
        run = self.reindexer.start()
        await interaction.response.send_message(
            reindex_content(text.reindex_progress_text(run.progress())),
            allowed_mentions=NO_MENTIONS,
        )
        message = ProgressMessage(interaction)
        try:
            report = await watch(run, message.progress, self.edit_every)
        except Exception:
            await message.show("Reindex failed; answers still come from the previous index.")
            raise
        await message.show(text.reindex_done_text(report))


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(ReindexCog(bot))
