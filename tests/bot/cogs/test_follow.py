"""/follow through the real client: new articles from a local feed server posted in a channel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.app import NewsBot
from bot.resources import Resources
from bot.services import Services
from index.answer import DEFAULT_MIN_SCORE
from ingest.db import session_scope
from ingest.sources import add_source
from tests.bot.conftest import (
    ADMIN_ROLE,
    BOB,
    CHANNEL_A,
    CHANNEL_B,
    EPHEMERAL,
    GUILD_A,
    GUILD_B,
    THREAD_A,
    TOKEN,
    MakeContext,
    command,
    index_news,
)
from tests.fakes.discord_server import BOT_ROLE_ID, FakeChannel, FakeDiscord, run_client
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture
from tests.ingest.test_refresh import Dynamic, rss, story

pytestmark = [pytest.mark.timeout(120)]

NEWS_CHANNEL = 1100000000000000220  # a second text channel in server A
MANAGE_CHANNELS = 1 << 4
EMBED_LINKS = 1 << 14
FERRY = (
    "The Gull Island ferry will stop running on Sundays from September, the operator said, "
    "because too few passengers travel on the last crossing of the week.",
    "Islanders said the change would leave weekend visitors stranded on Gull Island and asked "
    "the council to fund a replacement Sunday boat.",
)
FERRY_AGAIN = (
    "The Gull Island ferry operator has ordered a second boat, so that crossings can run "
    "every hour in summer instead of every two hours.",
)
FERRY_THIRD = (
    "Gull Island ferry tickets can be bought on the boat again, the ferry operator said, "
    "after passengers complained about the new online booking system.",
)
FERRY_FOURTH = (
    "Gull Island ferry fares will stay the same next year, the ferry operator said, after the "
    "council agreed to pay for the fuel the boats burn in winter.",
)
# Six more stories about the ferry, for a flood in one refresh.
FLOOD = [
    (
        "Gull Island ferry crew to strike",
        "The crew of the Gull Island ferry will strike for two days next week over pay, and "
        "no crossings will run on Tuesday or Wednesday, the union said in a statement.",
    ),
    (
        "Gull Island ferry gets a new captain",
        "The Gull Island ferry has a new captain, Ros Penhale, who has sailed the crossing as "
        "first mate for twenty years and grew up in the harbour village.",
    ),
    (
        "Gull Island ferry delayed by fog",
        "Fog delayed every Gull Island ferry crossing on Friday morning by up to two hours, "
        "and the first school run of the day was cancelled by the operator.",
    ),
    (
        "Gull Island ferry adds bicycle racks",
        "Racks for twelve bicycles have been fitted on the deck of the Gull Island ferry, so "
        "cyclists no longer have to wait for the afternoon cargo boat.",
    ),
    (
        "Gull Island ferry terminal repainted",
        "The Gull Island ferry terminal at Brindle Bay was repainted over the weekend in the "
        "blue and white of the island's flag, with new benches for passengers.",
    ),
    (
        "Gull Island ferry timetable for winter",
        "The winter timetable of the Gull Island ferry starts in November, with six crossings "
        "a day instead of the summer's ten, and the last boat leaves at six.",
    ),
]
QUARRY = (
    "Quarry Road will be resurfaced over three weekends in October, and drivers are asked "
    "to use the Elmsworth bypass while the road is closed.",
)


class Site:
    """Two outlets' feeds on the local server; each refresh serves the stories put in them."""

    def __init__(self, server: LocalServer) -> None:
        self.dyn = Dynamic(server, f"/dyn/{uuid.uuid4().hex[:8]}")
        self.items: dict[str, list[tuple[str, str, str]]] = {"post": [], "wire": []}
        self.publish()

    def add(self, feed: str, outlet: str, slug: str, title: str, *paragraphs: str) -> None:
        page = story(title, *paragraphs).replace("Harbour Post", outlet)
        link = self.dyn.put(f"{feed}-{slug}.html", page)
        self.items[feed].append((title, link, "Wed, 20 Mar 2024 09:00:00 GMT"))
        self.publish()

    def publish(self) -> None:
        for feed, items in self.items.items():
            self.dyn.put(f"{feed}.xml", rss(*items), "application/rss+xml")

    def feed(self, name: str) -> str:
        return self.dyn.url(f"{name}.xml")

    def remove(self) -> None:
        with self.dyn.server.lock:
            for path in [p for p in self.dyn.server.dynamic if p.startswith(self.dyn.prefix)]:
                del self.dyn.server.dynamic[path]


