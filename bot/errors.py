"""The one place where a failed command turns into a log line and a short private reply."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.render import NO_MENTIONS
from bot.respond import send_private
from ingest.errors import NewsbotError

log = logging.getLogger(__name__)

UNEXPECTED = "Sorry, something went wrong on my side. It has been logged."


def user_message(error: BaseException) -> str | None:
    """What to tell the member, or None for a bug (which is logged with its traceback)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    elif isinstance(error, app_commands.TransformerError) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, NewsbotError):
        return str(error)
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    return None


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Log the failure and tell the member briefly, only them (ephemeral)."""
    message = user_message(error)
    command = interaction.command.qualified_name if interaction.command else "component"
    if message is None:
        log.error(
            "command %s failed (guild %s, user %s)",
            command,
            interaction.guild_id,
            interaction.user.id,
            exc_info=error,
        )
        message = UNEXPECTED
    else:
        log.info("command %s refused: %s", command, message)
    try:
        await send_private(interaction, message)
    except discord.HTTPException:
        log.warning("could not tell the member about the failure of %s", command, exc_info=True)


async def report_message_error(message: discord.Message, error: BaseException) -> None:
    """The same for a question asked by mention: log it and reply briefly."""
    text = user_message(error)
    if text is None:
        log.error(
            "answering a mention failed (guild %s, user %s)",
            message.guild.id if message.guild else None,
            message.author.id,
            exc_info=error,
        )
        text = UNEXPECTED
    try:
        await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        log.warning("could not reply to a mention", exc_info=True)
