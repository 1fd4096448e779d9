"""Scoring a ranking against members' votes (bench/eval_feedback.py), on a real index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.eval_feedback import load_votes, main, rerun, summary
from bot.resources import Resources
from bot.services.feedback import cast_vote, export_votes, record_answer
from index.search import SearchFilters
from tests.bot.conftest import GUILD_A

pytestmark = pytest.mark.slow


def _answered(context: Resources, question: str):
    return context.answerer.answer(question, k=3, filters=SearchFilters(guild_id=GUILD_A))


def test_unchanged_ranking_keeps_helpful_quotes_first_and_replaces_unhelpful_ones(
    news: Resources, tmp_path: Path
) -> None:
    """Helpful answers still lead with their quote; an answer that led with a wrong passage
    is replaced; a tie is left out; a bad line is reported."""
    engine = news.engine
    parade = _answered(news, "When does the lantern parade start?")
    ferry = _answered(news, "How much will the Gull Island ferry fares rise?")
    # As if an older ranking had led with the school roof for the ferry question.
    roof = _answered(news, "Was the school roof repaired?").passages[0]
    wrong = replace(ferry, passages=[roof, *ferry.passages])
    tied = _answered(news, "How many puffins were counted?")
    ids = [record_answer(engine, a, GUILD_A, "ask") for a in (parade, wrong, tied)]
    cast_vote(engine, ids[0], GUILD_A, 1, True)
    cast_vote(engine, ids[0], GUILD_A, 2, True)
    cast_vote(engine, ids[1], GUILD_A, 1, False)
    cast_vote(engine, ids[2], GUILD_A, 1, True)
    cast_vote(engine, ids[2], GUILD_A, 2, False)
    exported = tmp_path / "votes.jsonl"
    export_votes(engine, exported)

    voted, problems = load_votes([*exported.read_text().splitlines(), "{not json"])
    result = summary(rerun(news, voted))

    assert problems and problems[0].startswith("line 6:")
    assert {v.answer_id: v.helpful for v in voted} == {ids[0]: True, ids[1]: False}
    assert result["helpful"] == 1 and result["helpful_first"] == 1.0
    assert result["unhelpful"] == 1 and result["unhelpful_replaced"] == 1.0


def test_command_prints_the_summary(
    news: Resources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m bench.eval_feedback FILE` on the configured data directory prints JSON."""
    answer = _answered(news, "When does the lantern parade start?")
    cast_vote(news.engine, record_answer(news.engine, answer, GUILD_A, "ask"), GUILD_A, 1, True)
    exported = tmp_path / "votes.jsonl"
    export_votes(news.engine, exported)
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(news.settings.data_dir))
    monkeypatch.setenv("NEWSBOT_DATABASE_URL", news.engine.url.render_as_string())
    monkeypatch.setenv("NEWSBOT_MIN_SCORE", "0")
    monkeypatch.chdir(tmp_path)

    assert main([str(exported), "--rows"]) == 0
    out = capsys.readouterr().out
    assert "\thelpful first\tWhen does the lantern parade start?" in out
    assert json.loads(out[out.index("{") :])["helpful_first"] == 1.0
