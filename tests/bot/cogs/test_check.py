"""Apps → "Check the news" on a message, through the real client and the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from bot.app import NewsBot
from bot.cogs.check import ALREADY_POSTED, MENU_NAME
from bot.resources import Resources
from bot.services.check import NO_TEXT, NO_TEXT_NOR_ARTICLE
from bot.text import NOT_FOUND, NOTHING_ELSE
from tests.bot.conftest import (
    BOB,
    CHANNEL_A,
    CHANNEL_B,
    COURIER,
    EPHEMERAL,
    GUILD_B,
    THREAD_A,
    TOKEN,
    MakeContext,
    index_news,
    replying_to,
    two_servers,
)
from tests.fakes.discord_server import (
    BOT_PERMISSIONS,
    OWNER_ID,
    USER_ID,
    FakeChannel,
    FakeDiscord,
    FakeInteraction,
    RecordedRequest,
    run_client,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

FORUM = 1100000000000000220
FORUM_POST = 1100000000000000221
PARADE = "The parade of 400 paper lanterns starts at the fish market at 8 pm on 14 June."
DEFERRED = 5
UPDATE_MESSAGE = 7


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """The two servers, server A with a forum and one post in it besides its thread."""
    servers = two_servers()
    servers[0].channels += [
        FakeChannel(FORUM, "news-forum", 15),
        FakeChannel(FORUM_POST, "Is the festival moving?", 11, parent_id=FORUM),
    ]
    async with FakeDiscord(guilds=servers, token=TOKEN) as fake:
        yield fake
        assert not fake.errors, fake.errors
        assert not fake.unknown_requests, fake.describe_requests()


async def check(
    fake: FakeDiscord, content: str, **message: Any
) -> tuple[dict[str, Any], FakeInteraction, RecordedRequest]:
    """A member posts ``content``; another member checks it. Returns the message, the
    interaction and the private answer."""
    user = message.pop("checker", OWNER_ID)
    posted = await fake.send_message_create(content, **message)
    interaction = await fake.send_message_command(MENU_NAME, posted["id"], user_id=user)
    callback = await fake.wait_for_callback(interaction)
    assert callback.json == {"type": DEFERRED, "data": {"flags": EPHEMERAL}}
    return posted, interaction, await fake.wait_for_followup(interaction, timeout=20)


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [button for row in payload["components"] for button in row["components"]]


async def test_menu_is_synced_as_a_message_command(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """Discord offers "Check the news" under Apps on every message (a type 3 command)."""
    synced = fake.commands()
    assert synced[MENU_NAME]["type"] == 3


async def test_check_quotes_the_news_privately_with_post_and_vote_buttons(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """The answer quotes and cites like /ask, only the checker sees it, with three buttons."""
    _, interaction, answer = await check(
        fake, "heard the lantern parade starts at the fish market <@1100000000000000302> 🎉"
    )
    embed = answer.json["embeds"][0]
    assert f"**{PARADE}**" in embed["description"]
    assert f"**1.** {COURIER} · Lantern festival moves to the harbour · <t:" in embed["description"]
    assert embed["title"] == "heard the lantern parade starts at the fish market 🎉"
    assert answer.json["allowed_mentions"] == {"parse": []}
    message = fake.original_message(interaction)
    assert message is not None and message["flags"] & EPHEMERAL
    assert [b["label"] for b in buttons(answer.json)] == ["Post publicly", "Helpful", "Not helpful"]


async def test_post_publicly_replies_to_the_checked_message(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """ "Post publicly" posts the same embeds as a reply, pinging nobody; the button greys."""
    posted, interaction, answer = await check(fake, "The lantern parade starts at 8 pm?")
    message_id = interaction.original_message_id
    assert message_id is not None
    post = buttons(answer.json)[0]

    click = await fake.send_component_interaction(message_id, post["custom_id"], user_id=OWNER_ID)
    reply = await fake.wait_for(replying_to(posted), timeout=10)
    edited = await fake.wait_for_edit(click)

    assert reply.path == f"/channels/{CHANNEL_A}/messages"
    assert reply.json["embeds"] == answer.json["embeds"]
    assert reply.json["allowed_mentions"]["parse"] == []
    assert reply.json["content"] == f"<@{OWNER_ID}> checked this message against the news:"
    public = fake.channel_messages(CHANNEL_A)[-1]
    assert not public["flags"] & EPHEMERAL and public["mentions"] == []
    assert [b["label"] for b in buttons(public)] == ["Helpful", "Not helpful"]
    assert edited.json["content"].startswith("Posted: https://discord.com/channels/")
    shown = buttons(edited.json)[0]
    assert (shown["label"], shown["disabled"]) == ("Posted", True)


async def test_a_private_answer_is_posted_once_however_often_it_is_clicked(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Two clicks at once post one reply; the second click is told it was posted."""
    posted, interaction, answer = await check(fake, "When does the lantern parade start?")
    assert interaction.original_message_id is not None
    post = buttons(answer.json)[0]["custom_id"]

    first = await fake.send_component_interaction(interaction.original_message_id, post)
    second = await fake.send_component_interaction(
        interaction.original_message_id, post, check_component=False
    )
    await fake.wait_for_edit(first)
    told = await fake.wait_for_callback(second)

    assert told.json["data"]["content"] == ALREADY_POSTED
    assert len([r for r in fake.requests if replying_to(posted)(r)]) == 1


