"""/source add|list|remove|refresh: the news sources of this server (admins only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits, render
from bot.checks import is_staff, staff_only
from bot.respond import follow_up, think

if TYPE_CHECKING:
    from bot.app import NewsBot


@staff_only("admin")
class SourcesCog(
    commands.GroupCog,
    group_name="source",
    group_description="Manage the news sources this server's answers quote (admins only)",
):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.sources = bot.services.sources
        super().__init__()

    @app_commands.command()
    @app_commands.describe(
        url="The http(s) address of a news feed or article page",
        name="A short name for it (default: the site's address)",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        url: app_commands.Range[str, 1, 2000],
        name: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        """Add a news feed or page; only this server's answers will quote it."""
        await think(interaction, private=True)
        source = await self.sources.add(url, name, interaction.guild_id)
        await follow_up(interaction, content=render.added_content(source))

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """List the sources this server's answers come from, with their health."""
        await think(interaction, private=True)
        sources = await self.sources.visible(interaction.guild_id)
        guild_name = interaction.guild.name if interaction.guild else None
        await follow_up(interaction, embed=render.sources_embed(sources, guild_name))

    @app_commands.command()
    @app_commands.describe(source="The source to remove, with all its articles")
    async def remove(self, interaction: discord.Interaction, source: int) -> None:
        """Remove one of this server's sources and everything it brought."""
        await think(interaction, private=True)
        removed = await self.sources.remove(source, interaction.guild_id)
        await follow_up(interaction, content=render.removed_content(removed))

    @remove.autocomplete("source")
    async def remove_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        # Autocomplete skips the cog's check, so it repeats it: nothing for non-admins.
        if interaction.guild_id is None or not is_staff(interaction, "admin"):
            return []
        own = await self.sources.own(interaction.guild_id, current, limits.CHOICES)
        return [app_commands.Choice(name=render.choice_name(s), value=s.id) for s in own]

    @app_commands.command()
    async def refresh(self, interaction: discord.Interaction) -> None:
        """Fetch this server's web sources now instead of at the next scheduled refresh."""
        await think(interaction, private=True)
        summary = await self.sources.refresh(interaction.guild_id)
        await follow_up(interaction, content=render.refreshed_content(summary))


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(SourcesCog(bot))
