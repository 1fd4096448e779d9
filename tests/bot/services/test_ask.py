"""Questions: admitted (length, cooldown), answered off the event loop, scoped to one server."""

from __future__ import annotations

import pytest

from bot.context import AppContext
from bot.services import Services, guild_scope
from bot.services.ask import (
    AskService,
    Cooldowns,
    FollowUpAnswer,
    OnCooldown,
    holds_its_words,
    leans_on_earlier,
    names_its_own_subject,
    paginate,
    paired_question,
)
from index.answer import MAX_QUESTION_CHARS, Answer, Quote
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


@pytest.mark.parametrize(
    "follow_up",
    [
        "How many votes did it get?",
        "Where do they nest?",
        "What did she say about the budget?",
        "Did she beat Pryce?",  # the name comes after "she": it is not what "she" means
        "Who said that?",
        "How many people live there?",
        "What happened that year?",
        "What did I say about it?",
        "And the fish market?",
        "What about the airport?",
        "how about the ferry?",
        "What else did the council approve?",
    ],
)
def test_follow_ups_that_point_back_lean_on_the_earlier_question(follow_up: str) -> None:
    """A lead-in, or a pronoun with no name before it to mean, points at the earlier question."""
    assert leans_on_earlier(follow_up)


@pytest.mark.parametrize(
    "follow_up",
    [
        "How much will the ferry fares rise?",
        "Did Okafor say she would run again?",
        "Where is Gull Island and how do I get there?",
        "Is there a backlog at the port?",
        "Are there more strikes planned?",
        "What happened this week?",
        "Andover council news?",
        "When?",
    ],
)
def test_follow_ups_that_stand_alone_do_not_lean(follow_up: str) -> None:
    """Pronouns that mean a name in the follow-up, "is there", "this week" point nowhere back."""
    assert not leans_on_earlier(follow_up)


def passage(text: str, title: str = "Gull Island ferry fares to rise") -> Quote:
    return Quote(1, text, title, COURIER, None, None, 0.5, "")


FARES = passage("Ferry fares will rise by 12 percent from July, the operator announced.")


def test_a_pair_reading_must_hold_the_follow_ups_own_words() -> None:
    """Passages that never mention what the follow-up is about do not answer it."""
    fares = Answer("How much will the fares rise? Who won the election?", False, [FARES], 6)
    assert not holds_its_words("Who won the election?", fares)
    assert holds_its_words("Who announced it?", fares)
    assert holds_its_words("Which island?", fares)  # the title counts, as in search
    assert holds_its_words("When?", fares)  # nothing of its own to hold
    assert holds_its_words("And what else?", fares)  # nor has a lead-in alone


@pytest.mark.parametrize(
    ("follow_up", "names_one"),
    [
        ("What about the airport?", True),
        ("And the fish market?", True),
        ("What else was approved?", True),
        ("And when did it open?", False),  # "it" is the earlier story
        ("How many votes did it get?", False),
        ("Who won the election?", False),  # no lead-in: a question of its own
    ],
)
def test_a_lead_in_without_a_pointer_names_its_own_subject(follow_up: str, names_one: bool) -> None:
    """ "What about X?" asks about X, which the pair's passages must then hold."""
    assert names_its_own_subject(follow_up) is names_one


def test_the_paired_question_keeps_the_follow_up_whole_within_the_limit() -> None:
    """The pair is the earlier question then the follow-up; a long earlier question is cut."""
    assert paired_question("What did the council approve?", "How many votes did it get?") == (
        "What did the council approve? How many votes did it get?"
    )
    follow_up = ("And " + "the harbour wall " * 25).strip()
    long = paired_question("what about " * 45, follow_up)
    assert len(long) <= MAX_QUESTION_CHARS
    assert long.startswith("what about")
    assert long.endswith(follow_up)


def test_the_next_follow_up_is_read_with_the_last_question_that_stood_alone() -> None:
    """After a follow-up read with an earlier question, that earlier question stays in use."""
    answered = Answer("How many votes did it get?", False, [], 6)
    assert FollowUpAnswer(answered, "What did the council approve?").earlier_for_next == (
        "What did the council approve?"
    )
    assert FollowUpAnswer(answered).earlier_for_next == "How many votes did it get?"


@pytest.mark.slow
async def test_a_follow_up_that_points_back_is_searched_with_the_earlier_question(
    services: Services,
) -> None:
    """ "How much will it cost?" after the library budget quotes the budget, not ferry fares."""
    asks = services.ask
    alone = await asks.answer_follow_up("How much will it cost?", None, GUILD_A)
    assert alone.read_with is None
    assert alone.answer.passages[0].title == "Gull Island ferry fares to rise"

    earlier = "What did Marlow County council approve?"
    reply = await asks.answer_follow_up("How much will it cost?", earlier, GUILD_A)
    assert reply.read_with == earlier
    assert reply.answer.question == "How much will it cost?"
    assert reply.answer.passages[0].title == "Marlow County approves library budget"


@pytest.mark.slow
async def test_a_follow_up_that_finds_nothing_alone_is_searched_with_the_earlier_question(
    services: Services,
) -> None:
    """ "When?" finds nothing by itself; after the ferry fares question it finds their date."""
    earlier = "How much will the ferry fares rise?"
    assert (await services.ask.answer_follow_up("When?", None, GUILD_A)).answer.abstained
    reply = await services.ask.answer_follow_up("When?", earlier, GUILD_A)
    assert reply.read_with == earlier
    assert not reply.answer.abstained
    assert "from July" in reply.answer.passages[0].highlight


@pytest.mark.slow
@pytest.mark.parametrize(
    ("earlier", "follow_up"),
    [
        ("How much will the ferry fares rise?", "Who won the election?"),
        ("What did Marlow County council approve?", "What about the airport?"),
    ],
)
async def test_a_follow_up_on_something_never_indexed_keeps_its_own_not_found(
    services: Services, earlier: str, follow_up: str
) -> None:
    """An unindexed story asked after another is not answered with that story again."""
    reply = await services.ask.answer_follow_up(follow_up, earlier, GUILD_A)
    assert reply.read_with is None
    assert reply.answer.abstained
    assert reply.earlier_for_next == follow_up


@pytest.mark.slow
async def test_a_lead_in_about_a_detail_of_the_earlier_story_is_read_with_it(
    services: Services,
) -> None:
    """ "And the cost?" names no new subject ("cost" is indexed): the budget, read with it."""
    earlier = "What did Marlow County council approve?"
    reply = await services.ask.answer_follow_up("And the cost?", earlier, GUILD_A)
    assert reply.read_with == earlier
    assert reply.answer.passages[0].title == "Marlow County approves library budget"


@pytest.mark.slow
async def test_a_paired_follow_up_highlights_the_sentence_it_asks_about(
    services: Services,
) -> None:
    """ "And the mobile library van?" is read with the budget question but bolds the van."""
    earlier = "What did Marlow County council approve?"
    reply = await services.ask.answer_follow_up("And the mobile library van?", earlier, GUILD_A)
    assert reply.read_with == earlier
    assert reply.answer.passages[0].highlight.startswith("The mobile library van will return")
