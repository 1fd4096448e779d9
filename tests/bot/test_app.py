"""The bot as a whole: its commands as Discord sees them, its intents, its startup, its secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import discord
import discord.http
import pytest

from bot.__main__ import run_bot, start_bot
from bot.app import INVITE_PERMISSIONS, NewsBot, intents_for, invite_url
from bot.resources import Resources
from bot.services.sources import RefreshReport
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.pipeline import store_raw_articles
from ingest.sources import add_source
from tests.bot.conftest import (
    COMMANDS,
    GUILD_A,
    SERVER_A_NEWS,
    TOKEN,
    MakeContext,
    command,
    make_settings,
)
from tests.fakes.discord_server import (
    INTENT_MESSAGE_CONTENT,
    MANAGE_GUILD,
    PRIVILEGED_INTENTS,
    FakeDiscord,
    run_client,
)
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

pytestmark = [pytest.mark.timeout(60)]


def walk(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for option in options:
        found.append(option)
        found.extend(walk(option.get("options") or []))
    return found


async def test_commands_are_described_within_discords_limits(
    fake: FakeDiscord, quiet_bot: NewsBot
) -> None:
    """Every slash command and parameter has a description of at most 100 characters."""
    synced = fake.commands()
    assert synced.pop("Check the news")["type"] == 3  # a message command has no description
    assert set(synced) == {"ask", "reindex", "source", "about", "follow"}
    assert {o["name"] for o in synced["source"]["options"]} == {"add", "list", "remove", "refresh"}
    for command_data in synced.values():
        for item in [command_data, *walk(command_data.get("options") or [])]:
            assert 1 <= len(item["description"]) <= 100, item["name"]


async def test_staff_commands_carry_the_permission_hint(
    fake: FakeDiscord, quiet_bot: NewsBot
) -> None:
    """/reindex and /source are hidden from members without Manage Server and from DMs."""
    synced = fake.commands()
    for name in ("reindex", "source"):
        assert synced[name]["default_member_permissions"] == str(MANAGE_GUILD)
        assert synced[name]["contexts"] == [0]  # servers only
    for name in ("ask", "about"):
        assert synced[name]["default_member_permissions"] is None


async def test_no_privileged_intent_unless_configured(
    fake: FakeDiscord, empty_context: Resources, tmp_path: Any
) -> None:
    """By default the bot asks for no privileged intent; the follow-up option adds one."""
    async with run_client(NewsBot(empty_context, background=False), fake, token=TOKEN):
        assert fake.intents is not None
        assert not fake.intents & PRIVILEGED_INTENTS
    follow_ups = make_settings(tmp_path, message_content_intent=True)
    assert intents_for(follow_ups).value & INTENT_MESSAGE_CONTENT


async def test_commands_sync_to_the_test_server_when_set(
    fake: FakeDiscord, empty_context: Resources, tmp_path: Any
) -> None:
    """With a test server configured, commands go there (instantly) and not globally."""
    settings = make_settings(tmp_path, discord_test_guild=GUILD_A)
    context = Resources(settings, empty_context.engine, empty_context.fetcher)
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        assert set(fake.commands(GUILD_A)) == COMMANDS
        assert fake.commands() == {}
        shown = await command(fake, "about")
        assert shown["embeds"][0]["title"] == "About newsbot"


async def test_the_token_is_never_logged(
    fake: FakeDiscord, empty_context: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing logged while starting, answering and stopping contains the token."""
    with caplog.at_level(logging.DEBUG):
        async with run_client(NewsBot(empty_context, background=False), fake, token=TOKEN):
            await command(fake, "about")
            await command(fake, "reindex", permissions="0")
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in repr(empty_context.settings)