async def test_linked_indexed_article_comes_first_with_its_closest_passage(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """A link to an indexed article (tracking parameters and all) names it and quotes it."""
    _, _, answer = await check(
        fake,
        "Apparently they fixed the harbour wall just in time, and the fish market opens "
        "on Sundays https://news.example/lanterns?utm_source=chat",
    )
    linked, rest = answer.json["embeds"]
    assert linked["title"] == "The linked article"
    assert linked["description"].startswith(f"{COURIER} · Lantern festival moves to the harbour")
    assert (
        "**Councillor Mira Okafor said the harbour wall had been repaired in time.**"
        in (linked["description"])
    )
    # The linked passage is not quoted a second time below it; the rest of the news is.
    assert "harbour wall had been repaired" not in rest["description"]
    assert "Fish market opens on Sundays" in rest["description"]


async def test_only_the_linked_article_speaking_to_it_is_not_called_not_found(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """When nothing but the linked article covers the message, it is shown alone."""
    _, _, answer = await check(
        fake, "they fixed the harbour wall just in time https://news.example/lanterns"
    )
    (linked,) = answer.json["embeds"]
    assert "harbour wall had been repaired" in linked["description"]
    assert linked["footer"]["text"] == NOTHING_ELSE


async def test_a_bare_link_to_an_indexed_article_is_checked_by_its_title(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """A message that is only a link still names the article, and answers with its title."""
    _, _, answer = await check(fake, "<https://news.example/ferry>")
    linked, rest = answer.json["embeds"]
    assert "Gull Island ferry fares to rise" in linked["description"]
    assert rest["title"] == "Gull Island ferry fares to rise"


async def test_message_with_no_text_is_refused_at_once(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """Only mentions and emoji: the checker is told privately, without a deferral."""
    posted = await fake.send_message_create("<@1100000000000000302> <:wave:123456789012345678>")
    interaction = await fake.send_message_command(MENU_NAME, posted["id"])
    callback = await fake.wait_for_callback(interaction)
    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] == EPHEMERAL
    assert callback.json["data"]["content"] == NO_TEXT


async def test_links_to_nothing_indexed_and_no_text_say_so(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Links to articles nobody indexed, and no text: says so privately."""
    posted = await fake.send_message_create("https://elsewhere.example/story")
    interaction = await fake.send_message_command(MENU_NAME, posted["id"])
    reply = await fake.wait_for_followup(interaction, timeout=20)
    assert reply.json["content"] == NO_TEXT_NOR_ARTICLE
    assert reply.json["flags"] == EPHEMERAL


async def test_another_servers_article_is_neither_named_nor_quoted(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """In server B, a link to server A's article and its words find only B's (and global) news."""
    _, _, answer = await check(
        fake,
        "The lantern parade starts at the fish market https://news.example/lanterns",
        guild_id=GUILD_B,
        channel_id=CHANNEL_B,
        author_id=BOB,
        checker=BOB,
    )
    assert len(answer.json["embeds"]) == 1
    text = answer.json["embeds"][0]["description"]
    assert "lantern" not in text.lower() and COURIER not in text


async def test_unrelated_message_says_nothing_indexed_covers_it(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """A claim the news never mentions gets the honest "not found"."""
    context = await make_context(min_score=0.99)
    index_news(context)
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        _, _, answer = await check(fake, "The moon is made of green cheese, scientists confirm")
    assert answer.json["embeds"][0]["description"].startswith(NOT_FOUND)


@pytest.mark.parametrize("channel", [THREAD_A, FORUM_POST], ids=["thread", "forum post"])
async def test_check_and_post_work_in_threads_and_forum_posts(
    fake: FakeDiscord, newsbot: NewsBot, channel: int
) -> None:
    """Checked in a thread or a forum post, the answer is posted back there as a reply."""
    posted, interaction, answer = await check(
        fake, "When does the lantern parade start?", channel_id=channel
    )
    assert PARADE in answer.json["embeds"][0]["description"]
    assert interaction.original_message_id is not None
    post = buttons(answer.json)[0]
    await fake.send_component_interaction(
        interaction.original_message_id, post["custom_id"], user_id=OWNER_ID
    )
    reply = await fake.wait_for(replying_to(posted), timeout=10)
    assert reply.path == f"/channels/{channel}/messages"


async def test_post_is_refused_privately_where_the_bot_cannot_post(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Without Send Messages in the channel, the checker is told why; nothing is posted."""
    posted, interaction, answer = await check(fake, "When does the lantern parade start?")
    assert interaction.original_message_id is not None
    muted = discord.Permissions(BOT_PERMISSIONS)
    muted.send_messages = False
    click = await fake.send_component_interaction(
        interaction.original_message_id,
        buttons(answer.json)[0]["custom_id"],
        user_id=OWNER_ID,
        app_permissions=muted,
    )
    refusal = await fake.wait_for_callback(click)
    assert refusal.json["data"]["flags"] == EPHEMERAL
    assert "Send Messages" in refusal.json["data"]["content"]
    assert not [r for r in fake.requests if replying_to(posted)(r)]


async def test_post_button_works_after_a_restart(fake: FakeDiscord, news: Resources) -> None:
    """A private answer from before a restart can still be posted: the button carries all."""
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        posted, interaction, answer = await check(fake, "When does the lantern parade start?")
    assert interaction.original_message_id is not None
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        await fake.send_component_interaction(
            interaction.original_message_id, buttons(answer.json)[0]["custom_id"], user_id=USER_ID
        )
        reply = await fake.wait_for(replying_to(posted), timeout=10)
    assert reply.json["embeds"] == answer.json["embeds"]
