import pytest

from index.answer_types import AGE, MONEY, NUMBER, PERSON, PLACE, TIME, holds_fact, wanted_fact


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much will a single ride on the tram cost?", MONEY),
        ("how much money is the family suing for", MONEY),
        ("What does parking at the Alder Wing cost?", MONEY),
        ("How many jobs will the tram line create?", NUMBER),
        ("How old is Denise Okafor?", AGE),
        ("When will construction start?", TIME),
        ("What time does the museum close each day?", TIME),
        ("Who is the mayor of Carrow?", PERSON),
        ("whats the name of the superintendent", PERSON),
        ("Where did the fire start?", PLACE),
        ("Tell me about the wildfire", None),
        ("Why did the bridge close?", None),
    ],
)
def test_the_kind_of_fact_a_question_asks_for(question: str, kind: str | None) -> None:
    """Each way of asking for an amount, a number, an age, a date, a name or a place is read."""
    assert wanted_fact(question) == kind


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        (MONEY, "The line will cost $1.18 billion.", True),
        (MONEY, "Fares rise by 30 pence.", True),
        (MONEY, "The line will have 14 stops.", False),
        (NUMBER, "Fourteen stops are planned.", True),
        (NUMBER, "The stops are planned.", False),
        (AGE, "Okafor, 52, thanked her supporters.", True),
        (AGE, "Okafor thanked 52 supporters.", False),
        (TIME, "Work starts in March.", True),
        (TIME, "The museum opens at 10 a.m. daily.", True),
        (TIME, "Work starts soon.", False),
        (PERSON, "The plan was approved by Denise Okafor on a vote.", True),
        (PERSON, "the plan was approved on a vote.", False),
        (PLACE, "The fire started near Sorrel Ridge.", True),
    ],
)
def test_whether_a_text_holds_a_fact_of_a_kind(kind: str, text: str, holds: bool) -> None:
    """Money, numbers, ages, dates and times, names and places are recognised in news text."""
    assert holds_fact(kind, text) is holds
