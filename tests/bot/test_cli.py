"""The `newsbot` command line, as a user runs it (real database, index and model)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from discord.utils import escape_markdown
from typer.testing import CliRunner

from bot.app import NewsBot
from bot.cli import app
from index.answer import DEFAULT_MIN_SCORE, Answer
from ingest.pipeline import ingest_paths
from ingest.sample import SAMPLE_CORPUS
from tests.bot.conftest import GUILD_A, TOKEN, MakeContext
from tests.fakes.discord_server import FakeDiscord, run_client

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `newsbot ARGS` in-process against a fresh data directory."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


def test_ingest_then_ask_json(cli) -> None:
    """Ingesting the sample corpus makes `ask --json` quote the right passage verbatim."""
    result = cli("ingest", str(SAMPLE_CORPUS), "--source", "sample", "--quiet")
    assert result.exit_code == 0, result.output
    assert "12 new" in result.output
    result = cli("ask", "How many jobs is Brightloom Software cutting?", "--json", "--k", "2")
    data = json.loads(result.stdout)
    assert data["abstained"] is False and 1 <= len(data["passages"]) <= 2
    assert "1,150" in data["passages"][0]["text"]
    # No filler: a second quote only from the same story (none from the dockworkers' strike).
    assert all(p["title"].startswith("Brightloom Software") for p in data["passages"])
    assert data["passages"][0]["source"] == "Valley Wire"


def test_second_ingest_adds_nothing_and_embeds_nothing(cli) -> None:
    """Re-ingesting unchanged files stores and embeds nothing new."""
    cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    result = cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    assert "0 new" in result.output and "12 unchanged" in result.output
    assert "0 embedded" in result.output
    assert "0 embedded" in cli("reindex", "--quiet").output


def test_stats_reports_counts_and_model(cli) -> None:
    """`stats` shows sources, articles, passages, index size and model."""
    cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    output = cli("stats").output
    assert "articles: 12" in output and "all-MiniLM-L6-v2" in output and "vectors" in output


def test_switching_the_embedding_backend_rebuilds_the_index(cli, monkeypatch) -> None:
    """`stats` names the backend that made the index; another backend's `reindex` rebuilds it."""
    monkeypatch.setenv("NEWSBOT_EMBEDDING_BACKEND", "torch")
    cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    assert "all-MiniLM-L6-v2 (384 dimensions)" in cli("stats").output
    monkeypatch.setenv("NEWSBOT_EMBEDDING_BACKEND", "onnx")
    result = cli("reindex", "--quiet")
    assert result.exit_code == 0, result.output
    assert "all-MiniLM-L6-v2 (onnx int8) (384 dimensions)" in cli("stats").output
    answer = json.loads(cli("ask", "How many jobs is Brightloom cutting?", "--json").stdout)
    assert "1,150" in answer["passages"][0]["text"]


def test_a_bad_setting_is_named_without_a_traceback(cli, monkeypatch) -> None:
    """A setting out of range or not one of its choices is named, with what it must be."""
    monkeypatch.setenv("NEWSBOT_EMBEDDING_BACKEND", "gpu")
    monkeypatch.setenv("NEWSBOT_MIN_COVERAGE", "5")
    monkeypatch.setenv("NEWSBOT_SOURCE_DEADLINE_SECONDS", "0")
    result = cli("stats")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "NEWSBOT_EMBEDDING_BACKEND='gpu': Input should be 'onnx' or 'torch'" in result.output
    assert "NEWSBOT_MIN_COVERAGE='5'" in result.output
    assert "NEWSBOT_SOURCE_DEADLINE_SECONDS='0': Input should be greater than 0" in result.output


