"""A small fictional news corpus in two servers (plus global sources), and the bot running it."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.app import NewsBot
from bot.resources import Resources
from bot.services import Services
from bot.settings import Settings, get_settings
from index.embedder import Embedder
from index.search import Retriever
from ingest.extract import RawArticle
from ingest.fetch import SafeFetcher
from ingest.models import GLOBAL_GUILD
from ingest.pipeline import store_raw_articles
from tests.fakes.discord_server import (
    CHANNEL_ID,
    GUILD_ID,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    RecordedRequest,
    run_client,
)

GUILD_A = GUILD_ID
GUILD_B = 1100000000000000500
CHANNEL_A = CHANNEL_ID
CHANNEL_B = 1100000000000000600
THREAD_A = 1100000000000000210  # a public thread in server A's channel
MODERATOR_ROLE = 1100000000000000120
ADMIN_ROLE = 1100000000000000130
BOB = 1100000000000000302  # a member of server B
TOKEN = "fake-token-do-not-log-Zq81"
# Every application command the bot syncs: slash commands and the message context menu.
COMMANDS = {"ask", "reindex", "source", "about", "follow", "Check the news"}


def article(key: str, title: str, body: str, outlet: str, day: int) -> RawArticle:
    return RawArticle(
        title=title,
        body=body,
        key=key,
        url=f"https://news.example/{key}",
        outlet=outlet,
        published_at=datetime(2024, 5, day, 9, tzinfo=UTC),
    )


COURIER = "Brindle Bay Courier"
SERVER_A_NEWS = [
    article(
        "lanterns",
        "Lantern festival moves to the harbour",
        "The Brindle Bay lantern festival will move to the old harbour this year, organisers "
        "said on Monday. The parade of 400 paper lanterns starts at the fish market at 8 pm on "
        "14 June. Councillor Mira Okafor said the harbour wall had been repaired in time.",
        COURIER,
        6,
    ),
    article(
        "ferry",
        "Gull Island ferry fares to rise",
        "Ferry fares between Brindle Bay and Gull Island will rise by 12 percent from July, "
        "the operator announced. A return ticket for adults will cost 9.40 pounds. @everyone "
        "who commutes daily can apply for a season pass, and the <@&123456789012345678> desk "
        "at the terminal answers questions.",
        COURIER,
        7,
    ),
    article(
        "school",
        "Brindle Bay primary school roof repaired",
        "Builders finished repairing the roof of Brindle Bay primary school after the winter "
        "storms. Pupils return to the upstairs classrooms on Monday.",
        COURIER,
        8,
    ),
    article(
        "birds",
        "Record puffin count on Gull Island",
        "Volunteers counted 2,140 puffins on Gull Island this spring, the highest number since "
        "counts began. The colony nests on the western cliffs.",
        COURIER,
        9,
    ),
    article(
        "market",
        "Fish market opens on Sundays",
        "The Brindle Bay fish market will open on Sundays from June, the harbour trust said. "
        "Stalls sell crab, mackerel and smoked haddock from 7 am.",
        COURIER,
        10,
    ),
]
SERVER_B_NEWS = [
    article(
        "tunnel",
        "Quarry Road tunnel closed after rockfall",
        "The Quarry Road tunnel was closed on Tuesday after a rockfall damaged its northern "
        "entrance. Engineers expect the repairs to take six weeks. Buses will divert through "
        "Elmsworth village until the tunnel reopens.",
        "Quarry Valley Post",
        7,
    ),
]
GLOBAL_NEWS = [
    article(
        "library",
        "Marlow County approves library budget",
        "Marlow County council approved a budget of 2.3 million for its libraries on Thursday. "
        "The mobile library van will return to rural villages in September.",
        "Marlow County Herald",
        8,
    ),
]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        # These tests check the bot, not the abstention threshold (the index tests calibrate
        # it): answer whenever anything is found; tests of abstaining raise it instead. Pages
        # of further passages, whatever their relevance, exercise paging on a few articles.
        "min_score": 0.0,
        "related_quotes_only": False,
        "ask_cooldown_seconds": 0,
        "moderator_role_id": MODERATOR_ROLE,
        "admin_role_id": ADMIN_ROLE,
        "DISCORD_TOKEN": TOKEN,
    }
    values.update(overrides)
    return get_settings(_env_file=None, **values)


def index_news(context: Resources) -> None:
    store_raw_articles(context.engine, SERVER_A_NEWS, "courier", GUILD_A)
    store_raw_articles(context.engine, SERVER_B_NEWS, "post", GUILD_B)
    store_raw_articles(context.engine, GLOBAL_NEWS, "herald", GLOBAL_GUILD)
    context.retriever.sync()


MakeContext = Callable[..., Awaitable[Resources]]


@pytest.fixture
async def make_context(
    tmp_path: Path, sqlite_engine: Engine, embedder: Embedder
) -> AsyncIterator[MakeContext]:
    """Resources on a real SQLite database and FAISS index, with the settings given, each with
    a fetcher under those settings (closed after the test), as ``open_resources`` opens them."""
    async with AsyncExitStack() as opened:

        async def make(**overrides: Any) -> Resources:
            settings = make_settings(tmp_path, **overrides)
            retriever = Retriever(sqlite_engine, embedder, settings.index_dir)
            fetcher = await opened.enter_async_context(SafeFetcher(settings.fetch_policy()))
            return Resources(settings, sqlite_engine, fetcher, _retriever=retriever)

        yield make


@pytest.fixture
async def empty_context(tmp_path: Path, sqlite_engine: Engine) -> AsyncIterator[Resources]:
    """Resources with no model (nothing here may load it)."""
    settings = make_settings(tmp_path)
    async with SafeFetcher(settings.fetch_policy()) as fetcher:
        yield Resources(settings=settings, engine=sqlite_engine, fetcher=fetcher)


@pytest.fixture
async def news(make_context: MakeContext) -> Resources:
    """Both servers' news and the global news, stored and indexed."""
    context = await make_context()
    index_news(context)
    return context