@pytest.mark.slow
async def test_start_bot_connects_with_the_configured_token(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """``python -m bot``'s coroutine logs in with DISCORD_TOKEN and serves until closed."""
    task = asyncio.create_task(start_bot(await make_context()))
    await fake.wait_until_ready(timeout=10)
    assert fake.identify is not None
    assert fake.identify["token"] == TOKEN
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def run_bot_on_a_loop_of_its_own(resources: Resources) -> None:
    """``run_bot`` as the command line calls it, in a thread: on a loop it runs alone."""
    with asyncio.Runner() as runner:
        run_bot(runner, resources)


async def test_a_wrong_token_is_a_clear_error(fake: FakeDiscord, tmp_path: Any) -> None:
    """A token Discord rejects ends run_bot with a message saying what to do."""
    settings = make_settings(tmp_path, DISCORD_TOKEN="not-the-token")
    context = Resources(settings, engine=None, fetcher=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Discord rejected DISCORD_TOKEN"):
        await asyncio.to_thread(run_bot_on_a_loop_of_its_own, context)


async def test_discord_out_of_reach_is_a_clear_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, run_bot says Discord could not be reached (not an aiohttp traceback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    settings = make_settings(tmp_path, DISCORD_TOKEN="a-token-never-checked")
    context = Resources(settings, engine=None, fetcher=None)  # type: ignore[arg-type]
    with pytest.raises(InputError) as refused:
        await asyncio.to_thread(run_bot_on_a_loop_of_its_own, context)
    message = str(refused.value)
    assert message.startswith("Discord could not be reached (Cannot connect to host 127.0.0.1:")
    assert message.endswith("so DISCORD_TOKEN could not be checked: is this machine online?")
    assert "\n" not in message


async def test_a_model_that_cannot_load_is_logged_in_one_line(
    empty_context: Resources,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    """At start-up an unloadable NEWSBOT_MODEL is one ERROR line naming it, no traceback."""
    import huggingface_hub.constants

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(empty_context.settings, "model", "does-not-exist/model")
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        await NewsBot(empty_context, background=False).warm_up()
    [record] = [r for r in caplog.records if r.name == "bot.app"]
    assert record.getMessage().startswith(
        "could not load the model or index: cannot load embedding model 'does-not-exist/model'"
    )
    assert record.exc_info is None


@pytest.mark.slow
async def test_a_damaged_index_is_told_to_the_member(
    fake: FakeDiscord, news: Resources, make_context: MakeContext
) -> None:
    """/ask on an index that cannot be read says so and what rebuilds it, not "not found"."""
    index = news.settings.index_dir
    for vectors in index.glob("seg-*/vectors.faiss"):
        vectors.write_bytes(b"not a faiss index")
    context = await make_context()  # a bot started afterwards reads the damaged files
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        asked = await fake.send_interaction(
            "ask", {"question": "When does the lantern parade start?"}
        )
        shown = (await fake.wait_for_followup(asked, timeout=20)).json
    assert shown["content"].startswith("The index could not be loaded (")
    assert shown["content"].endswith("rebuild it with `newsbot reindex` (or /reindex).")


async def test_a_missing_token_is_a_clear_error(tmp_path: Any) -> None:
    """Without DISCORD_TOKEN the bot does not try to connect."""
    settings = make_settings(tmp_path, DISCORD_TOKEN=None)
    with pytest.raises(InputError, match="DISCORD_TOKEN is not set"):
        await start_bot(Resources(settings, engine=None, fetcher=None))  # type: ignore[arg-type]


async def until_indexed(context: Resources, seconds: float = 10.0) -> None:
    """Wait for the bot's background work to index its first passages."""
    for _ in range(int(seconds / 0.05)):
        if await asyncio.to_thread(context.retriever.searchable_count) > 0:
            return
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_due_sources_are_fetched_on_schedule(
    fake: FakeDiscord, make_context: MakeContext, web_server: LocalServer
) -> None:
    """A feed added before the bot starts is fetched and indexed without anyone asking."""
    context = await make_context(fetch_allow_hosts=web_server.host_port)
    with session_scope(context.engine) as session:
        add_source(session, web_server.url("/site/courier/feed.xml"), "Courier", GUILD_A)
    async with run_client(NewsBot(context), fake, token=TOKEN):
        await until_indexed(context)
        interaction = await fake.send_interaction(
            "ask", {"question": "Will Saltmere restore its tidal mill?"}
        )
        answer = await fake.wait_for_followup(interaction, timeout=20)
    assert web_server.url("/site/courier/") in answer.json["embeds"][0]["description"]


async def test_a_failed_scheduled_refresh_is_logged_and_tried_again(
    empty_context: Resources, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that raises is logged, and the schedule keeps polling afterwards."""
    bot = NewsBot(empty_context, background=False)
    polls: list[int] = []

    async def flaky() -> RefreshReport:
        polls.append(len(polls))
        if len(polls) == 1:
            raise RuntimeError("the feed server is on fire")
        return RefreshReport([], None)

    monkeypatch.setattr(bot.services.sources, "refresh_due", flaky)
    bot.refresh_schedule.change_interval(seconds=0.01)
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        bot.refresh_schedule.start()
        for _ in range(500):
            if len(polls) >= 2:
                break
            await asyncio.sleep(0.01)
        bot.refresh_schedule.cancel()
    assert len(polls) >= 2
    assert "scheduled refresh failed; trying again later" in caplog.messages


def test_invite_link_asks_for_both_scopes_and_few_permissions() -> None:
    """The invite link has the bot and applications.commands scopes and minimal permissions."""
    url = invite_url(1234)
    assert "client_id=1234" in url
    assert "scope=bot+applications.commands" in url
    assert f"permissions={INVITE_PERMISSIONS.value}" in url
    assert not INVITE_PERMISSIONS.administrator
    assert not INVITE_PERMISSIONS.manage_messages
    assert (
        discord.Permissions(
            view_channel=True,
            send_messages=True,
            send_messages_in_threads=True,
            embed_links=True,
            read_message_history=True,
        )
        == INVITE_PERMISSIONS
    )


@pytest.mark.slow
async def test_the_index_catches_up_with_the_database_when_the_bot_starts(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """Articles stored while the bot was down (never indexed) are quoted after a restart."""
    context = await make_context()
    store_raw_articles(context.engine, SERVER_A_NEWS, "courier", GUILD_A)
    async with run_client(NewsBot(context), fake, token=TOKEN):
        await until_indexed(context)
        interaction = await fake.send_interaction(
            "ask", {"question": "When does the lantern parade start?"}, guild_id=GUILD_A
        )
        answer = await fake.wait_for_followup(interaction, timeout=20)
    assert "lantern" in answer.json["embeds"][0]["description"]
