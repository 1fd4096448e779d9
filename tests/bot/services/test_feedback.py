"""Votes on answers in the database: one per member, scoped by server, counted and exported."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from bot.services.feedback import (
    cast_vote,
    export_votes,
    helpful_share,
    record_answer,
)
from index.answer import Answer, Quote
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import GLOBAL_GUILD, Vote

GUILD = 1100000000000000100
OTHER_GUILD = 1100000000000000500


def quote(passage_id: int, score: float) -> Quote:
    return Quote(
        passage_id=passage_id,
        text=f"passage {passage_id}",
        title="A title",
        source="An outlet",
        url=None,
        published_at=None,
        score=score,
        highlight="",
        similarity=score / 2,
        coverage=0.5,
    )


def answer(question: str = "When does the parade start?") -> Answer:
    return Answer(question, False, [quote(7, 0.9), quote(3, 0.4)], 10, more=[quote(9, 0.1)])


def test_a_member_has_one_vote_per_answer_and_can_change_it(engine: Engine) -> None:
    """Voting again replaces the member's vote; the counts say so."""
    answer_id = record_answer(engine, answer(), GUILD, "ask")

    assert cast_vote(engine, answer_id, GUILD, 1, True).helpful == 1
    tally = cast_vote(engine, answer_id, GUILD, 2, False)
    changed = cast_vote(engine, answer_id, GUILD, 1, False)

    assert (tally.helpful, tally.not_helpful) == (1, 1)
    assert (changed.helpful, changed.not_helpful, changed.mine) == (0, 2, False)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Vote)) == 2


def test_concurrent_clicks_of_one_member_leave_one_vote(engine: Engine) -> None:
    """Eight threads voting for the same member at once: one row, no error."""
    answer_id = record_answer(engine, answer(), GUILD, "ask")
    errors: list[BaseException] = []

    def click(helpful: bool) -> None:
        try:
            cast_vote(engine, answer_id, GUILD, 1, helpful)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=click, args=(i % 2 == 0,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Vote)) == 1


def test_a_vote_from_another_server_is_refused(engine: Engine) -> None:
    """An answer given in one server takes no votes from another, nor for unknown ids."""
    answer_id = record_answer(engine, answer(), GUILD, "ask")

    with pytest.raises(InputError, match="no longer known here"):
        cast_vote(engine, answer_id, OTHER_GUILD, 1, True)
    with pytest.raises(InputError):
        cast_vote(engine, answer_id + 100, GUILD, 1, True)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Vote)) == 0


def test_helpful_share_counts_this_servers_last_30_days(engine: Engine) -> None:
    """Older votes and other servers' votes do not count."""
    here = record_answer(engine, answer(), GUILD, "ask")
    there = record_answer(engine, answer(), OTHER_GUILD, "mention")
    for user, helpful in ((1, True), (2, True), (3, False), (4, False)):
        cast_vote(engine, here, GUILD, user, helpful)
    cast_vote(engine, there, OTHER_GUILD, 1, False)
    with session_scope(engine) as session:
        session.execute(
            update(Vote)
            .where(Vote.user_id == 4)
            .values(voted_at=datetime.now(UTC) - timedelta(days=31))
        )

    share = helpful_share(engine, GUILD)
    assert (share.helpful, share.total) == (2, 3)
    assert helpful_share(engine, OTHER_GUILD).share == 0.0
    assert helpful_share(engine, GLOBAL_GUILD).share is None
    assert helpful_share(engine, None).total == 4


def test_export_writes_each_vote_with_its_question_and_ranked_quotes(
    engine: Engine, tmp_path: Path
) -> None:
    """JSONL, one vote a line, no member ids; ``guild`` keeps to one server."""
    here = record_answer(engine, answer(), GUILD, "check")
    refused = record_answer(
        engine, Answer("Who won?", True, [], 10, closest=[quote(5, 0.2)]), OTHER_GUILD, "ask"
    )
    cast_vote(engine, here, GUILD, 1, True)
    cast_vote(engine, refused, OTHER_GUILD, 2, False)
    out = tmp_path / "votes.jsonl"

    assert export_votes(engine, out) == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert export_votes(engine, out, GUILD) == 1
    only_here = [json.loads(line) for line in out.read_text().splitlines()]

    first = lines[0]
    assert first["question"] == "When does the parade start?"
    assert (first["guild_id"], first["kind"], first["helpful"], first["abstained"]) == (
        GUILD,
        "check",
        True,
        False,
    )
    # The first page as quoted, in rank order, with the ranking's scores.
    assert [(q["rank"], q["passage_id"], q["score"]) for q in first["quotes"]] == [
        (1, 7, 0.9),
        (2, 3, 0.4),
    ]
    assert lines[1]["abstained"] and [q["passage_id"] for q in lines[1]["quotes"]] == [5]
    assert all("user_id" not in line for line in lines)
    assert [line["guild_id"] for line in only_here] == [GUILD]
