"""Answering an interaction: acknowledge fast, reply later, refuse privately."""

from __future__ import annotations

from typing import Any

import discord

from bot import limits
from bot.render import NO_MENTIONS

THINKING = "newsbot_thinking"
"""``interaction.extras`` key: the response is a "thinking…" placeholder not yet resolved."""


async def think(interaction: discord.Interaction, *, private: bool = False) -> None:
    """Acknowledge now (Discord fails interactions not answered within 3 s); answer later.

    A private placeholder makes the answer private too.
    """
    await interaction.response.defer(thinking=True, ephemeral=private)
    if not private:
        interaction.extras[THINKING] = True


async def follow_up(
    interaction: discord.Interaction, view: discord.ui.View | None = None, **message: Any
) -> discord.WebhookMessage:
    """The answer after :func:`think` (it replaces the "thinking…" placeholder)."""
    if view is not None:  # discord.py wants the argument left out, not None
        message["view"] = view
    if isinstance(message.get("content"), str):
        message["content"] = limits.truncate(message["content"], limits.CONTENT)
    sent = await interaction.followup.send(**message, allowed_mentions=NO_MENTIONS, wait=True)
    interaction.extras.pop(THINKING, None)
    return sent


async def send_private(interaction: discord.Interaction, message: str) -> None:
    """A short reply only the member sees, however far the interaction has got."""
    message = limits.truncate(message, limits.CONTENT)
    if not interaction.response.is_done():
        await interaction.response.send_message(
            message, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        return
    if interaction.extras.pop(THINKING, False):
        # The first followup would replace the public "thinking…" placeholder and so be
        # public too: remove the placeholder first.
        await interaction.delete_original_response()
    await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_MENTIONS)
