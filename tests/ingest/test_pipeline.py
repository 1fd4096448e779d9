"""Ingesting files end to end: bad lines are reported and skipped, the rest is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from ingest.db import session_scope
from ingest.errors import InputError
from ingest.models import Article, Passage, Source
from ingest.pipeline import ingest_paths

BODY = "The Old Mill Bridge will close on Monday for fourteen months of repairs."


def stored(engine: Engine) -> dict[str, Article]:
    with session_scope(engine) as session:
        articles = list(session.scalars(select(Article)))
        session.expunge_all()
    return {a.title: a for a in articles}


def test_lines_no_database_can_take_as_given_are_cleaned_or_reported(
    engine: Engine, tmp_path: Path
) -> None:
    """A lone surrogate, a NUL, a 2,100-character URL, a 250-character outlet and JSON nested
    100,000 deep each cost at most their own line: every other line is stored."""
    lines = [
        json.dumps({"title": "Surrogate", "body": f"{BODY} \ud800 End."}),
        json.dumps({"title": "Nul\u0000 title", "body": f"{BODY}\u0000 End."}),
        json.dumps(
            {"title": "Long link", "body": BODY, "url": "https://ledger.example/" + "a" * 2100}
        ),
        json.dumps({"title": "Long outlet", "body": BODY, "source": "O" * 250}),
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"title": "Plain", "body": BODY, "url": "https://ledger.example/plain"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines), "utf-8")
    report = ingest_paths(engine, [path], "ledger")
    assert report.result.added == 5
    assert [p.removeprefix(f"{path}: ") for p in report.problems] == [
        "line 3: URL too long (2,123 characters, at most 2,000); stored without a link",
        "line 5: JSON nested too deeply",
    ]
    articles = stored(engine)
    assert articles["Surrogate"].body == f"{BODY}  End."
    assert articles["Nul title"].body == f"{BODY} End."
    assert articles["Long link"].url is None
    assert articles["Long outlet"].outlet == "O" * 200
    assert articles["Plain"].url == "https://ledger.example/plain"


def test_empty_html_file_does_not_stop_the_folders_ingest(engine: Engine, tmp_path: Path) -> None:
    """An empty .html in a folder is reported; the folder's other files are stored."""
    (tmp_path / "empty.html").write_text("")
    (tmp_path / "story.txt").write_text(f"Bridge closes\n\n{BODY}")
    report = ingest_paths(engine, [tmp_path], "folder")
    assert report.result.added == 1
    assert report.problems == [f"{tmp_path / 'empty.html'}: empty file"]


def test_source_name_too_long_for_its_column_is_refused_before_reading(
    engine: Engine, tmp_path: Path
) -> None:
    """`ingest --source` with 250 characters is a one-line error, not a database crash."""
    path = tmp_path / "story.txt"
    path.write_text(f"Bridge closes\n\n{BODY}")
    with pytest.raises(InputError, match="source name is too long"):
        ingest_paths(engine, [path], "n" * 250)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count(Source.id))) == 0


def test_chinese_and_japanese_articles_are_split_into_passages(
    engine: Engine, tmp_path: Path
) -> None:
    """Articles in scripts written without spaces get passages, as English ones do."""
    chinese = "市议会周二批准了新的有轨电车线路。工程将于明年春天开始，预计耗时两年。"
    japanese = "市議会は火曜日、新しい路面電車の路線を承認した。工事は来年の春に始まる予定だ。"
    (tmp_path / "zh.txt").write_text(f"有轨电车获批\n\n{chinese * 3}\n\n{chinese}", "utf-8")
    (tmp_path / "ja.txt").write_text(f"路面電車を承認\n\n{japanese * 3}", "utf-8")
    (tmp_path / "run.txt").write_text("Table dump\n\n" + "0123456789" * 100_000)
    ingest_paths(engine, [tmp_path], "world")
    with session_scope(engine) as session:
        rows = session.execute(
            select(Article.title, func.count(Passage.id), func.sum(func.length(Passage.text)))
            .join(Passage, Passage.article_id == Article.id)
            .group_by(Article.title)
        )
        found = {title: (count, int(chars)) for title, count, chars in rows}
    assert found["有轨电车获批"][0] >= 1
    assert found["路面電車を承認"][0] >= 1
    assert found["Table dump"] == (1000, 1_000_000)
