"""Questions: admitted (length, cooldown), answered off the event loop, scoped to one server."""

from __future__ import annotations

import pytest

from bot.context import AppContext
from bot.services import Services, guild_scope
from bot.services.ask import AskService, Cooldowns, OnCooldown, paginate
from ingest.errors import InputError
from tests.bot.conftest import COURIER, GUILD_A, GUILD_B


def test_question_is_tidied(empty_context: AppContext) -> None:
    """Runs of spaces and newlines collapse to single spaces."""
    asks = AskService(empty_context)
    assert asks.admit("  when does\n the   parade start? ", 1) == "when does the parade start?"


def test_empty_and_over_long_questions_are_refused(make_context: object) -> None:
    """A blank question, or one longer than configured, is refused with the limit."""
    context = make_context(max_question_chars=40)  # type: ignore[operator]
    asks = AskService(context)
    with pytest.raises(InputError, match="Ask a question"):
        asks.admit("   ", 1)
    with pytest.raises(InputError, match=r"at most 40 characters \(yours has 41\)"):
        asks.admit("x" * 41, 1)


def test_cooldown_is_per_member() -> None:
    """A second question within the cooldown is refused, saying when to retry; others may ask."""
    now = [100.0]
    cooldowns = Cooldowns(10, clock=lambda: now[0])
    cooldowns.hit(1)
    now[0] += 3
    with pytest.raises(OnCooldown, match="again in 7 s") as refused:
        cooldowns.hit(1)
    assert refused.value.retry_after == pytest.approx(7)
    cooldowns.hit(2)
    now[0] += 7
    cooldowns.hit(1)


def test_zero_cooldown_never_refuses() -> None:
    """With the cooldown set to 0, members may ask back to back."""
    cooldowns = Cooldowns(0)
    for _ in range(3):
        cooldowns.hit(1)


def test_dms_see_only_global_sources() -> None:
    """A conversation outside any server is scoped to global sources, not to everything."""
    assert guild_scope(None) == 0
    assert guild_scope(GUILD_A) == GUILD_A


@pytest.mark.slow
async def test_answer_quotes_the_servers_own_news(services: Services) -> None:
    """A question in server A is answered from server A's articles, best sentence marked."""
    answer = await services.ask.answer("When does the lantern parade start?", GUILD_A)
    assert not answer.abstained
    first = answer.passages[0]
    assert first.source == COURIER
    assert first.highlight.startswith("The parade of 400 paper lanterns")
    assert len(answer.passages) == 3
    assert answer.more, "extra passages are fetched for the More button"


@pytest.mark.slow
async def test_servers_never_see_each_others_news(services: Services) -> None:
    """Server B's question about server A's festival never quotes server A, and vice versa."""
    from_b = await services.ask.answer("When does the lantern parade start?", GUILD_B)
    assert all(q.source != COURIER for q in from_b.passages + from_b.more + from_b.closest)
    from_a = await services.ask.answer("How long will the tunnel repairs take?", GUILD_A)
    quoted = from_a.passages + from_a.more + from_a.closest
    assert all("Quarry" not in q.title for q in quoted)
    own = await services.ask.answer("How long will the tunnel repairs take?", GUILD_B)
    assert own.passages[0].title == "Quarry Road tunnel closed after rockfall"


@pytest.mark.slow
async def test_dm_question_sees_global_news_only(services: Services) -> None:
    """Asked in a DM, only sources added by the host (global) can be quoted."""
    answer = await services.ask.answer("library budget", guild_scope(None))
    quoted = answer.passages + answer.more + answer.closest
    assert quoted
    assert {q.source for q in quoted} == {"Marlow County Herald"}


@pytest.mark.slow
async def test_answers_come_in_pages(services: Services) -> None:
    """An answer's passages are split into pages of the configured size, numbered on."""
    answer = await services.ask.answer("news from Brindle Bay", GUILD_A)
    pages = paginate(answer, 3)
    assert len(pages) == 2
    assert [p.first_number for p in pages] == [1, 4]
    assert pages[-1].is_last and not pages[0].is_last
    ids = [q.passage_id for p in pages for q in p.quotes]
    assert len(ids) == len(set(ids)) == 6
