"""/source through the real client: admins only, and each server manages its own sources."""

from __future__ import annotations

import pytest

from bot.app import NewsBot
from bot.resources import Resources
from ingest.db import session_scope
from ingest.sources import add_source, list_sources
from tests.bot.conftest import (
    ADMIN_ROLE,
    BOB,
    CHANNEL_B,
    EPHEMERAL,
    GUILD_A,
    GUILD_B,
    MODERATOR_ROLE,
    command,
)
from tests.fakes.discord_server import MANAGE_GUILD, FakeDiscord
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

pytestmark = [pytest.mark.timeout(60)]


def stored(context: Resources, guild_id: int) -> list[str]:
    with session_scope(context.engine) as session:
        return [s.location for s in list_sources(session, guild_id) if s.guild_id == guild_id]


async def test_members_without_permission_cannot_add_sources(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources
) -> None:
    """/source add by a member without Manage Server or the admin role is refused privately."""
    shown = await command(
        fake,
        "source add",
        {"url": "https://feeds.example/rss"},
        permissions="0",
        roles=[MODERATOR_ROLE],
    )
    assert shown["flags"] == EPHEMERAL
    assert shown["content"] == (
        "Only members with the Manage Server permission or the server's admin role "
        "can use this command."
    )
    assert stored(empty_context, GUILD_A) == []


async def test_admins_add_sources_to_their_own_server(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources
) -> None:
    """An admin's source is stored for their server only, and the reply is private."""
    shown = await command(
        fake,
        "source add",
        {"url": "https://feeds.example/rss", "name": "Harbour feed"},
        roles=[ADMIN_ROLE],
    )
    assert shown["content"].startswith("Added source #1 Harbour feed (https://feeds.example/rss).")
    assert shown["allowed_mentions"] == {"parse": []}
    assert stored(empty_context, GUILD_A) == ["https://feeds.example/rss"]
    assert stored(empty_context, GUILD_B) == []


async def test_bad_urls_are_explained(fake: FakeDiscord, quiet_bot: NewsBot) -> None:
    """A path or a non-web URL is refused with the reason, privately."""
    shown = await command(fake, "source add", {"url": "/etc/passwd"}, permissions=MANAGE_GUILD)
    assert shown["flags"] == EPHEMERAL
    assert shown["content"].startswith("only http and https sources are allowed")


async def test_lists_and_removal_are_per_server(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources
) -> None:
    """Each server lists and removes only its own sources; autocomplete offers only those."""
    await command(fake, "source add", {"url": "https://a.example/feed"}, roles=[ADMIN_ROLE])
    server_b = {"guild_id": GUILD_B, "channel_id": CHANNEL_B, "user_id": BOB}
    await command(
        fake,
        "source add",
        {"url": "https://b.example/feed"},
        permissions=MANAGE_GUILD,
        **server_b,
    )

    listing = await command(fake, "source list", roles=[ADMIN_ROLE])
    assert "a.example" in listing["embeds"][0]["description"]
    assert "b.example" not in listing["embeds"][0]["description"]

    typing = await fake.send_autocomplete("source remove", "source", "", roles=[ADMIN_ROLE])
    choices = (await fake.wait_for_callback(typing)).json["data"]["choices"]
    assert choices == [{"name": "#1 a.example — https://a.example/feed", "value": 1}]
    outsider = await fake.send_autocomplete("source remove", "source", "", permissions="0")
    assert (await fake.wait_for_callback(outsider)).json["data"]["choices"] == []

    refused = await command(fake, "source remove", {"source": 2}, roles=[ADMIN_ROLE])
    assert refused["content"] == "no source with id 2 on this server"
    removed = await command(fake, "source remove", {"source": 1}, roles=[ADMIN_ROLE])
    assert removed["content"].startswith("Removed a.example with its 0 articles")
    assert stored(empty_context, GUILD_A) == []
    assert stored(empty_context, GUILD_B) == ["https://b.example/feed"]


async def test_internal_addresses_are_refused_when_added(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources
) -> None:
    """/source add of a loopback or local URL is refused at once, with the reason."""
    for url, reason in [
        ("http://127.0.0.1/feed", "refused: a loopback address (127.0.0.1)"),
        ("http://localhost:8080/rss", "refused: localhost resolves to a loopback address"),
    ]:
        shown = await command(fake, "source add", {"url": url}, roles=[ADMIN_ROLE])
        assert shown["content"].startswith(reason)
        assert shown["content"].endswith("; newsbot fetches only public addresses")
    shown = await command(fake, "source add", {"url": "not-a-url"}, roles=[ADMIN_ROLE])
    assert shown["content"].startswith("only http and https sources are allowed, and 'not-a-url'")
    assert stored(empty_context, GUILD_A) == []


async def test_refresh_reports_each_source(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources, web_server: LocalServer
) -> None:
    """/source refresh reports each source; internal addresses are refused, not fetched."""
    # This bot's settings allow no local host, so the local test server counts as internal.
    # Stored directly: a host that was public when added may resolve elsewhere by now.
    url = web_server.url("/site/courier/feed.xml")
    with session_scope(empty_context.engine) as session:
        add_source(session, url, "Courier", GUILD_A)
    shown = await command(fake, "source refresh", roles=[ADMIN_ROLE])
    assert shown["content"] == (
        f"Courier (#1, web): error: {url}: refused: resolves to a loopback address (127.0.0.1)"
    )


async def test_markdown_in_a_source_name_cannot_format_the_reply(
    fake: FakeDiscord, quiet_bot: NewsBot, empty_context: Resources
) -> None:
    """A name with asterisks or a masked link is shown literally in the "Added" reply."""
    shown = await command(
        fake,
        "source add",
        {"url": "https://feeds.example/rss", "name": "*Harbour* [click](https://evil.example)"},
        roles=[ADMIN_ROLE],
    )
    assert shown["content"].startswith(
        "Added source #1 \\*Harbour\\* \\[click\\](https://evil.example) (https://feeds.example/rss)."
    )
