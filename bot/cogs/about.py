"""/about: what this server's answers come from, and how to use the bot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.render import about_embed
from bot.respond import follow_up, think
from bot.services import guild_scope

if TYPE_CHECKING:
    from bot.app import NewsBot


class AboutCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.abouts = bot.services.about

    @app_commands.command()
    async def about(self, interaction: discord.Interaction) -> None:
        """What news is indexed here (sources, articles, last refresh) and how to ask."""
        await think(interaction, private=True)
        about = await self.abouts.about(guild_scope(interaction.guild_id))
        await follow_up(interaction, embed=about_embed(about))


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AboutCog(bot))