def test_questions_file_gives_one_json_line_each(cli, tmp_path: Path) -> None:
    """`ask --questions FILE` answers line by line, in order: blank lines and errors included."""
    cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    questions = tmp_path / "q.txt"
    questions.write_text(
        "Who won the Northern Cup final?\n\nHow long should sourdough proof?\n   \n"
        + "x" * 600
        + "\n"
    )
    result = cli("ask", "--questions", str(questions), "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("abstained") for line in lines] == [False, None, True, None, None]
    assert lines[1] == lines[3] == {"question": "", "error": "the question is empty"}
    assert "too long" in lines[4]["error"]
    assert lines[0]["question"] == "Who won the Northern Cup final?"


def test_bad_inputs_give_one_line_errors(cli, tmp_path: Path) -> None:
    """Missing paths and empty questions fail clearly, without a traceback."""
    result = cli("ingest", str(tmp_path / "missing"), "--quiet")
    assert result.exit_code == 1
    assert "error: no such file or folder" in result.output
    assert "Traceback" not in result.output
    result = cli("ask", "   ")
    assert result.exit_code == 2 and "the question is empty" in result.output


def test_malformed_jsonl_keeps_good_lines(cli, tmp_path: Path) -> None:
    """A broken JSONL line is reported by number; the good lines are ingested."""
    path = tmp_path / "news.jsonl"
    good = {"title": "Ferry suspended", "body": "The ferry service was suspended on Monday."}
    path.write_text(json.dumps(good) + "\n{broken\n")
    result = cli("ingest", str(path), "--quiet")
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long paths at the terminal width
    assert "line 2" in output and "1 new" in output


def test_run_without_token_opens_console(tmp_path: Path) -> None:
    """`newsbot run` with no DISCORD_TOKEN ingests the samples, says so and answers locally."""
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["NEWSBOT_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--quiet"],
        input="How many beds does the Alder Wing add?\n/quit\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert process.returncode == 0, process.stderr
    assert "DISCORD_TOKEN is not set" in process.stderr
    assert " DEBUG " not in process.stderr  # libraries' debug lines stay out of the console
    assert "Alder Wing" in process.stdout and "120" in process.stdout


def test_terminal_escapes_in_a_local_file_never_reach_the_terminal(cli, tmp_path: Path) -> None:
    """ESC[2J, colours and an OSC 8 link in an ingested file are not printed by ask or console."""
    story = tmp_path / "hostile.txt"
    story.write_text(
        "\x1b[2J\x1b[31mOld Mill Bridge closes\x1b[0m\n\n"
        "The \x1b]8;;https://evil.example/\x1b\\Old Mill Bridge\x1b]8;;\x1b\\ will close on Monday"
        " for fourteen months of repairs, the county said.\x07\x1b[H\x1b[2J"
    )
    assert cli("ingest", str(story), "--quiet").exit_code == 0
    asked = cli("ask", "When will the Old Mill Bridge close?")
    console = cli("console", input="When will the Old Mill Bridge close?\n/quit\n")
    for output in (asked.output, console.output):
        assert "will close on Monday" in output
        assert "\x1b" not in output and "\x07" not in output


def test_escape_sequences_already_stored_are_not_printed_either() -> None:
    """A passage stored before ingest sanitised text prints without its escape sequences."""
    from datetime import UTC, datetime
    from io import StringIO

    from rich.console import Console

    from bot.cli import print_answer
    from index.answer import Answer, Quote

    quote = Quote(
        passage_id=1,
        text="\x1b[2JThe bridge \x1b]8;;https://evil.example/\x07closes\x1b]8;;\x07 on Monday.",
        title="Bridge \x1b[31mcloses",
        source="Ledger",
        url="https://ledger.example/bridge",
        published_at=datetime(2024, 5, 6, tzinfo=UTC),
        score=0.7,
        highlight="",
    )
    screen = StringIO()
    print_answer(Answer("When?", False, [quote], 1), Console(file=screen, width=200))
    assert "\x1b" not in screen.getvalue() and "\x07" not in screen.getvalue()
    assert "The bridge closes on Monday." in screen.getvalue()


def test_two_ingests_of_the_same_folder_at_once_both_succeed(tmp_path: Path, sqlite_engine) -> None:
    """Two `newsbot ingest` processes of one folder both exit 0; each article is stored and
    indexed once. (tests/ingest/test_store_races.py races the writes on PostgreSQL too.)"""
    engine = sqlite_engine
    from sqlalchemy import func, select

    from index.vectors import read_manifest
    from ingest.db import session_scope
    from ingest.models import Article, Passage

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env["NEWSBOT_DATA_DIR"] = str(tmp_path / "data")
    env["NEWSBOT_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "bot.cli", "ingest", str(SAMPLE_CORPUS), "--quiet"]
    runs = [
        subprocess.Popen(
            [*command, "--source", "sample"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-2000:]
    # "sample: 12 new, 0 updated, 0 unchanged, ..." from one, "0 new, ... 12 unchanged" from
    # the other (whichever lost the race read the winner's rows instead of failing).
    counts = [
        tuple(int(n) for n in re.findall(r"(\d+) (?:new|updated|unchanged)", stdout))
        for stdout, _ in outputs
    ]
    assert sorted(counts) == [(0, 0, 12), (12, 0, 0)]
    with session_scope(engine) as session:
        articles = session.scalar(select(func.count(func.distinct(Article.key))))
        rows = session.scalar(select(func.count(Article.id)))
        passages = session.scalar(select(func.count(Passage.id)))
    assert articles == rows == 12
    manifest = read_manifest(tmp_path / "data" / "index")
    assert manifest is not None and manifest.count == passages


PARITY_QUESTIONS = [
    "How many jobs is Brightloom Software cutting?",
    "When will the Carrow Museum reopen?",
    "How much will the Eastshore tram line cost?",
    "What is the capital of Australia?",
]


async def test_ask_json_holds_what_slash_ask_shows(
    fake: FakeDiscord, make_context: MakeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ask --json` and /ask quote the same passages in the same order, or list the same
    closest articles when they refuse."""
    # The product's defaults on both sides (the bot fixtures pad answers for their paging tests).
    context = await make_context(min_score=DEFAULT_MIN_SCORE, related_quotes_only=True)
    ingest_paths(context.engine, [SAMPLE_CORPUS], "sample")
    context.retriever.sync()
    bot = NewsBot(context, background=False)
    shown: list[Answer] = []
    answer = bot.services.ask.answer

    async def recorded(*args: Any, **kwargs: Any) -> Answer:
        shown.append(await answer(*args, **kwargs))
        return shown[-1]

    monkeypatch.setattr(bot.services.ask, "answer", recorded)
    embeds = []
    async with run_client(bot, fake, token=TOKEN):
        await fake.wait_for_request("PUT", f"/applications/{fake.application_id}/commands")
        for question in PARITY_QUESTIONS:
            interaction = await fake.send_interaction("ask", {"question": question})
            embeds.append((await fake.wait_for_followup(interaction, timeout=30)).json["embeds"][0])
    file = tmp_path / "questions.txt"
    file.write_text("\n".join(PARITY_QUESTIONS) + "\n")
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(context.settings.data_dir))
    monkeypatch.chdir(tmp_path)
    # In a thread, as from a terminal: a command runs its own event loop, not inside this one.
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["ask", "--questions", str(file), "--guild", str(GUILD_A)],
        catch_exceptions=False,
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(shown) == len(embeds) == len(PARITY_QUESTIONS)
    assert [r["abstained"] for r in records] == [False, False, False, True]
    for record, seen, embed in zip(records, shown, embeds, strict=True):
        page = seen.passages[: context.settings.answer_passages]
        assert [p["passage_id"] for p in record["passages"]] == [q.passage_id for q in page]
        assert [p["text"] for p in record["passages"]] == [q.text for q in page]
        description = embed["description"]
        for number, passage in enumerate(record["passages"], start=1):
            title = escape_markdown(passage["title"])
            assert f"**{number}.** {escape_markdown(passage['source'])} · {title} · " in description
            assert f"**{escape_markdown(passage['highlight'])}**" in description
        if record["abstained"]:
            closest = record["closest"]
            assert closest and set(closest[0]) == {"title", "source", "url", "published_at"}
            lines = description.split("Closest articles:")[1].strip().splitlines()
            assert len(lines) == len(closest)
            for line, article in zip(lines, closest, strict=True):
                assert escape_markdown(article["title"]) in line


def test_feedback_export_writes_the_votes_as_jsonl(cli, tmp_path: Path) -> None:
    """`newsbot feedback export FILE [--guild ID]` writes one vote a line and says how many."""
    from bot.services.feedback import cast_vote, record_answer
    from ingest.db import open_engine

    (tmp_path / "data").mkdir()
    engine = open_engine(f"sqlite:///{tmp_path / 'data' / 'newsbot.db'}")
    for guild, helpful in ((GUILD_A, True), (7, False)):
        answered = Answer("When does the parade start?", False, [], 5)
        cast_vote(engine, record_answer(engine, answered, guild, "ask"), guild, 1, helpful)
    engine.dispose()

    everything = cli("feedback", "export", "votes.jsonl")
    lines = (tmp_path / "votes.jsonl").read_text().splitlines()
    one_server = cli("feedback", "export", "mine.jsonl", "--guild", str(GUILD_A))
    mine = [json.loads(line) for line in (tmp_path / "mine.jsonl").read_text().splitlines()]
    unwritable = cli("feedback", "export", str(tmp_path / "missing" / "votes.jsonl"))

    assert everything.exit_code == 0 and "2 votes written to votes.jsonl" in everything.output
    assert [json.loads(line)["helpful"] for line in lines] == [True, False]
    assert one_server.exit_code == 0 and [v["guild_id"] for v in mine] == [GUILD_A]
    assert unwritable.exit_code == 1 and unwritable.output.startswith("error: cannot write")
