"""/ask and @mention questions, through the real discord.py client and the fake Discord."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.app import NewsBot
from bot.errors import UNEXPECTED
from bot.resources import Resources
from ingest.extract import RawArticle
from ingest.pipeline import store_raw_articles
from tests.bot.conftest import (
    BOB,
    CHANNEL_A,
    CHANNEL_B,
    COURIER,
    EPHEMERAL,
    GUILD_A,
    GUILD_B,
    SERVER_A_NEWS,
    THREAD_A,
    TOKEN,
    MakeContext,
    article,
    index_news,
    replying_to,
)
from tests.fakes.discord_server import (
    OWNER_ID,
    USER_ID,
    FakeDiscord,
    FakeInteraction,
    RecordedRequest,
    run_client,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


DEFERRED = 5
PARADE = "The parade of 400 paper lanterns starts at the fish market at 8 pm on 14 June."


async def ask(
    fake: FakeDiscord, question: str, options: dict[str, Any] | None = None, **kw: Any
) -> tuple[FakeInteraction, RecordedRequest]:
    """Send /ask (with any other ``options``); return the interaction and the answer."""
    interaction = await fake.send_interaction(
        "ask", {"question": question, **(options or {})}, **kw
    )
    return interaction, await fake.wait_for_followup(interaction, timeout=20)


def description(request: RecordedRequest) -> str:
    return str(request.json["embeds"][0]["description"])


async def test_ask_is_acknowledged_at_once_then_quotes_and_cites(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """The deferral arrives well within 3 s; the answer quotes the passage and cites it."""
    interaction = await fake.send_interaction(
        "ask", {"question": "When does the lantern parade start?"}
    )
    callback = await fake.wait_for_callback(interaction)
    assert callback.json["type"] == DEFERRED
    assert callback.status == 200
    assert callback.received_at - interaction.dispatched_at < 3.0
    answer = await fake.wait_for_followup(interaction, timeout=20)
    assert answer.status == 200
    text = description(answer)
    assert f"**{PARADE}**" in text
    assert "> The Brindle Bay lantern festival will move to the old harbour" in text
    assert f"**1.** {COURIER} · Lantern festival moves to the harbour · <t:" in text
    assert "[link](https://news.example/lanterns)" in text
    assert answer.json["embeds"][0]["footer"]["text"].startswith("Searched 6 passages")
    assert answer.json["allowed_mentions"]["parse"] == []
    # The answer replaced the "thinking…" placeholder.
    assert interaction.followup_message_ids == [interaction.original_message_id]


async def test_quoted_mentions_never_ping(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """A passage containing @everyone and a role mention is quoted, and pings nobody."""
    interaction, answer = await ask(fake, "How much will the Gull Island ferry fares rise?")
    text = description(answer)
    assert "@everyone" in text
    assert "<@&123456789012345678>" in text
    assert answer.json["allowed_mentions"] == {"parse": []}
    message = fake.original_message(interaction)
    assert message is not None
    assert not message["mention_everyone"]
    assert message["mention_roles"] == []


async def test_more_passages_pages_through_the_answer(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """ "More passages" shows the next results to the asker; others are told to ask themselves."""
    interaction, answer = await ask(fake, "What is new in Brindle Bay?")
    buttons = answer.json["components"][0]["components"]
    back, more = buttons
    assert (back["label"], back["disabled"]) == ("Back", True)
    assert (more["label"], more["disabled"]) == ("More passages", False)
    message_id = interaction.original_message_id
    assert message_id is not None

    stranger = await fake.send_component_interaction(
        message_id, more["custom_id"], user_id=OWNER_ID
    )
    refusal = await fake.wait_for_callback(stranger)
    assert refusal.json["data"]["flags"] == EPHEMERAL
    assert "Only the member who asked" in refusal.json["data"]["content"]

    click = await fake.send_component_interaction(message_id, more["custom_id"], user_id=USER_ID)
    page = await fake.wait_for_callback(click)
    assert page.json["type"] == 7  # the answer message is edited in place
    assert "**4.** " in page.json["data"]["embeds"][0]["description"]
    assert page.json["data"]["embeds"][0]["footer"]["text"].endswith(
        "page 2 of 2 · no more relevant passages"
    )
    assert page.json["data"]["allowed_mentions"] == {"parse": []}
    back, more = page.json["data"]["components"][0]["components"]
    assert (back["disabled"], more["disabled"]) == (False, True)


async def test_buttons_of_an_answer_from_before_a_restart_say_they_expired(
    fake: FakeDiscord, news: Resources
) -> None:
    """After a restart, "More passages" on an old answer is told privately to ask again."""
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        interaction, answer = await ask(fake, "What is new in Brindle Bay?")
    more = answer.json["components"][0]["components"][1]
    message_id = interaction.original_message_id
    assert message_id is not None
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        click = await fake.send_component_interaction(message_id, more["custom_id"])
        reply = await fake.wait_for_callback(click)
    assert reply.json["data"]["flags"] == EPHEMERAL
    assert "expired" in reply.json["data"]["content"]
    assert "/ask" in reply.json["data"]["content"]


async def test_buttons_are_disabled_when_they_time_out(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """After the timeout the answer is edited so its buttons are visibly disabled."""
    cog = newsbot.get_cog("AskCog")
    assert cog is not None
    cog.view_timeout = 0.3  # type: ignore[attr-defined]
    interaction, _ = await ask(fake, "What is new in Brindle Bay?")
    edit = await fake.wait_for(
        lambda r: r.method == "PATCH" and r.path.endswith(f"/{interaction.original_message_id}")
    )
    buttons = edit.json["components"][0]["components"]
    assert all(button["disabled"] for button in buttons)
    assert edit.status == 200


async def test_a_server_never_quotes_another_servers_news(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Server B asking about server A's festival gets none of server A's passages."""
    _, from_b = await ask(
        fake,
        "When does the lantern parade start?",
        guild_id=GUILD_B,
        channel_id=CHANNEL_B,
        user_id=BOB,
    )
    assert COURIER not in description(from_b)
    assert "lantern" not in description(from_b).lower()
    _, from_a = await ask(fake, "How long will the Quarry Road tunnel repairs take?")
    assert "Quarry" not in description(from_a)
    _, own = await ask(
        fake,
        "How long will the Quarry Road tunnel repairs take?",
        guild_id=GUILD_B,
        channel_id=CHANNEL_B,
        user_id=BOB,
    )
    assert "Engineers expect the repairs to take six weeks." in description(own)


