"""``python -m bot``: start the Discord bot (the same as ``newsbot run``).

Resources are opened once, by the caller, and handed in, as in discord.py's
``examples/advanced_startup.py``: the database engine, model, index and fetcher by the command
line (``bot/resources.py``), the Discord client here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import aiohttp
import discord

from bot.app import create_bot
from bot.resources import Resources
from ingest.errors import InputError, first_line

log = logging.getLogger(__name__)


async def start_bot(resources: Resources) -> None:
    """Connect and serve until the connection is closed (or the task cancelled)."""
    token = resources.settings.discord_token
    if token is None:
        raise InputError("DISCORD_TOKEN is not set (see README: Running the Discord bot)")
    if not resources.settings.queued:
        async with create_bot(resources) as bot:
            await bot.start(token.get_secret_value())
        return
    from bot.jobs.queue import open_queue
    from bot.services import Services

    async with (
        open_queue(resources.settings, resources.engine) as queue,
        create_bot(resources, Services.queued(resources, queue)) as bot,
    ):
        await bot.start(token.get_secret_value())


def run_bot(runner: asyncio.Runner, resources: Resources) -> None:
    """Block running the bot on ``runner``, the loop ``resources`` were opened on; Ctrl+C stops
    it cleanly. Setup mistakes raise :class:`InputError`."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            runner.run(start_bot(resources))
    except discord.LoginFailure:
        raise InputError(
            "Discord rejected DISCORD_TOKEN: copy the bot token again from the developer "
            "portal (Bot → Reset Token)"
        ) from None
    except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as error:
        # Raised at login only: once connected, discord.py reconnects by itself.
        raise InputError(
            f"Discord could not be reached ({first_line(error)}), so DISCORD_TOKEN could not be "
            "checked: is this machine online?"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise InputError(
            "NEWSBOT_MESSAGE_CONTENT_INTENT is on, but the Message Content intent is not "
            "enabled for this bot in the developer portal (Bot → Privileged Gateway Intents)"
        ) from None
    log.info("bot stopped")


def main() -> None:
    from bot.cli import app

    app(["run", *sys.argv[1:]], prog_name="python -m bot")


if __name__ == "__main__":
    main()