@pytest.fixture
def site(web_server: LocalServer) -> Iterator[Site]:
    found = Site(web_server)
    yield found
    found.remove()


@pytest.fixture
async def context(make_context: MakeContext, web_server: LocalServer) -> Resources:
    """The product's own relevance bars (not the bot tests' "answer anything"), a cap of 2."""
    found = await make_context(
        min_score=DEFAULT_MIN_SCORE,
        related_quotes_only=True,
        fetch_allow_hosts=web_server.host_port,
        follow_hourly_cap=2,
    )
    index_news(found)
    return found


@pytest.fixture
async def bot(fake: FakeDiscord, context: Resources, site: Site) -> AsyncIterator[NewsBot]:
    fake.guilds[0].channels.append(FakeChannel(NEWS_CHANNEL, "island-news"))
    services = Services.create(context)
    services.sources.refresh_cooldowns.seconds = 0  # several refreshes in one test
    with session_scope(context.engine) as session:
        add_source(session, site.feed("post"), "Island Post", GUILD_A)
        add_source(session, site.feed("wire"), "Bay Wire", GUILD_A)
    found = NewsBot(context, services, background=False)
    async with run_client(found, fake, token=TOKEN):
        await fake.wait_for_request("PUT", f"/applications/{fake.application_id}/commands")
        yield found


async def refresh(fake: FakeDiscord, bot: NewsBot) -> None:
    """/source refresh in server A, then until every follow's post is sent."""
    shown = await command(fake, "source refresh", roles=[ADMIN_ROLE])
    assert "error" not in shown["content"], shown["content"]
    # Loaded as an extension: a module object of its own, so no isinstance check here.
    cog: Any = bot.get_cog("FollowCog")
    await cog.idle()


