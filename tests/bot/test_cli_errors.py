"""Set-up mistakes end `newsbot` with one line saying what is wrong, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from ingest.sample import SAMPLE_CORPUS


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `newsbot ARGS` in-process against a fresh data directory."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line_error(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("foo://bar", "cannot open the database foo://bar (NEWSBOT_DATABASE_URL): no database"),
        (
            f"postgresql://nobody:secret@127.0.0.1:{closed_port()}/news",
            "cannot open the database postgresql://nobody:***@127.0.0.1:",
        ),
    ],
)
def test_a_database_url_that_cannot_work_is_one_line(
    cli, monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    """An unknown kind of database, or a server that is not there, is named (no password)."""
    monkeypatch.setenv("NEWSBOT_DATABASE_URL", url)
    result = cli("stats")
    one_line_error(result, says)
    assert "secret" not in result.output


@pytest.mark.slow
def test_a_model_that_cannot_be_had_offline_fails_at_once(tmp_path: Path) -> None:
    """An uncached hub name with the hub unreachable is one line at once, not minutes of retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "HF_"))}
    env |= {
        "NEWSBOT_DATA_DIR": str(tmp_path / "data"),
        "NEWSBOT_MODEL": "does-not-exist/model",
        "HF_HOME": str(tmp_path / "hf"),  # nothing cached
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",  # the hub cannot be reached
    }
    process = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ask", "Who won?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines()[-1] == (
        "error: cannot load embedding model 'does-not-exist/model' (NEWSBOT_MODEL): it is not a "
        "local folder, not in the Hugging Face cache, and the hub cannot be reached to download it"
    )
    assert len(process.stderr.strip().splitlines()) < 5, process.stderr


@pytest.fixture
def indexed(cli) -> None:
    """The sample corpus, ingested and indexed."""
    result = cli("ingest", str(SAMPLE_CORPUS), "--source", "sample", "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.slow
@pytest.mark.parametrize("as_of", ["last week", "2025-13-01", "17/06/2022"])
def test_an_as_of_that_is_no_iso_date_is_one_line(cli, as_of: str) -> None:
    """`ask --as-of` takes ISO dates only, and says so, before opening anything."""
    result = cli("ask", "Who won?", "--as-of", as_of)
    one_line_error(result, "--as-of must be an ISO date such as 2022-06-17")
    assert not Path("data").exists()


def test_as_of_the_end_of_the_calendar_answers(cli, indexed: None) -> None:
    """`ask --as-of 9999-12-31` answers from everything indexed instead of overflowing."""
    result = cli("ask", "How many beds does the Alder Wing add?", "--as-of", "9999-12-31")
    assert result.exit_code == 0, result.output
    assert "Alder Wing" in result.output


@pytest.mark.slow
def test_a_damaged_index_says_to_reindex_instead_of_not_found(
    cli, indexed: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable index files are an error naming `newsbot reindex`, logged; reindex repairs."""
    index = tmp_path / "data" / "index"
    for vectors in index.glob("seg-*/vectors.faiss"):
        vectors.write_bytes(b"not a faiss index")
    result = cli("ask", "How many beds does the Alder Wing add?")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: The index could not be loaded (" in result.output
    assert "rebuild it with `newsbot reindex`" in result.output
    assert "couldn't find" not in result.output
    assert any(
        r.levelname == "ERROR" and "cannot load the index" in r.getMessage() for r in caplog.records
    )
    assert cli("reindex", "--quiet").exit_code == 0
    answered = cli("ask", "How many beds does the Alder Wing add?")
    assert answered.exit_code == 0 and "Alder Wing" in answered.output
