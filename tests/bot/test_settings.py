"""Settings as a new user writes them: the shipped .env.example, typos, values that cannot work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.settings import get_settings, misspelt_settings
from ingest.errors import InputError
from tests.conftest import REPO


@pytest.fixture
def newsbot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `newsbot ARGS` in-process in an empty folder, with no NEWSBOT_* variable set."""
    for key in list(os.environ):
        if key.upper().startswith("NEWSBOT_") or key.upper() == "DISCORD_TOKEN":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_commands_run_with_the_shipped_env_example_copied_to_env(newsbot, tmp_path: Path) -> None:
    """`cp .env.example .env` as the README says: empty lines mean "not set", commands work."""
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    folder = tmp_path / "notes"
    folder.mkdir()
    stats = newsbot("stats")
    assert stats.exit_code == 0, stats.output
    assert "sources:  0" in stats.output
    assert (tmp_path / "data" / "newsbot.db").is_file()  # NEWSBOT_DATA_DIR=./data is read
    added = newsbot("sources", "add", str(folder))
    assert added.exit_code == 0, added.output
    listed = newsbot("sources", "list")
    assert listed.exit_code == 0 and "notes" in listed.output
    assert "warning" not in stats.output + added.output + listed.output


def test_empty_values_mean_not_set(tmp_path: Path) -> None:
    """Empty role, server, token and database lines leave those settings unset."""
    env = tmp_path / ".env"
    env.write_text(
        "DISCORD_TOKEN=\nNEWSBOT_DISCORD_TEST_GUILD=\nNEWSBOT_ADMIN_ROLE_ID=\n"
        "NEWSBOT_MODERATOR_ROLE_ID=\nNEWSBOT_DATABASE_URL=\n"
    )
    settings = get_settings(_env_file=env)
    assert settings.discord_token is None and settings.discord_test_guild is None
    assert settings.admin_role_id is None and settings.moderator_role_id is None
    assert settings.database_url is None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "NEWSBOT_MIN_SCORE",
            "2",
            "NEWSBOT_MIN_SCORE='2': Input should be less than or equal to 1",
        ),
        ("NEWSBOT_MIN_SCORE", "-3", "NEWSBOT_MIN_SCORE='-3': Input should be greater than"),
        (
            "NEWSBOT_LOG_LEVEL",
            "LOUD",
            "NEWSBOT_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(
    newsbot, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    """A similarity bound outside -1..1 or an unknown log level is a one-line bad setting."""
    monkeypatch.setenv(variable, value)
    result = newsbot("stats")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: bad setting: {says}" in result.output


def test_log_level_is_read_in_any_case(tmp_path: Path) -> None:
    """`NEWSBOT_LOG_LEVEL=debug` is DEBUG, as logging spells it."""
    assert get_settings(_env_file=None, log_level="debug").log_level == "DEBUG"
    with pytest.raises(InputError):
        get_settings(_env_file=None, log_level="verbose")


def test_a_misspelt_setting_in_env_is_warned_about_with_the_nearest_name(
    newsbot, tmp_path: Path
) -> None:
    """A typo in .env is named with the setting it was probably meant to be."""
    (tmp_path / ".env").write_text("NEWSBOT_MIN_SCOR=0.2\nNEWSBOT_DATA_DIR=./data\n")
    result = newsbot("stats")
    assert result.exit_code == 0, result.output
    assert (
        "warning: NEWSBOT_MIN_SCOR is not a newsbot setting and is ignored; "
        "did you mean NEWSBOT_MIN_SCORE?"
    ) in result.output


def test_a_misspelt_setting_in_the_environment_is_warned_about(
    newsbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for an environment variable; real settings and the tests' own are not."""
    monkeypatch.setenv("NEWSBOT_REFRESH_MINUTS", "5")
    monkeypatch.setenv("NEWSBOT_REFRESH_MINUTES", "5")
    monkeypatch.setenv("NEWSBOT_TEST_POSTGRES_URL", "postgresql://x")
    result = newsbot("stats")
    assert result.output.count("warning:") == 1
    assert "NEWSBOT_REFRESH_MINUTS is not a newsbot setting" in result.output
    assert "did you mean NEWSBOT_REFRESH_MINUTES?" in result.output


def test_every_line_of_env_example_is_a_setting() -> None:
    """The shipped example names no variable that newsbot would warn about."""
    assert misspelt_settings(REPO / ".env.example", environ={}) == []


def test_env_example_holds_the_defaults() -> None:
    """Copying .env.example to .env, as the README says, changes no setting (a stale value
    there once brought back the old abstention for every new user)."""
    shipped = get_settings(_env_file=REPO / ".env.example")
    defaults = get_settings(_env_file=None)
    assert shipped.model_dump() == defaults.model_dump()
