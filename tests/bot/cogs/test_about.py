"""/about through the real client: what this server's answers come from."""

from __future__ import annotations

import pytest

from bot.app import NewsBot
from tests.bot.conftest import ADMIN_ROLE, BOB, CHANNEL_B, GUILD_B, command
from tests.fakes.discord_server import FakeDiscord

pytestmark = [pytest.mark.timeout(60)]


async def test_about_counts_what_this_server_sees(fake: FakeDiscord, quiet_bot: NewsBot) -> None:
    """/about shows the server's counts and how to ask, privately."""
    await command(fake, "source add", {"url": "https://a.example/feed"}, roles=[ADMIN_ROLE])
    shown = await command(fake, "about", guild_id=GUILD_B, channel_id=CHANNEL_B, user_id=BOB)
    embed = shown["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Sources"] == "0"  # server A's source is not server B's
    assert fields["Index built"] == "not built yet"
    assert "/ask" in embed["description"]
