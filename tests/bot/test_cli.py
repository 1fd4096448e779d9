"""The `newsbot` command line, as a user runs it (real database, index and model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from ingest.sample import SAMPLE_CORPUS

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
    result = cli("stats")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "NEWSBOT_EMBEDDING_BACKEND='gpu': Input should be 'onnx' or 'torch'" in result.output
    assert "NEWSBOT_MIN_COVERAGE='5'" in result.output


def test_questions_file_gives_one_json_line_each(cli, tmp_path: Path) -> None:
    """`ask --questions FILE --json` answers line by line, errors included."""
    cli("ingest", str(SAMPLE_CORPUS), "--quiet")
    questions = tmp_path / "q.txt"
    questions.write_text(
        "Who won the Northern Cup final?\n\nHow long should sourdough proof?\n" + "x" * 600 + "\n"
    )
    result = cli("ask", "--questions", str(questions), "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("abstained") for line in lines] == [False, True, None]
    assert "too long" in lines[2]["error"]


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
