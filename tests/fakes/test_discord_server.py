"""The real discord.py client against the fake Discord in ``discord_server.py``.

The bot here is a minimal stand-in defined in this file, not the product's bot.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import discord.utils
import pytest
from discord import app_commands

from tests.fakes.discord_server import (
    APPLICATION_ID,
    BOT_USER_ID,
    CHANNEL_ID,
    GUILD_ID,
    MANAGE_GUILD,
    OWNER_ID,
    USER_ID,
    CommandNotAvailable,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    label_client,
    run_client,
    shard_for,
)

pytestmark = pytest.mark.timeout(30)

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7


class Observed:
    """What the stand-in bot saw and did."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.messages: list[discord.Message] = []
        self.clicks: list[tuple[int, str]] = []
        self.sent: list[discord.Message] = []
        self.errors: list[Exception] = []
        self.done = asyncio.Event()


class PingView(discord.ui.View):
    def __init__(self, obs: Observed) -> None:
        super().__init__(timeout=60)
        self.obs = obs

    @discord.ui.button(label="Again", custom_id="ping:again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.obs.clicks.append((interaction.user.id, str(button.custom_id)))
        await interaction.response.edit_message(content="clicked", view=None)


class StandInBot(discord.Client):
    def __init__(
        self,
        obs: Observed,
        *,
        intents: discord.Intents | None = None,
        guild_sync: bool = False,
    ) -> None:
        if intents is None:
            intents = discord.Intents.default()
            intents.message_content = True
        super().__init__(intents=intents)
        self.obs = obs
        self.guild_sync = guild_sync
        self.tree = app_commands.CommandTree(self)
        self._register_commands()

    def _register_commands(self) -> None:
        obs, tree = self.obs, self.tree

        @tree.command(name="ping", description="Answer with pong")
        @app_commands.describe(text="What to echo")
        async def ping(interaction: discord.Interaction, text: str) -> None:
            await interaction.response.defer(thinking=True)
            msg = await interaction.followup.send(
                content=f"pong: {text}",
                embed=discord.Embed(title="Pong", description=text),
                allowed_mentions=discord.AllowedMentions.none(),
                view=PingView(obs),
                wait=True,
            )
            obs.sent.append(msg)
            obs.done.set()

        @tree.command(name="admin", description="Managers only")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.checks.has_permissions(manage_guild=True)
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")

        feeds = app_commands.Group(name="feeds", description="Manage feeds")

        @feeds.command(name="add", description="Add a feed")
        async def add(interaction: discord.Interaction, url: str, priority: int = 1) -> None:
            await interaction.response.send_message(f"added {url} at {priority}")

        tree.add_command(feeds)

        async def topics(interaction: discord.Interaction, current: str) -> list[Any]:
            words = ["apple", "apricot", "banana"]
            return [app_commands.Choice(name=w, value=w) for w in words if w.startswith(current)]

        @tree.command(name="search", description="Search the news")
        @app_commands.autocomplete(query=topics)
        async def search(interaction: discord.Interaction, query: str) -> None:
            await interaction.response.send_message(query)

        @tree.command(name="upload", description="Send a file")
        async def upload(interaction: discord.Interaction) -> None:
            file = discord.File(io.BytesIO(b"hello"), filename="report.txt")
            await interaction.response.send_message("here", file=file, ephemeral=True)

        @tree.command(name="long", description="Too long an answer")
        async def long(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            try:
                await interaction.followup.send("x" * 2001)
            except discord.HTTPException as exc:
                obs.errors.append(exc)
                await interaction.followup.send("sorry, that was too long")
            obs.done.set()

        @tree.command(name="slow", description="Defers too late")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.3)
            try:
                await interaction.response.defer()
            except discord.HTTPException as exc:
                obs.errors.append(exc)
            obs.done.set()

        @tree.context_menu(name="Quote it")
        async def quote_it(interaction: discord.Interaction, message: discord.Message) -> None:
            obs.messages.append(message)
            await interaction.response.send_message(f"> {message.content}", ephemeral=True)

        @tree.error
        async def on_tree_error(
            interaction: discord.Interaction, error: app_commands.AppCommandError
        ) -> None:
            obs.errors.append(error)
            await interaction.response.send_message("denied", ephemeral=True)

    async def setup_hook(self) -> None:
        await self.tree.sync()
        if self.guild_sync:
            guild = discord.Object(GUILD_ID)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.obs.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        assert self.user is not None  # messages arrive only after READY, which sets the user
        if message.author.id == self.user.id:
            return
        self.obs.messages.append(message)
        if self.user in message.mentions:
            reply = await message.reply("hi", mention_author=False)
            self.obs.sent.append(reply)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake
        assert not fake.errors, fake.errors
        assert not fake.unknown_requests, fake.describe_requests()


@pytest.fixture
def obs() -> Observed:
    return Observed()


@pytest.fixture
async def bot(fake: FakeDiscord, obs: Observed) -> AsyncIterator[StandInBot]:
    client = StandInBot(obs)
    async with run_client(client, fake):
        yield client


async def test_login_ready_and_guild_visible(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    assert obs.ready.is_set()
    assert bot.user is not None
    assert bot.user.id == BOT_USER_ID
    assert bot.application_id == APPLICATION_ID
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None
    assert guild.name == "Test Guild"
    assert guild.owner_id == OWNER_ID
    channel = guild.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    assert channel.name == "general"
    assert guild.me is not None
    assert channel.permissions_for(guild.me).send_messages

    assert fake.identify is not None
    assert fake.identify["intents"] == bot.intents.value
    # The client asks for transport compression and the fake honours it.
    conn = fake.gateway_connections[0]
    expected = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    assert conn.query["compress"] == expected
    assert conn.compression == expected
    assert conn.query["v"] == "10"
    assert conn.query["encoding"] == "json"
    # discord.py heartbeats right after HELLO.
    await fake.wait_for_gateway(lambda m: m.op == 1)
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert all(r.headers["Authorization"] == "Bot fake-token" for r in fake.requests)


async def test_http_content_type_and_unknown_routes(fake: FakeDiscord, bot: StandInBot) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bot fake-token"}
        async with session.get(f"{fake.api_base}/users/@me", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
        async with session.get(f"{fake.api_base}/nope/123", headers=headers) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "Unknown", "code": 0}
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/also/unknown"))
    assert [r.path for r in fake.unknown_requests] == ["/nope/123", "/also/unknown"]
    fake.requests[:] = [r for r in fake.requests if r.known_route]  # expected; don't fail teardown


async def test_injected_errors(fake: FakeDiscord, bot: StandInBot) -> None:
    channel = bot.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    route = f"/channels/{CHANNEL_ID}/messages"
    fake.fail_next("POST", route, 403)
    with pytest.raises(discord.Forbidden) as info:
        await channel.send("nope")
    assert info.value.code == 50013
    fake.fail_next("POST", route, 429)  # discord.py sleeps retry_after (0.05 s) and retries
    message = await channel.send("yes")
    statuses = [r.status for r in fake.requests if r.matches("POST", route)]
    assert statuses == [403, 429, 200]
    assert message.content == "yes"
    assert message.author.id == BOT_USER_ID
    # 204 answers carry no body and no JSON content type (discord.py would fail to parse "").
    async with channel.typing():
        pass
    typing = await fake.wait_for_request("POST", f"/channels/{CHANNEL_ID}/typing")
    assert typing.status == 204


async def test_command_sync_is_recorded(fake: FakeDiscord, bot: StandInBot) -> None:
    put = await fake.wait_for_request("PUT", f"/applications/{APPLICATION_ID}/commands")
    by_name = {c["name"]: c for c in put.json}
    assert set(by_name) == {
        "ping",
        "admin",
        "feeds",
        "search",
        "upload",
        "long",
        "slow",
        "Quote it",
    }
    assert by_name["ping"]["options"] == [
        {"type": 3, "name": "text", "description": "What to echo", "required": True}
    ]
    # discord.py sends the bitfield as an int; Discord (and the fake) answer with a string.
    assert by_name["admin"]["default_member_permissions"] == MANAGE_GUILD
    assert fake.commands()["admin"]["default_member_permissions"] == str(MANAGE_GUILD)
    assert by_name["feeds"]["options"][0]["type"] == 1  # subcommand
    assert put.status == 200
    assert all("id" in c for c in put.response)

    fetched = await bot.tree.fetch_commands()
    assert {c.name: c.id for c in fetched} == {n: int(c["id"]) for n, c in fake.commands().items()}


async def test_guild_synced_commands_dispatch_with_guild_id(fake: FakeDiscord) -> None:
    obs = Observed()
    async with run_client(StandInBot(obs, guild_sync=True), fake):
        await fake.wait_for_request(
            "PUT", f"/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands"
        )
        ix = await fake.send_interaction("feeds add", {"url": "https://example.org/rss"})
        assert ix.payload["data"]["guild_id"] == str(GUILD_ID)
        assert ix.payload["data"]["id"] == fake.commands(GUILD_ID)["feeds"]["id"]
        cb = await fake.wait_for_callback(ix)
        assert cb.json["data"]["content"] == "added https://example.org/rss at 1"


async def test_slash_command_defers_then_follows_up(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    ix = await fake.send_interaction("ping", {"text": "hello"}, user_name="alice")
    cb = await fake.wait_for_callback(ix)
    assert cb.json == {"type": 5}
    assert cb.status == 200
    assert cb.query["with_response"] == "1"

    followup = await fake.wait_for_followup(ix)
    assert followup.path == f"/webhooks/{APPLICATION_ID}/{ix.token}"
    assert followup.json["content"] == "pong: hello"
    assert followup.json["embeds"][0]["title"] == "Pong"
    assert followup.json["embeds"][0]["description"] == "hello"
    assert followup.json["allowed_mentions"] == {"parse": []}
    assert followup.json["components"][0]["components"][0]["custom_id"] == "ping:again"

    # The first followup after a "thinking" defer resolves the deferred message.
    await asyncio.wait_for(obs.done.wait(), 5)
    assert obs.sent[0].id == ix.original_message_id
    original = fake.original_message(ix)
    assert original is not None
    assert original["content"] == "pong: hello"
    assert not original["flags"] & FLAG_LOADING
    assert obs.sent[0].embeds[0].title == "Pong"


async def test_button_click_reaches_view_callback(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    ix = await fake.send_interaction("ping", {"text": "hi"})
    await asyncio.wait_for(obs.done.wait(), 5)
    message_id = obs.sent[0].id

    click = await fake.send_component_interaction(message_id, "ping:again", user_id=OWNER_ID)
    cb = await fake.wait_for_callback(click)
    assert cb.json["type"] == 7
    assert obs.clicks == [(OWNER_ID, "ping:again")]
    assert fake.messages[message_id]["content"] == "clicked"
    assert fake.messages[message_id]["components"] == []
    with pytest.raises(CommandNotAvailable):
        await fake.send_component_interaction(message_id, "ping:again")
    assert ix.followup_message_ids == [message_id]


async def test_member_permissions_reach_the_checks(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    denied = await fake.send_interaction("admin", permissions="0")
    cb = await fake.wait_for_callback(denied)
    assert cb.json["type"] == 4
    assert cb.json["data"]["content"] == "denied"
    assert cb.json["data"]["flags"] == FLAG_EPHEMERAL
    assert isinstance(obs.errors[0], app_commands.MissingPermissions)

    allowed = await fake.send_interaction("admin", permissions=str(MANAGE_GUILD), roles=[123])
    cb = await fake.wait_for_callback(allowed)
    assert cb.json["data"]["content"] == "ok"
    assert allowed.payload["member"]["roles"] == ["123"]

    # Discord itself hides commands whose default_member_permissions the user lacks.
    with pytest.raises(CommandNotAvailable):
        await fake.send_interaction("admin", permissions="0", enforce_permissions=True)
    # The guild owner gets every permission when none is given explicitly.
    owner = await fake.send_interaction("admin", user_id=OWNER_ID)
    assert (await fake.wait_for_callback(owner)).json["data"]["content"] == "ok"


async def test_subcommand_and_option_types(fake: FakeDiscord, bot: StandInBot) -> None:
    ix = await fake.send_interaction("feeds add", {"url": "https://x.test/rss", "priority": 3})
    opts = ix.payload["data"]["options"]
    assert opts[0]["name"] == "add"
    assert opts[0]["type"] == 1
    assert {o["name"]: o["type"] for o in opts[0]["options"]} == {"url": 3, "priority": 4}
    cb = await fake.wait_for_callback(ix)
    assert cb.json["data"]["content"] == "added https://x.test/rss at 3"
    with pytest.raises(ValueError, match="unknown option"):
        await fake.send_interaction("feeds add", {"link": "x"})
    with pytest.raises(ValueError, match="missing required"):
        await fake.send_interaction("feeds add", {"priority": 1})


async def test_autocomplete(fake: FakeDiscord, bot: StandInBot) -> None:
    ix = await fake.send_autocomplete("search", "query", "ap")
    cb = await fake.wait_for_callback(ix)
    assert cb.json["type"] == 8
    assert [c["name"] for c in cb.json["data"]["choices"]] == ["apple", "apricot"]


async def test_multipart_file_response(fake: FakeDiscord, bot: StandInBot) -> None:
    ix = await fake.send_interaction("upload")
    cb = await fake.wait_for_callback(ix)
    assert cb.json["type"] == 4
    assert cb.json["data"]["content"] == "here"
    assert cb.json["data"]["flags"] & FLAG_EPHEMERAL
    assert [(f.filename, f.data) for f in cb.files] == [("report.txt", b"hello")]
    message = cb.response["resource"]["message"]
    assert message["attachments"][0]["filename"] == "report.txt"
    assert cb.response["interaction"]["response_message_ephemeral"] is True


async def test_message_limits_are_enforced(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    ix = await fake.send_interaction("long")
    await asyncio.wait_for(obs.done.wait(), 5)
    (error,) = obs.errors
    assert isinstance(error, discord.HTTPException)
    assert error.status == 400
    assert error.code == 50035
    second = await fake.wait_for_followup(ix, index=1)
    assert second.json["content"] == "sorry, that was too long"


async def test_late_callback_is_rejected(fake: FakeDiscord, bot: StandInBot, obs: Observed) -> None:
    fake.callback_deadline = 0.1
    await fake.send_interaction("slow")
    await asyncio.wait_for(obs.done.wait(), 5)
    (error,) = obs.errors
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062


async def test_message_create_reaches_on_message(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    sent = await fake.send_message_create(f"{fake.bot_mention} what's new?", author_name="alice")
    reply = await fake.wait_for_request("POST", f"/channels/{CHANNEL_ID}/messages")
    (message,) = obs.messages
    assert message.id == int(sent["id"])
    assert message.content == f"<@{BOT_USER_ID}> what's new?"
    assert message.author.id == USER_ID
    assert message.guild is not None
    assert bot.user in message.mentions
    assert reply.json["content"] == "hi"
    assert reply.json["message_reference"]["message_id"] == message.id
    assert reply.response["referenced_message"]["id"] == sent["id"]
    # The bot's own reply is echoed on the gateway, as Discord does; on_message ignores it.
    await fake.wait_for(lambda r: r is reply)
    assert any(
        e.t == "MESSAGE_CREATE" and e.d["id"] == reply.response["id"] for e in fake.gateway_sent
    )


async def test_message_content_intent_is_simulated(fake: FakeDiscord) -> None:
    obs = Observed()
    async with run_client(StandInBot(obs, intents=discord.Intents.default()), fake):
        await fake.send_message_create("no mention here")
        await fake.send_message_create(f"{fake.bot_mention} hello")
        await fake.wait_for_request("POST", f"/channels/{CHANNEL_ID}/messages")
        assert [m.content for m in obs.messages] == ["", f"<@{BOT_USER_ID}> hello"]


async def test_message_context_menu_carries_the_whole_message(fake: FakeDiscord) -> None:
    """Apps → a message command: the bot gets the message, content too, without the intent."""
    obs = Observed()
    async with run_client(StandInBot(obs, intents=discord.Intents.default()), fake):
        assert fake.commands()["Quote it"]["type"] == 3
        posted = await fake.send_message_create("the ferry is dearer", author_id=OWNER_ID)
        interaction = await fake.send_message_command("Quote it", posted["id"])
        callback = await fake.wait_for_callback(interaction)
    *_, message = obs.messages
    assert (message.id, message.content, message.author.id) == (
        int(posted["id"]),
        "the ferry is dearer",
        OWNER_ID,
    )
    assert callback.json["data"]["content"] == "> the ferry is dearer"
    assert callback.json["data"]["flags"] == FLAG_EPHEMERAL
    with pytest.raises(KeyError):
        await fake.send_message_command("Quote it", 1)


async def test_privileged_intents_rejected(fake: FakeDiscord) -> None:
    fake.privileged_intents = 0
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with run_client(StandInBot(Observed()), fake):
            pass


async def test_resume_replays_missed_events(
    fake: FakeDiscord, bot: StandInBot, obs: Observed
) -> None:
    session_id = fake.session_id
    await fake.disconnect()
    # Dispatched while the client is away: kept and replayed on RESUME.
    await fake.send_message_create("while you were out")
    resume = await fake.wait_for_gateway(lambda m: m.op == 6)
    assert resume.d["session_id"] == session_id
    await fake.wait_until_ready()
    assert fake.gateway_connections[-1].path == "/resume"  # READY's resume_gateway_url
    for _ in range(200):
        if obs.messages:
            break
        await asyncio.sleep(0.01)
    assert [m.content for m in obs.messages] == ["while you were out"]
    ix = await fake.send_interaction("feeds add", {"url": "u"})
    assert (await fake.wait_for_callback(ix)).json["data"]["content"] == "added u at 1"
    assert sum(1 for m in fake.gateway_received if m.op == 2) == 1  # never re-identified


async def test_patch_is_restored() -> None:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        assert f"http://127.0.0.1:{fake.port}/api/v10" == discord.http.Route.BASE
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert base == discord.http.Route.BASE
    assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


async def test_wait_for_sees_past_and_future_requests(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/gateway/bot") as resp:
            assert json.loads(await resp.text())["url"] == fake.gateway_url.rstrip("/")
        past = await fake.wait_for(lambda r: r.path == "/gateway/bot")
        assert past.method == "GET"
        assert past.status == 200

        async def later() -> None:
            await asyncio.sleep(0.05)
            async with session.get(f"{fake.api_base}/gateway"):
                pass

        task = asyncio.create_task(later())
        future = await fake.wait_for(lambda r: r.path == "/gateway", timeout=2)
        await task
        assert future.received_at > past.received_at
    with pytest.raises(TimeoutError, match="no matching request"):
        await fake.wait_for(lambda r: r.path == "/never", timeout=0.05)


# A server on each of two shards: (id >> 22) % 2 is 1 for GUILD_ID and 0 for this one.
OTHER_GUILD_ID = GUILD_ID + (1 << 22)
OTHER_CHANNEL_ID = CHANNEL_ID + (1 << 22)


class ShardStandIn(discord.AutoShardedClient):
    """A sharded client that records the servers, messages and interactions it receives."""

    def __init__(self, shard_ids: list[int] | None = None, shard_count: int | None = None) -> None:
        sharding: dict[str, Any] = {"shard_ids": shard_ids, "shard_count": shard_count}
        super().__init__(intents=discord.Intents.default(), **sharding)
        self.messages: list[discord.Message] = []
        self.interactions: list[discord.Interaction] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5 s pause between this client's shards (Discord's identify rate limit)."""

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and message.author.id == self.user.id:
            return
        self.messages.append(message)
        if self.user in message.mentions:
            await message.reply("hi", mention_author=False)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)


def two_shard_world() -> list[FakeGuild]:
    return [
        FakeGuild(),
        FakeGuild(id=OTHER_GUILD_ID, name="Other", channels=[FakeChannel(OTHER_CHANNEL_ID)]),
    ]


def test_shard_for_follows_discords_formula() -> None:
    """A server's shard is (id >> 22) % count, and direct messages belong to shard 0."""
    assert shard_for(GUILD_ID, 2) == 1
    assert shard_for(OTHER_GUILD_ID, 2) == 0
    assert shard_for(GUILD_ID, 1) == 0
    assert shard_for(None, 5) == 0


async def test_gateway_bot_recommends_the_shard_count() -> None:
    """A client without a shard count reads /gateway/bot's and connects that many shards."""
    async with FakeDiscord(guilds=two_shard_world(), recommended_shards=3) as fake:
        client = ShardStandIn()
        async with run_client(client, fake):
            assert client.shard_count == 3
            assert fake.shard_sessions == {0: [0, 3], 1: [1, 3], 2: [2, 3]}
            assert {g.id for g in client.guilds} == {GUILD_ID, OTHER_GUILD_ID}
        assert any(r.path == "/gateway/bot" for r in fake.requests)


async def test_each_event_reaches_only_the_client_holding_its_shard() -> None:
    """Two processes' worth of shards: each sees its servers, their messages and commands."""
    async with FakeDiscord(guilds=two_shard_world()) as fake:
        first, second = ShardStandIn([0], 2), ShardStandIn([1], 2)
        label_client(first, "first")
        label_client(second, "second")
        async with run_client(first, fake), run_client(second, fake):
            assert [g.id for g in first.guilds] == [OTHER_GUILD_ID]
            assert [g.id for g in second.guilds] == [GUILD_ID]
            ready = [m for m in fake.gateway_sent if m.t == "READY"]
            assert [(m.shard, [g["id"] for g in m.d["guilds"]]) for m in ready] == [
                ([0, 2], [str(OTHER_GUILD_ID)]),
                ([1, 2], [str(GUILD_ID)]),
            ]

            await fake.send_message_create(f"{fake.bot_mention} here?", guild_id=GUILD_ID)
            await fake.send_message_create(f"{fake.bot_mention} there?", guild_id=OTHER_GUILD_ID)
            await fake.send_message_create("a direct message", dm=True)
            await fake.send_interaction("ping", {"text": "hi"}, guild_id=GUILD_ID)
            for _ in range(500):
                if len(first.messages) == 2 and second.messages and second.interactions:
                    break
                await asyncio.sleep(0.01)
            assert [m.content for m in first.messages] == [
                f"<@{BOT_USER_ID}> there?",
                "a direct message",
            ]
            assert [m.content for m in second.messages] == [f"<@{BOT_USER_ID}> here?"]
            assert [i.guild_id for i in second.interactions] == [GUILD_ID]
            assert first.interactions == []
            here = await fake.wait_for_request("POST", f"/channels/{CHANNEL_ID}/messages")
            there = await fake.wait_for_request("POST", f"/channels/{OTHER_CHANNEL_ID}/messages")
            assert (here.client, there.client) == ("second", "first")
        sent = [(m.t, m.shard) for m in fake.gateway_sent if m.t != "MESSAGE_CREATE"]
        assert ("INTERACTION_CREATE", [1, 2]) in sent
        assert ("INTERACTION_CREATE", [0, 2]) not in sent
        assert not fake.errors, fake.errors


async def test_an_event_for_a_shard_nobody_holds_is_an_error() -> None:
    """Driving a server whose shard no client connected fails loudly instead of vanishing."""
    async with (
        FakeDiscord(guilds=two_shard_world()) as fake,
        run_client(ShardStandIn([0], 2), fake),
    ):
        with pytest.raises(RuntimeError, match="no client holds shard 1 of 2"):
            await fake.send_message_create("anyone?", guild_id=GUILD_ID)


async def test_an_invalid_shard_is_refused() -> None:
    """IDENTIFY with a shard id outside its count is closed with 4010, like Discord."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        async with session.ws_connect(fake.gateway_url) as ws:
            hello = await ws.receive_json()
            assert hello["op"] == 10
            identify = {"token": "fake-token", "intents": 513, "properties": {}, "shard": [2, 2]}
            await ws.send_json({"op": 2, "d": identify})
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4010
        assert fake.shard_sessions == {}
