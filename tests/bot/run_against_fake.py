"""``newsbot run`` in a process of its own, talking to a fake Discord instead of discord.com.

For tests with real bot processes. discord.py has no setting for Discord's address, so this
points it at ``FAKE_DISCORD_URL`` (what ``FakeDiscord.patch()`` does in-process), labels the
bot's requests with ``FAKE_DISCORD_CLIENT`` (``label_client``), then runs the real CLI.
"""

from __future__ import annotations

import os

import discord.gateway
import discord.http
import yarl

import bot.__main__
from bot.app import NewsBot, create_bot
from bot.cli import app
from bot.resources import Resources
from bot.services import Services
from tests.fakes.discord_server import label_client


def labelled_bot(
    resources: Resources, services: Services | None = None, *, background: bool = True
) -> NewsBot:
    client = create_bot(resources, services, background=background)
    label_client(client, os.environ["FAKE_DISCORD_CLIENT"])
    return client


def main() -> None:
    base = os.environ["FAKE_DISCORD_URL"]
    discord.http.Route.BASE = f"{base}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"{base.replace('http', 'ws', 1)}/")
    bot.__main__.create_bot = labelled_bot
    app(["run", "--quiet"], prog_name="newsbot")


if __name__ == "__main__":
    main()
