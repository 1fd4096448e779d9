"""Several bot processes splitting the servers by shard, against one fake Discord.

Most tests run two bots in the test process, each its own discord.py client with its own
gateway and HTTP sessions, as two ``newsbot run`` processes would have (the data directory and
database are shared, as on one box); the last one runs two real ``newsbot run`` processes. The
fake routes each event to one shard's session, and each bot's HTTP requests are labelled with
its shard, so the tests can say who replied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.ext import commands

from bot.__main__ import start_bot
from bot.app import NewsBot, create_bot
from bot.resources import Resources
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.sources import add_source
from tests.bot.conftest import (
    CHANNEL_A,
    COMMANDS,
    GUILD_A,
    GUILD_B,
    TOKEN,
    MakeContext,
    command,
    make_settings,
    replying_to,
    stop_process,
    two_servers,
)
from tests.bot.test_app import until_indexed
from tests.fakes.discord_server import (
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    RecordedRequest,
    label_client,
    run_client,
    shard_for,
)
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

pytestmark = [pytest.mark.timeout(90)]

# Servers A and B are on shard 1 of 2; C, on shard 0, reads only the global news.
GUILD_C = GUILD_A + (1 << 22)
CHANNEL_C = CHANNEL_A + (1 << 22)
SHARDS = 2


def test_the_servers_sit_on_both_shards() -> None:
    """The world below really spans two shards (else the routing tests prove nothing)."""
    assert shard_for(GUILD_A, SHARDS) == shard_for(GUILD_B, SHARDS) == 1
    assert shard_for(GUILD_C, SHARDS) == 0


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """Servers A and B (shard 1) and C (shard 0)."""
    server_c = FakeGuild(id=GUILD_C, name="Marlow", channels=[FakeChannel(CHANNEL_C)])
    async with FakeDiscord(guilds=[*two_servers(), server_c], token=TOKEN) as fake:
        yield fake
        assert not fake.errors, fake.errors
        assert not fake.unknown_requests, fake.describe_requests()


def process_of(request: RecordedRequest) -> int:
    """The shard of the bot process that made ``request``."""
    assert request.client is not None, request
    return int(request.client.removeprefix("shard-"))


@contextlib.asynccontextmanager
async def shard_processes(
    fake: FakeDiscord, make_context: MakeContext, *, background: bool = False, **settings: Any
) -> AsyncIterator[dict[int, NewsBot]]:
    """One bot per shard (shard 1 first), each with NEWSBOT_SHARD_COUNT=2 and its shard id."""
    async with contextlib.AsyncExitStack() as stack:
        bots: dict[int, NewsBot] = {}
        for shard in (1, 0):
            context = await make_context(shard_count=SHARDS, shard_ids=str(shard), **settings)
            bot = create_bot(context, background=background)
            label_client(bot, f"shard-{shard}")
            await stack.enter_async_context(run_client(bot, fake, token=TOKEN))
            bots[shard] = bot
        yield bots


async def test_each_mention_is_answered_once_by_the_process_holding_its_server(
    fake: FakeDiscord, news: Resources, make_context: MakeContext
) -> None:
    """A question in a server on each shard: one reply each, from that shard's process."""
    async with shard_processes(fake, make_context) as bots:
        assert {g.id for g in bots[1].guilds} == {GUILD_A, GUILD_B}
        assert {g.id for g in bots[0].guilds} == {GUILD_C}
        in_a = await fake.send_message_create(
            f"{fake.bot_mention} when does the lantern parade start?", guild_id=GUILD_A
        )
        in_c = await fake.send_message_create(
            f"{fake.bot_mention} what budget did Marlow County approve for libraries?",
            guild_id=GUILD_C,
        )
        reply_a = await fake.wait_for(replying_to(in_a), timeout=30)
        reply_c = await fake.wait_for(replying_to(in_c), timeout=30)
        # A later question in each server, answered too: by then a second reply to the
        # first questions, from a process that should never have seen them, would be in.
        for guild_id in (GUILD_A, GUILD_C):
            marker = await fake.send_message_create(f"{fake.bot_mention} ping", guild_id=guild_id)
            await fake.wait_for(replying_to(marker), timeout=30)

    assert (process_of(reply_a), process_of(reply_c)) == (1, 0)
    assert "lantern" in reply_a.json["embeds"][0]["description"]
    assert "2.3 million" in reply_c.json["embeds"][0]["description"]
    assert [r for r in fake.requests if replying_to(in_a)(r)] == [reply_a]
    assert [r for r in fake.requests if replying_to(in_c)(r)] == [reply_c]
    delivered = [
        (m.d["id"], m.shard)
        for m in fake.gateway_sent
        if m.t == "MESSAGE_CREATE" and m.d["id"] in (in_a["id"], in_c["id"])
    ]
    assert delivered == [(in_a["id"], [1, 2]), (in_c["id"], [0, 2])]  # each to one session