async def test_abstaining_is_said_plainly_with_the_closest_titles(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """When nothing is relevant enough, the bot says so and names the closest articles."""
    context = await make_context(min_score=1.0)
    store_raw_articles(context.engine, SERVER_A_NEWS, "courier", GUILD_A)
    context.retriever.sync()
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        _, answer = await ask(fake, "When does the lantern parade start?")
    text = description(answer)
    assert text.startswith("I couldn't find this in the indexed news.\n\nClosest articles:\n")
    assert "Lantern festival moves to the harbour" in text
    # No paging; members may still say the refusal did not help (an answerable question).
    labels = [b["label"] for row in answer.json["components"] for b in row["components"]]
    assert labels == ["Helpful", "Not helpful"]


async def test_a_dm_question_is_answered_from_global_news_only(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Outside a server, only the host's global sources are quoted."""
    _, answer = await ask(fake, "What did Marlow County approve for libraries?", dm=True)
    assert "Marlow County Herald" in description(answer)
    assert COURIER not in description(answer)


WORDS = (
    "harbour trust crane pier gravel tide concrete diver survey engineer budget storm ferry "
    "quay barrier winch timber steel boat crew *eastern* summer_season weekday contractor"
).split()


def rambling(seed: int, sentences: int) -> str:
    """Distinct, markdown-laden sentences (near-duplicate passages would be merged away)."""
    pick = random.Random(seed)
    return " ".join(
        " ".join(pick.choice(WORDS) for _ in range(14)).capitalize() + "." for _ in range(sentences)
    )


@pytest.fixture
async def long_news(make_context: MakeContext) -> Resources:
    """Five articles with ~1,000-character passages, and five passages per answer."""
    context = await make_context(answer_passages=5)
    articles: list[RawArticle] = [
        article(
            f"works{i}",
            f"Breakwater works update {i} " + "with a very long headline " * 8,
            f"{rambling(i, 5)} The pier {i} reopens on {i} August after the breakwater works. "
            f"{rambling(100 + i, 6)}",
            COURIER,
            10 + i,
        )
        for i in range(5)
    ]
    store_raw_articles(context.engine, articles, "courier", GUILD_A)
    context.retriever.sync()
    return context


async def test_over_long_passages_are_cut_to_discords_limits(
    fake: FakeDiscord, long_news: Resources
) -> None:
    """Five long, markdown-heavy passages are cut with "…" and the message is accepted."""
    async with run_client(NewsBot(long_news, background=False), fake, token=TOKEN):
        _, answer = await ask(fake, "When does the pier reopen after the breakwater works?")
    assert answer.status == 200  # the fake rejects anything over Discord's limits
    embed = answer.json["embeds"][0]
    assert len(embed["description"]) <= 4096
    assert len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"]) <= 6000
    assert embed["description"].count("**1.**") == 1
    quoted = [line for line in embed["description"].splitlines() if line.startswith(">")]
    assert any("…" in line for line in quoted), "some passage was shortened"
    assert embed["description"].count("[link](https://news.example/works") == 5


async def test_cooldown_and_length_are_refused_privately(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """A too-soon or too-long question gets an ephemeral explanation, not an answer."""
    newsbot.services.ask.cooldowns.seconds = 60
    await ask(fake, "When does the lantern parade start?")
    again = await fake.send_interaction("ask", {"question": "And the ferry?"})
    refused = await fake.wait_for_callback(again)
    assert refused.json["type"] == 4
    assert refused.json["data"]["flags"] == EPHEMERAL
    assert refused.json["data"]["content"] == "You can ask again in 60 s."

    newsbot.services.ask.max_chars = 20
    long = await fake.send_interaction(
        "ask", {"question": "a question that is far too long"}, user_id=OWNER_ID
    )
    refused = await fake.wait_for_callback(long)
    assert refused.json["data"]["flags"] == EPHEMERAL
    assert "at most 20 characters" in refused.json["data"]["content"]


async def test_a_failure_is_logged_and_reported_privately(
    fake: FakeDiscord, newsbot: NewsBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in answering logs the traceback, tells only the asker, and the bot carries on."""
    service = newsbot.services.ask
    real = service.answer

    async def broken(question: str, guild_id: int | None, *scope: Any) -> None:
        raise RuntimeError("index exploded")

    service.answer = broken  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        interaction = await fake.send_interaction("ask", {"question": "Anything?"})
        report = await fake.wait_for_followup(interaction)
    assert report.json["content"] == UNEXPECTED
    assert report.json["flags"] == EPHEMERAL
    deleted = [r for r in fake.interaction_requests(interaction) if r.method == "DELETE"]
    assert deleted, "the public thinking… placeholder is removed first"
    assert any("index exploded" in str(r.exc_info) for r in caplog.records)

    service.answer = real  # type: ignore[method-assign]
    _, answer = await ask(fake, "When does the lantern parade start?", user_id=OWNER_ID)
    assert PARADE in description(answer)


GAZETTE = "Gull Island Gazette"
GAZETTE_PARADE = article(
    "gazette-parade",
    "Lantern parade route announced",
    "The lantern parade leaves the fish market at 8 pm on 14 June and follows the harbour "
    "wall to the old pier, organisers told the Gazette. Around 3,000 visitors are expected.",
    GAZETTE,
    11,
)
CITED_OUTLET = re.compile(r"^\*\*\d+\.\*\* (.+?) · ", re.MULTILINE)


def cited_outlets(request: RecordedRequest) -> set[str]:
    return set(CITED_OUTLET.findall(description(request)))


def footer(request: RecordedRequest) -> str:
    return str(request.json["embeds"][0]["footer"]["text"])


async def test_source_limits_the_quotes_to_that_outlet(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """With a source, only that outlet or source is quoted, and the footer names it."""
    context = await make_context()
    store_raw_articles(context.engine, SERVER_A_NEWS, "courier", GUILD_A)
    store_raw_articles(context.engine, [GAZETTE_PARADE], "gazette", GUILD_A)
    context.retriever.sync()
    question = "When does the lantern parade start?"
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        _, everything = await ask(fake, question)
        _, by_outlet = await ask(fake, question, {"source": GAZETTE})
        _, by_name = await ask(fake, question, {"source": "courier"})
    assert {COURIER, GAZETTE} <= cited_outlets(everything)
    assert cited_outlets(by_outlet) == {GAZETTE}
    assert footer(by_outlet) == f"Searched 1 passage from {GAZETTE} · quotes are verbatim"
    assert cited_outlets(by_name) == {COURIER}
    assert " passages from courier · " in footer(by_name)


async def test_since_leaves_out_older_articles(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """With since, articles published before that day are not quoted; the footer says so."""
    _, answer = await ask(fake, "What is new in Brindle Bay?", {"since": "2024-05-09"})
    text = description(answer)
    assert "Fish market opens on Sundays" in text
    for older in (
        "Lantern festival moves to the harbour",
        "Gull Island ferry fares to rise",
        "Brindle Bay primary school roof repaired",
        "Marlow County approves library budget",
    ):
        assert older not in text
    assert footer(answer).startswith("Searched 2 passages since 9 May 2024 · quotes are verbatim")


async def test_unknown_source_and_unreadable_since_are_refused_privately(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """A date that can't be read is refused at once, an unknown source after thinking."""
    newsbot.services.ask.cooldowns.seconds = 60
    mistyped = await fake.send_interaction("ask", {"question": "Any news?", "since": "whenever"})
    refused = await fake.wait_for_callback(mistyped)
    assert refused.json["type"] == 4
    assert refused.json["data"]["flags"] == EPHEMERAL
    assert refused.json["data"]["content"] == (
        "Can't read 'whenever' as a date; try 2025-03-01, yesterday, last week, 7 days, "
        "March 2025 or June 3."
    )

    # The mistyped date cost no cooldown: this question gets as far as looking the source up.
    unknown = await fake.send_interaction("ask", {"question": "Any news?", "source": "Bloomberg"})
    assert (await fake.wait_for_callback(unknown)).json["type"] == DEFERRED
    report = await fake.wait_for_followup(unknown, timeout=20)
    assert report.json["flags"] == EPHEMERAL
    assert report.json["content"] == "no source or outlet called 'Bloomberg'"
    deleted = [r for r in fake.interaction_requests(unknown) if r.method == "DELETE"]
    assert deleted, "the public thinking… placeholder is removed"


async def test_source_autocomplete_offers_only_what_this_server_can_search(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Typing a source offers matching source names and outlets, never another server's."""
    options = fake.commands()["ask"]["options"]
    assert [(o["name"], bool(o.get("autocomplete"))) for o in options] == [
        ("question", False),
        ("source", True),
        ("since", False),
    ]

    async def offered(typed: str, **kw: Any) -> list[str]:
        typing = await fake.send_autocomplete("ask", "source", typed, **kw)
        choices = (await fake.wait_for_callback(typing)).json["data"]["choices"]
        assert all(choice["name"] == choice["value"] for choice in choices)
        return [choice["value"] for choice in choices]

    assert await offered("") == ["courier", "herald", COURIER, "Marlow County Herald"]
    assert await offered("COUR") == ["courier", COURIER]
    assert await offered("post") == []
    server_b = {"guild_id": GUILD_B, "channel_id": CHANNEL_B, "user_id": BOB}
    assert await offered("", **server_b) == [
        "post",
        "herald",
        "Quarry Valley Post",
        "Marlow County Herald",
    ]
    assert await offered("", dm=True) == ["herald", "Marlow County Herald"]


async def test_a_mention_is_answered_with_a_reply(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """ "@newsbot question" gets a reply with the quoted answer, pinging nobody."""
    question = await fake.send_message_create(
        f"{fake.bot_mention} when does the lantern parade start?"
    )
    reply = await fake.wait_for_request("POST", f"/channels/{CHANNEL_A}/messages", timeout=20)
    assert f"**{PARADE}**" in reply.json["embeds"][0]["description"]
    assert str(reply.json["message_reference"]["message_id"]) == question["id"]
    assert reply.json["allowed_mentions"] == {"parse": [], "replied_user": False}


async def test_a_bare_mention_is_told_how_to_ask(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """A mention with no question gets a short hint."""
    await fake.send_message_create(fake.bot_mention)
    reply = await fake.wait_for_request("POST", f"/channels/{CHANNEL_A}/messages")
    assert reply.json["content"].startswith("Ask a question")


async def test_other_messages_are_ignored(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """Messages that do not mention the bot get no reply (their text is not even delivered)."""
    await fake.send_message_create("when does the lantern parade start?")
    await fake.send_message_create(f"{fake.bot_mention} ping")  # a marker that is answered
    await fake.wait_for_request("POST", f"/channels/{CHANNEL_A}/messages", timeout=20)
    replies = [r for r in fake.requests if r.matches("POST", f"/channels/{CHANNEL_A}/messages")]
    assert len(replies) == 1


def replies(fake: FakeDiscord) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]


@asynccontextmanager
async def bot_with_intent(fake: FakeDiscord, make_context: MakeContext) -> AsyncIterator[None]:
    """The bot, with Message Content on, over the test news until the block ends."""
    context = await make_context(message_content_intent=True)
    index_news(context)
    async with run_client(NewsBot(context, background=False), fake, token=TOKEN):
        yield


async def reply_to(fake: FakeDiscord, content: str, **where: Any) -> RecordedRequest:
    """Send a message (``channel_id=...`` for a thread) and wait for the bot's reply to it."""
    message = await fake.send_message_create(content, **where)
    return await fake.wait_for(replying_to(message), timeout=20)


async def test_follow_ups_in_a_thread_are_answered_with_the_intent(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """With Message Content on, follow-ups in a thread the bot answered need no mention."""
    async with bot_with_intent(fake, make_context):
        await reply_to(
            fake, f"{fake.bot_mention} when does the lantern parade start?", channel_id=THREAD_A
        )
        answer = await reply_to(fake, "How much will the ferry fares rise?", channel_id=THREAD_A)
        assert answer.path == f"/channels/{THREAD_A}/messages"
        assert "**Ferry fares between Brindle Bay and Gull Island will rise" in str(answer.json)
        elsewhere = await fake.send_message_create("How much will the ferry fares rise?")
        marker = await fake.send_message_create(f"{fake.bot_mention} ping")
        await fake.wait_for(replying_to(marker), timeout=20)
    assert not any(replying_to(elsewhere)(r) for r in replies(fake))
    assert len(replies(fake)) == 3


async def test_follow_ups_need_a_mention_without_the_intent(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Without Message Content, Discord hides un-mentioned text, so only mentions are answered."""
    first = await fake.send_message_create(f"{fake.bot_mention} lantern?", channel_id=THREAD_A)
    await fake.wait_for(replying_to(first), timeout=20)
    hidden = await fake.send_message_create("How much will ferry fares rise?", channel_id=THREAD_A)
    second = await fake.send_message_create(f"{fake.bot_mention} ferries?", channel_id=THREAD_A)
    await fake.wait_for(replying_to(second), timeout=20)
    assert not any(replying_to(hidden)(r) for r in replies(fake))
    assert len(replies(fake)) == 2


def embed_of(request: RecordedRequest) -> dict[str, Any]:
    return dict(request.json["embeds"][0])


READ_WITH = "Read with the earlier question"


async def test_a_follow_up_that_points_back_is_read_with_the_earlier_question(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """ "How much will it cost?" after the library budget quotes the budget, and says so."""
    async with bot_with_intent(fake, make_context):
        await reply_to(
            fake, f"{fake.bot_mention} What did Marlow County council approve?", channel_id=THREAD_A
        )
        in_thread = embed_of(await reply_to(fake, "How much will it cost?", channel_id=THREAD_A))
        van_question = "And the mobile library van?"
        next_one = embed_of(await reply_to(fake, van_question, channel_id=THREAD_A))
        airport = embed_of(await reply_to(fake, "What about the airport?", channel_id=THREAD_A))
        # The same words with nothing before them: the ferry fares come first.
        elsewhere = embed_of(await reply_to(fake, f"{fake.bot_mention} How much will it cost?"))
    assert in_thread["title"] == "How much will it cost?"
    assert in_thread["description"].startswith(
        "> **Marlow County council approved a budget of 2.3 million for its libraries on "
        "Thursday.**"
    )
    assert in_thread["footer"]["text"].startswith(
        f"{READ_WITH}: “What did Marlow County council approve?”\nSearched "
    )
    # Still read with the question that stood alone, not with "How much will it cost?".
    assert next_one["footer"]["text"].startswith(
        f"{READ_WITH}: “What did Marlow County council approve?”\n"
    )
    # The bold sentence is the one the follow-up asks about, not the earlier question's.
    assert next_one["description"].startswith("> Marlow County council approved a budget")
    van = "**The mobile library van will return to rural villages in September.**"
    assert van in next_one["description"]
    # The library story never mentions an airport: not found, rather than the budget again.
    assert airport["description"].startswith("I couldn't find this in the indexed news.")
    assert READ_WITH not in airport["footer"]["text"]
    ferry_first = "**1.** Brindle Bay Courier · Gull Island ferry fares to rise"
    assert ferry_first in elsewhere["description"]
    assert READ_WITH not in elsewhere["footer"]["text"]


async def test_a_self_contained_follow_up_is_answered_on_its_own(
    fake: FakeDiscord, make_context: MakeContext
) -> None:
    """A follow-up that names what it asks about is searched alone, and the reply says nothing."""
    async with bot_with_intent(fake, make_context):
        await reply_to(
            fake, f"{fake.bot_mention} How much will the ferry fares rise?", channel_id=THREAD_A
        )
        # Gull Island is in the ferry story too, but the puffins have a story of their own.
        follow_up = "How many puffins were counted on Gull Island?"
        answer = embed_of(await reply_to(fake, follow_up, channel_id=THREAD_A))
    assert answer["title"] == follow_up
    assert "**Volunteers counted 2,140 puffins on Gull Island this spring" in answer["description"]
    assert answer["footer"]["text"].startswith("Searched ")
    assert READ_WITH not in answer["footer"]["text"]