@pytest.fixture
def services(news: Resources) -> Services:
    return Services.create(news)


def two_servers() -> list[FakeGuild]:
    server_a = FakeGuild(
        id=GUILD_A,
        name="Brindle Bay",
        channels=[
            FakeChannel(CHANNEL_A),
            FakeChannel(THREAD_A, "questions", 11, parent_id=CHANNEL_A),
        ],
        roles=[FakeRole(MODERATOR_ROLE, "moderators", 0, 2), FakeRole(ADMIN_ROLE, "editors", 0, 3)],
    )
    server_b = FakeGuild(
        id=GUILD_B,
        name="Quarry Valley",
        channels=[FakeChannel(CHANNEL_B)],
        members=[FakeMember(FakeUser(BOB, "bob"))],
    )
    return [server_a, server_b]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(guilds=two_servers(), token=TOKEN) as fake:
        yield fake
        assert not fake.errors, fake.errors
        assert not fake.unknown_requests, fake.describe_requests()


@pytest.fixture
async def newsbot(fake: FakeDiscord, news: Resources) -> AsyncIterator[NewsBot]:
    """The real bot, connected to the fake Discord and answering from ``news``."""
    bot = NewsBot(news, background=False)
    async with run_client(bot, fake, token=TOKEN):
        await fake.wait_for_request("PUT", f"/applications/{fake.application_id}/commands")
        yield bot


@pytest.fixture
async def quiet_bot(fake: FakeDiscord, empty_context: Resources) -> AsyncIterator[NewsBot]:
    """The bot on an empty database, for commands that never need the model."""
    bot = NewsBot(empty_context, background=False)
    async with run_client(bot, fake, token=TOKEN):
        yield bot


EPHEMERAL = 1 << 6


async def command(
    fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    """Run a command; return the JSON of what the member finally sees (privately, if deferred)."""
    interaction = await fake.send_interaction(name, options, **kw)
    callback = await fake.wait_for_callback(interaction)
    if callback.json["type"] == 4:
        return dict(callback.json["data"])
    assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    return dict((await fake.wait_for_followup(interaction)).json)


def replying_to(message: dict[str, Any]) -> Callable[[RecordedRequest], bool]:
    """Matches the bot's reply to ``message``."""

    def match(request: RecordedRequest) -> bool:
        if request.method != "POST" or not isinstance(request.json, dict):
            return False
        reference = request.json.get("message_reference") or {}
        return str(reference.get("message_id")) == message["id"]

    return match


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as systemd stops newsbot; SIGKILL if it is still running 30 s later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