async def test_slash_commands_are_synced_once_and_answered_by_the_servers_shard(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """Only the shard 0 process syncs the commands; each command runs where its server is."""
    async with shard_processes(fake, make_context) as bots:
        syncs = [r for r in fake.requests if r.matches("PUT", r"/applications/\d+/commands")]
        assert [process_of(r) for r in syncs] == [0]
        assert set(fake.commands()) == COMMANDS
        for guild_id, dm, holder in ((GUILD_A, False, 1), (GUILD_C, False, 0), (None, True, 0)):
            interaction = await fake.send_interaction("about", guild_id=guild_id, dm=dm)
            callback = await fake.wait_for_callback(interaction)
            shown = await fake.wait_for_followup(interaction)  # /about defers, then answers
            assert (process_of(callback), process_of(shown)) == (holder, holder)
            assert shown.json["embeds"][0]["title"] == "About newsbot"
        assert all(isinstance(bot, commands.AutoShardedBot) for bot in bots.values())
        assert fake.shard_sessions == {0: [0, 2], 1: [1, 2]}


async def test_without_a_shard_count_the_bot_is_one_unsharded_process(
    fake: FakeDiscord, empty_context: Resources
) -> None:
    """The default stays commands.Bot: no shard in IDENTIFY, every server, commands synced."""
    bot = create_bot(empty_context, background=False)
    assert type(bot) is NewsBot
    assert not isinstance(bot, discord.AutoShardedClient)
    async with run_client(bot, fake, token=TOKEN):
        assert fake.identify is not None
        assert "shard" not in fake.identify
        assert {g.id for g in bot.guilds} == {GUILD_A, GUILD_B, GUILD_C}
        assert set(fake.commands()) == COMMANDS
        shown = await command(fake, "about", guild_id=GUILD_C)
        assert shown["embeds"][0]["title"] == "About newsbot"


@pytest.mark.slow
async def test_start_bot_connects_only_the_configured_shards(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """``newsbot run`` with NEWSBOT_SHARD_IDS=1 identifies as shard 1 of 2 and syncs nothing."""
    task = asyncio.create_task(start_bot(await make_context(shard_count=2, shard_ids="1")))
    try:
        await fake.wait_until_ready(timeout=20)
        assert fake.shard_sessions == {1: [1, 2]}
        assert fake.identify is not None
        assert fake.identify["shard"] == [1, 2]
        # Commands are synced in setup_hook, before the gateway connects: none came.
        assert not [r for r in fake.requests if r.matches("PUT", r"/applications/\d+/commands")]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.slow
async def test_only_the_process_holding_shard_zero_refreshes_sources(
    fake: FakeDiscord,
    make_context: MakeContext,
    web_server: LocalServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With two processes on one box, a due feed is fetched once, by shard 0's process."""
    feed = "/site/courier/feed.xml"
    context = await make_context(fetch_allow_hosts=web_server.host_port)
    with session_scope(context.engine) as session:
        add_source(session, web_server.url(feed), "Courier", GUILD_A)
    with caplog.at_level(logging.INFO, logger="bot.app"):
        async with shard_processes(
            fake, make_context, background=True, fetch_allow_hosts=web_server.host_port
        ) as bots:
            await until_indexed(bots[0].resources, seconds=30)
            interaction = await fake.send_interaction(
                "ask", {"question": "Will Saltmere restore its tidal mill?"}, guild_id=GUILD_A
            )
            answer = await fake.wait_for_followup(interaction, timeout=30)
    assert process_of(answer) == 1  # server A's process answers from what shard 0 fetched
    assert web_server.url("/site/courier/") in answer.json["embeds"][0]["description"]
    assert len(web_server.requests_to(feed)) == 1
    assert "sources are refreshed by the process holding shard 0, not this one" in caplog.messages


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        (None, None, None),
        ("2", None, None),
        ("2", "1", [1]),
        ("4", " 3, 0 ", [0, 3]),
        ("2", "", None),
    ],
)
def test_shard_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    count: str | None,
    ids: str | None,
    expected: Any,
) -> None:
    """NEWSBOT_SHARD_IDS is a comma-separated list; empty means not set."""
    for name, value in (("NEWSBOT_SHARD_COUNT", count), ("NEWSBOT_SHARD_IDS", ids)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    settings = make_settings(tmp_path)
    assert settings.shard_count == (int(count) if count else None)
    assert settings.shard_ids == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"shard_ids": "0"}, r"NEWSBOT_SHARD_IDS='0': .*need NEWSBOT_SHARD_COUNT"),
        ({"shard_count": 2, "shard_ids": "0,2"}, r"NEWSBOT_SHARD_IDS='0,2': .*from 0 to 1"),
        ({"shard_count": 2, "shard_ids": "-1"}, r"from 0 to 1"),
        ({"shard_count": 2, "shard_ids": "1,1"}, r"listed twice"),
        ({"shard_count": 2, "shard_ids": "one"}, r"NEWSBOT_SHARD_IDS"),
        ({"shard_count": 0}, r"NEWSBOT_SHARD_COUNT=0"),
    ],
)
def test_bad_shard_settings_are_clear_errors(
    tmp_path: Any, overrides: dict[str, Any], message: str
) -> None:
    """Ids outside 0..count-1, ids without a count, or a zero count name the variable."""
    with pytest.raises(InputError, match=message):
        make_settings(tmp_path, **overrides)


ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def shard_popen(
    fake: FakeDiscord, data_dir: Path, shard: int, log: Path, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``newsbot run`` as shard ``shard`` of 2 in a process of its own, logging to ``log``.

    ``settings`` are more environment variables (``NEWSBOT_JOBS="queue"``, say).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=TOKEN,
        NEWSBOT_DATA_DIR=str(data_dir),
        NEWSBOT_SHARD_COUNT=str(SHARDS),
        NEWSBOT_SHARD_IDS=str(shard),
        NEWSBOT_ASK_COOLDOWN_SECONDS="0",
        FAKE_DISCORD_URL=fake.base_url,
        FAKE_DISCORD_CLIENT=f"shard-{shard}",
        **settings,
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bot.run_against_fake"],
            env=env,
            cwd=data_dir.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_process(process)


@contextlib.contextmanager
def bot_process(fake: FakeDiscord, data_dir: Path, shard: int, **settings: str) -> Iterator[Path]:
    """:func:`shard_popen`, logging next to ``data_dir``; yields its log file."""
    log = data_dir.parent / f"shard-{shard}.log"
    with shard_popen(fake, data_dir, shard, log, **settings):
        yield log


async def identified(fake: FakeDiscord, shard: int, log: Path, seconds: float = 300) -> None:
    """Until the process writing ``log`` has identified as ``shard`` (it loads the model first)."""
    for _ in range(int(seconds)):
        if shard in fake.shard_sessions:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"shard {shard} never identified; its log:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_two_bot_processes_split_the_servers_between_them(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """``newsbot run`` twice, as shards 0 and 1: each mention is answered once, by its shard."""
    data = tmp_path / "data"
    # Shard 0 first: the first start fills the empty database with the sample articles.
    with bot_process(fake, data, 0) as log_0:
        await identified(fake, 0, log_0)
        with bot_process(fake, data, 1) as log_1:
            await identified(fake, 1, log_1)
            question = "how many beds does the Alder Wing add?"
            in_a = await fake.send_message_create(
                f"{fake.bot_mention} {question}", guild_id=GUILD_A
            )
            in_c = await fake.send_message_create(
                f"{fake.bot_mention} {question}", guild_id=GUILD_C
            )
            reply_a = await fake.wait_for(replying_to(in_a), timeout=240)
            reply_c = await fake.wait_for(replying_to(in_c), timeout=240)
            for guild_id in (GUILD_A, GUILD_C):
                marker = await fake.send_message_create(
                    f"{fake.bot_mention} ping", guild_id=guild_id
                )
                await fake.wait_for(replying_to(marker), timeout=60)

    assert (process_of(reply_a), process_of(reply_c)) == (1, 0)
    for reply in (reply_a, reply_c):
        assert "120" in reply.json["embeds"][0]["description"]
    assert [r for r in fake.requests if replying_to(in_a)(r)] == [reply_a]
    assert [r for r in fake.requests if replying_to(in_c)(r)] == [reply_c]
    syncs = [r for r in fake.requests if r.matches("PUT", r"/applications/\d+/commands")]
    assert [process_of(r) for r in syncs] == [0]
    assert "sources are refreshed by the process holding shard 0" in log_1.read_text()