def posts(fake: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    """What the bot posted in a channel by itself (not answers to commands)."""
    return [m for m in fake.channel_messages(channel_id) if "interaction_metadata" not in m]


async def follow(fake: FakeDiscord, topic: str, channel: int = NEWS_CHANNEL, **kw: Any) -> str:
    options = {"topic": topic, "channel": channel}
    shown = await command(fake, "follow add", options, **{"roles": [ADMIN_ROLE], **kw})
    return str(shown["content"])


async def listing(fake: FakeDiscord, **kw: Any) -> str:
    shown = await command(fake, "follow list", **{"roles": [ADMIN_ROLE], **kw})
    return str(shown["embeds"][0]["description"])


async def test_new_articles_on_the_topic_are_posted_with_quote_citation_and_follow(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """A matching new story is quoted with its citation and follow; other news is not posted."""
    added = await follow(fake, "Gull Island ferry")
    assert added.startswith(f"Following “Gull Island ferry” (#1) in <#{NEWS_CHANNEL}>")
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)
    site.add("post", "Island Post", "quarry", "Quarry Road to be resurfaced", *QUARRY)

    await refresh(fake, bot)

    (post,) = posts(fake, NEWS_CHANNEL)
    embed = post["embeds"][0]
    assert embed["title"] == "New on “Gull Island ferry”"
    assert "> " in embed["description"] and "ferry" in embed["description"]
    assert "Island Post · Sunday ferries to Gull Island end · <t:" in embed["description"]
    assert f"[link]({site.dyn.url('post-ferry.html')})" in embed["description"]
    assert "Quarry" not in str(embed)
    assert embed["footer"]["text"].startswith("Matched follow #1 “Gull Island ferry”")
    (sent,) = [r for r in fake.requests if r.path == f"/channels/{NEWS_CHANNEL}/messages"]
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert posts(fake, CHANNEL_A) == []


async def test_one_story_from_several_outlets_is_posted_once_naming_the_others(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """The same text in two outlets is one post "also in" the other; one post per refresh."""
    await follow(fake, "Gull Island ferry")
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)
    site.add("wire", "Bay Wire", "ferry", "Gull Island loses Sunday ferry", *FERRY)
    site.add("post", "Island Post", "boat", "Second boat for the Gull Island ferry", *FERRY_AGAIN)

    await refresh(fake, bot)

    (post,) = posts(fake, NEWS_CHANNEL)
    embed = post["embeds"][0]
    text = str(embed)
    assert "also in Bay Wire" in text or "also in Island Post" in text
    (field,) = embed["fields"]
    assert field["name"] == "More matching stories"
    assert "Second boat for the Gull Island ferry" in text

    # The wire's copy arriving later is not news either: nothing more is posted.
    site.add("wire", "Bay Wire", "boat", "Ferry gets a second boat", *FERRY_AGAIN)
    await refresh(fake, bot)
    assert len(posts(fake, NEWS_CHANNEL)) == 1


async def past_the_cap(fake: FakeDiscord, bot: NewsBot, site: Site) -> None:
    """Follow the ferry, then three refreshes of one matching story each (the cap is 2)."""
    await follow(fake, "Gull Island ferry")
    stories = [
        ("sunday", "Sunday ferries to Gull Island end", FERRY),
        ("boat", "Second boat for the Gull Island ferry", FERRY_AGAIN),
        ("tickets", "Gull Island ferry tickets sold on board again", FERRY_THIRD),
    ]
    for slug, title, paragraphs in stories:
        site.add("post", "Island Post", slug, title, *paragraphs)
        await refresh(fake, bot)


async def test_past_the_hourly_cap_one_summary_counts_the_rest(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """With a cap of 2, the third and fourth stories update one "N more" message."""
    await past_the_cap(fake, bot, site)
    assert [len(p["embeds"]) for p in posts(fake, NEWS_CHANNEL)] == [1, 1, 0]
    summary = posts(fake, NEWS_CHANNEL)[2]
    assert summary["content"] == (
        "**Follow #1 “Gull Island ferry”** reached its limit of 2 posts an hour: 1 more "
        "matching story not posted (ask about them with /ask)."
    )

    site.add("post", "Island Post", "fares", "Gull Island ferry fares frozen", *FERRY_FOURTH)
    await refresh(fake, bot)

    assert len(posts(fake, NEWS_CHANNEL)) == 3  # the summary was edited, not sent again
    assert "2 more matching stories not posted" in posts(fake, NEWS_CHANNEL)[2]["content"]


async def test_a_deleted_channel_disables_its_follow_and_the_list_says_so(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """Deleting the follow's channel disables it; /follow list shows why; nothing is sent."""
    await follow(fake, "Gull Island ferry")
    guild = fake.guilds[0]
    channel = guild.channel(NEWS_CHANNEL)
    assert channel is not None
    payload = channel.to_payload(guild.id, guild.channels.index(channel))
    guild.channels.remove(channel)
    await fake.dispatch("CHANNEL_DELETE", payload)

    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)
    await refresh(fake, bot)

    shown = await listing(fake)
    assert "Gull Island ferry" in shown
    assert "disabled: its channel was deleted" in shown
    assert not [r for r in fake.requests if r.path == f"/channels/{NEWS_CHANNEL}/messages"]


async def test_losing_permission_to_post_disables_the_follow(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """Discord refusing the post (Missing Permissions) disables the follow, said in the list."""
    await follow(fake, "Gull Island ferry")
    fake.fail_next("POST", f"/channels/{NEWS_CHANNEL}/messages", 403)
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)

    await refresh(fake, bot)

    assert posts(fake, NEWS_CHANNEL) == []
    assert "disabled: newsbot may no longer post in #island-news" in await listing(fake)

    resumed = await command(fake, "follow resume", {"follow": 1}, roles=[ADMIN_ROLE])
    assert resumed["content"] == "Resumed “Gull Island ferry” (#1)."
    site.add("post", "Island Post", "boat", "Second boat for the Gull Island ferry", *FERRY_AGAIN)
    await refresh(fake, bot)
    assert len(posts(fake, NEWS_CHANNEL)) == 1


async def test_follows_belong_to_their_server(fake: FakeDiscord, bot: NewsBot, site: Site) -> None:
    """Server B's follow never sees server A's articles, nor lists or removes A's follows."""
    await follow(fake, "Gull Island ferry")
    server_b = {
        "guild_id": GUILD_B,
        "channel_id": CHANNEL_B,
        "user_id": BOB,
        "roles": [],
        "permissions": str(MANAGE_CHANNELS),
    }
    added = await follow(fake, "Gull Island ferry", CHANNEL_B, **server_b)
    assert "(#2)" in added
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)

    await refresh(fake, bot)

    assert len(posts(fake, NEWS_CHANNEL)) == 1
    assert posts(fake, CHANNEL_B) == []
    shown_b = await listing(fake, **server_b)
    assert "`#2`" in shown_b and "`#1`" not in shown_b
    refused = await command(fake, "follow remove", {"follow": 1}, **server_b)
    assert refused["content"] == "no follow with id 1 on this server"
    typing = await fake.send_autocomplete("follow remove", "follow", "", roles=[ADMIN_ROLE])
    choices = (await fake.wait_for_callback(typing)).json["data"]["choices"]
    assert choices == [{"name": "#1 Gull Island ferry (active)", "value": 1}]


async def test_members_without_manage_channels_cannot_follow(
    fake: FakeDiscord, bot: NewsBot
) -> None:
    """Without Manage Channels or the admin role /follow is refused privately; with it, not."""
    shown = await command(
        fake, "follow add", {"topic": "ferry", "channel": NEWS_CHANNEL}, permissions="0"
    )
    assert shown["flags"] == EPHEMERAL
    assert shown["content"] == (
        "Only members with the Manage Channels permission or the server's admin role "
        "can use this command."
    )
    assert "No follows yet" in await listing(fake)
    allowed = await command(
        fake,
        "follow add",
        {"topic": "ferry", "channel": NEWS_CHANNEL},
        permissions=str(MANAGE_CHANNELS),
    )
    assert allowed["content"].startswith("Following “ferry” (#1)")
    assert fake.commands()["follow"]["default_member_permissions"] == str(MANAGE_CHANNELS)


async def test_a_channel_the_bot_cannot_post_in_is_refused_and_disables_follows(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """Without Embed Links /follow add is refused; a follow made before is disabled, not sent."""
    await follow(fake, "Gull Island ferry")
    guild = fake.guilds[0]
    bot_role = guild.role(BOT_ROLE_ID)
    assert bot_role is not None
    bot_role.permissions &= ~EMBED_LINKS
    guild.everyone_permissions &= ~EMBED_LINKS
    for role in (guild.everyone_role, bot_role):
        update = {"guild_id": str(guild.id), "role": role.to_payload()}
        await fake.dispatch("GUILD_ROLE_UPDATE", update)

    refused = await follow(fake, "Quarry Road", CHANNEL_A)
    assert refused == (
        "newsbot may not post in #general (it needs View Channel, Send Messages and Embed Links "
        "there); allow it there, then add the follow again."
    )
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)
    await refresh(fake, bot)

    assert posts(fake, NEWS_CHANNEL) == []
    assert "disabled: newsbot may not post in #island-news" in await listing(fake)


async def test_a_flood_of_matching_stories_is_one_post_that_counts_the_rest(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """Six matching stories in one refresh: one post, the best quoted, three named, "2 more"."""
    await follow(fake, "Gull Island ferry")
    for number, (title, paragraph) in enumerate(FLOOD):
        site.add("post", "Island Post", f"flood-{number}", title, paragraph)

    await refresh(fake, bot)

    (post,) = posts(fake, NEWS_CHANNEL)
    (field,) = post["embeds"][0]["fields"]
    named = field["value"].split("\n")
    assert len(named) == 4 and named[-1] == "… and 2 more matching stories"
    assert all("Island Post · Gull Island ferry" in line for line in named[:3])


async def test_a_channel_deleted_while_the_bot_was_away_disables_its_follow(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """No delete event seen: Discord's "Unknown Channel" to the post disables the follow."""
    await follow(fake, "Gull Island ferry")
    guild = fake.guilds[0]
    guild.channels = [c for c in guild.channels if c.id != NEWS_CHANNEL]
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)

    await refresh(fake, bot)

    assert "disabled: its channel was deleted" in await listing(fake)
    (attempt,) = [r for r in fake.requests if r.path == f"/channels/{NEWS_CHANNEL}/messages"]
    assert attempt.status == 404


async def test_a_deleted_summary_is_sent_again_rather_than_lost(
    fake: FakeDiscord, bot: NewsBot, site: Site
) -> None:
    """Past the cap, a summary someone deleted is replaced by a new one with the full count."""
    await past_the_cap(fake, bot, site)
    summary = posts(fake, NEWS_CHANNEL)[-1]
    del fake.messages[int(summary["id"])]

    site.add("post", "Island Post", "fares", "Gull Island ferry fares frozen", *FERRY_FOURTH)
    await refresh(fake, bot)

    latest = posts(fake, NEWS_CHANNEL)[-1]
    assert latest["id"] != summary["id"]
    assert "2 more matching stories not posted" in latest["content"]


async def test_a_follow_can_post_in_a_thread(fake: FakeDiscord, bot: NewsBot, site: Site) -> None:
    """A thread is a channel like any other for a follow."""
    added = await follow(fake, "Gull Island ferry", THREAD_A)
    assert f"in <#{THREAD_A}>" in added
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)

    await refresh(fake, bot)

    (post,) = posts(fake, THREAD_A)
    assert post["embeds"][0]["title"] == "New on “Gull Island ferry”"
