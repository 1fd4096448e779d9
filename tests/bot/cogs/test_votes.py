"""Members' "Helpful" / "Not helpful" votes on answers, through the real client."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import NewsBot
from bot.resources import Resources
from ingest.db import session_scope
from ingest.models import AnswerRecord, Vote
from tests.bot.conftest import (
    BOB,
    CHANNEL_B,
    EPHEMERAL,
    GUILD_A,
    GUILD_B,
    THREAD_A,
    TOKEN,
    command,
    replying_to,
)
from tests.fakes.discord_server import OWNER_ID, USER_ID, FakeDiscord, run_client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def asked(fake: FakeDiscord, question: str, **kw: Any) -> tuple[int, dict[str, str]]:
    """/ask ``question``; the answer's message id and its vote buttons' ids by label."""
    interaction = await fake.send_interaction("ask", {"question": question}, **kw)
    answer = await fake.wait_for_followup(interaction, timeout=20)
    assert interaction.original_message_id is not None
    return interaction.original_message_id, vote_ids(answer.json)


def vote_ids(message: dict[str, Any]) -> dict[str, str]:
    return {
        button["label"]: button["custom_id"]
        for row in message.get("components") or []
        for button in row["components"]
        if button["custom_id"].startswith("newsbot:vote:")
    }


async def vote(fake: FakeDiscord, message_id: int, custom_id: str, **kw: Any) -> dict[str, Any]:
    """Click a vote button; what the voter is told (privately)."""
    click = await fake.send_component_interaction(message_id, custom_id, **kw)
    reply = await fake.wait_for_callback(click)
    return dict(reply.json["data"])


async def test_votes_are_counted_once_per_member_and_can_change(
    fake: FakeDiscord, newsbot: NewsBot, news: Resources
) -> None:
    """Two members vote, one changes their mind: each is told the counts privately."""
    message_id, ids = await asked(fake, "When does the lantern parade start?")
    assert list(ids) == ["Helpful", "Not helpful"]

    first = await vote(fake, message_id, ids["Helpful"], user_id=USER_ID)
    second = await vote(fake, message_id, ids["Not helpful"], user_id=OWNER_ID)
    again = await vote(fake, message_id, ids["Helpful"], user_id=USER_ID)
    changed = await vote(fake, message_id, ids["Not helpful"], user_id=USER_ID)

    assert first["flags"] == EPHEMERAL
    assert "marked this answer helpful. So far 1 found it helpful and 0 did not" in first["content"]
    assert "So far 1 found it helpful and 1 did not" in second["content"]
    assert "So far 1 found it helpful and 1 did not" in again["content"]
    assert "not helpful. So far 0 found it helpful and 2 did not" in changed["content"]
    with session_scope(news.engine) as session:
        votes = session.scalars(select(Vote)).all()
        answer = session.scalars(select(AnswerRecord)).one()
        quoted = [(q.rank, q.passage_id, q.score) for q in answer.quotes]
    assert sorted((v.user_id, v.helpful) for v in votes) == [(OWNER_ID, False), (USER_ID, False)]
    assert (answer.question, answer.kind, answer.guild_id) == (
        "When does the lantern parade start?",
        "ask",
        GUILD_A,
    )
    assert quoted and quoted[0][0] == 1 and all(score > 0 for _, _, score in quoted)


async def test_paging_keeps_the_vote_buttons(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """ "More passages" shows the next page with the same answer's vote buttons under it."""
    message_id, ids = await asked(fake, "What is new in Brindle Bay?")
    more = await fake.send_component_interaction(message_id, "newsbot:answer:more")
    page = await fake.wait_for_callback(more)
    assert page.json["type"] == 7
    assert vote_ids(page.json["data"]) == ids


async def test_anyone_may_vote_on_a_paged_answer_even_after_its_pages_expire(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """Paging is the asker's; votes are everyone's, and outlive the paging buttons."""
    cog = newsbot.get_cog("AskCog")
    assert cog is not None
    cog.view_timeout = 0.3  # type: ignore[attr-defined]
    message_id, ids = await asked(fake, "What is new in Brindle Bay?")
    edit = await fake.wait_for(
        lambda r: r.method == "PATCH" and r.path.endswith(f"/{message_id}"), timeout=10
    )
    paging, votes = edit.json["components"]
    assert all(button["disabled"] for button in paging["components"])
    assert not any(button.get("disabled") for button in votes["components"])

    told = await vote(fake, message_id, ids["Helpful"], user_id=OWNER_ID)
    assert "So far 1 found it helpful" in told["content"]


async def test_votes_work_after_a_restart(fake: FakeDiscord, news: Resources) -> None:
    """Buttons of an answer given before a restart still record the vote."""
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        message_id, ids = await asked(fake, "When does the lantern parade start?")
    async with run_client(NewsBot(news, background=False), fake, token=TOKEN):
        told = await vote(fake, message_id, ids["Helpful"])
    assert "So far 1 found it helpful" in told["content"]


async def test_mention_and_thread_answers_get_votes_too(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """A reply to a mention, in a channel or a thread, carries the vote buttons."""
    for channel, kind in ((None, "mention"), (THREAD_A, "thread")):
        question = await fake.send_message_create(
            f"{fake.bot_mention} when does the lantern parade start?", channel_id=channel
        )
        reply = await fake.wait_for(replying_to(question), timeout=20)
        assert list(vote_ids(reply.json)) == ["Helpful", "Not helpful"], kind
        told = await vote(fake, int(reply.response["id"]), vote_ids(reply.json)["Helpful"])
        assert "So far 1 found it helpful" in told["content"]
    context = newsbot.resources
    with session_scope(context.engine) as session:
        kinds = session.scalars(select(AnswerRecord.kind).order_by(AnswerRecord.id)).all()
    assert kinds == ["mention", "thread"]


async def test_about_shows_the_share_of_helpful_votes_of_this_server(
    fake: FakeDiscord, newsbot: NewsBot
) -> None:
    """/about: 50% of 2 votes here; another server has none of them."""
    message_id, ids = await asked(fake, "When does the lantern parade start?")
    await vote(fake, message_id, ids["Helpful"], user_id=USER_ID)
    await vote(fake, message_id, ids["Not helpful"], user_id=OWNER_ID)

    here = await command(fake, "about")
    there = await command(fake, "about", guild_id=GUILD_B, channel_id=CHANNEL_B, user_id=BOB)

    def votes(shown: dict[str, Any]) -> str:
        fields = {f["name"]: f["value"] for f in shown["embeds"][0]["fields"]}
        return fields["Helpful votes"]

    assert votes(here) == "50% of 2 votes in the last 30 days"
    assert votes(there) == "no votes in the last 30 days"
