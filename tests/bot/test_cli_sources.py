"""`newsbot sources ...` and `newsbot refresh`, as an operator runs them, against a local server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, event
from typer.testing import CliRunner, Result

from bot.cli import app
from ingest.db import open_database
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_server: LocalServer) -> Cli:
    """Runs `newsbot ARGS` in-process with a fresh data directory that may fetch the server."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NEWSBOT_DATABASE_URL", raising=False)
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_HOSTS", web_server.host_port)
    monkeypatch.chdir(tmp_path)  # no stray .env
    # Wide consoles, so table cells and long URLs are not folded across lines.
    monkeypatch.setattr("bot.cli.out", Console(width=400))
    monkeypatch.setattr("bot.cli.err", Console(width=400, stderr=True))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_every_command_disposes_the_engine_it_opened(
    cli: Cli, web_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command opens the database once and disposes of it before it returns."""
    import bot.resources

    opened: list[Engine] = []
    disposed: list[Engine] = []

    def recorded(url: str) -> Engine:
        engine = open_database(url)
        event.listen(engine, "engine_disposed", disposed.append)
        opened.append(engine)
        return engine

    monkeypatch.setattr(bot.resources, "open_database", recorded)
    assert cli("sources", "add", web_server.url("/status/500"), "--name", "Broken").exit_code == 0
    assert cli("sources", "list").exit_code == 0
    assert cli("refresh").exit_code == 1  # the source fails; the command still cleans up
    assert len(opened) == 3 and disposed == opened


def table_row(output: str, name: str) -> list[str]:
    """The cells of the `sources list` row naming ``name``."""
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_add_then_list_shows_the_new_source(cli: Cli, web_server: LocalServer) -> None:
    """An added URL is listed with its name, kind, owner and no fetch yet."""
    url = web_server.url("/site/courier/feed.xml")
    added = cli("sources", "add", url, "--name", "Courier", "--guild", "42")
    assert added.exit_code == 0, added.output
    assert f"added source 1: Courier (web) {url}" in added.output
    assert "newsbot refresh --source 1" in added.output
    row = table_row(cli("sources", "list").output, "Courier")
    assert row[:6] == ["1", "Courier", "web", url, "42", "never"]
    assert "Courier" not in cli("sources", "list", "--guild", "7").output


def test_bad_sources_are_refused_with_one_line(cli: Cli, web_server: LocalServer) -> None:
    """Other schemes, missing paths and duplicates are refused clearly, without a traceback."""
    for location, message in [
        ("ftp://files.example/feed.xml", "only http and https sources are allowed"),
        ("file:///etc/passwd", "only http and https sources are allowed"),
        ("/no/such/folder", "no such file or folder"),
    ]:
        result = cli("sources", "add", location)
        assert result.exit_code == 1 and f"error: {message}" in result.output
        assert "Traceback" not in result.output
    url = web_server.url("/site/courier/feed.xml")
    cli("sources", "add", url)
    again = cli("sources", "add", url)
    assert again.exit_code == 1 and "already a source" in again.output
    assert "no sources yet" not in cli("sources", "list").output


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/feed", "refused: a loopback address (127.0.0.1)"),
        ("http://localhost:8080/rss", "refused: localhost resolves to a loopback address"),
    ],
)
def test_internal_addresses_are_refused_when_added(cli: Cli, url: str, reason: str) -> None:
    """`sources add` runs the fetcher's address check, so the mistake shows at once."""
    result = cli("sources", "add", url)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"error: {reason}" in result.output
    assert "newsbot fetches only public addresses" in result.output
    assert "no sources yet" in cli("sources", "list").output


def test_list_without_sources_says_how_to_add_one(cli: Cli) -> None:
    """An empty database points at `sources add`."""
    assert "newsbot sources add" in cli("sources", "list").output


def test_refresh_failure_is_shown_recorded_and_exits_1(cli: Cli, web_server: LocalServer) -> None:
    """A source redirecting to an internal address fails with its reason; others still run."""
    cli("sources", "add", web_server.url("/redirect/chain/1"), "--name", "Sneaky")
    cli("sources", "add", web_server.url("/status/500"), "--name", "Broken")
    result = cli("refresh", "--quiet")
    assert result.exit_code == 1
    assert "Sneaky (#1, web): error: " + web_server.url("/redirect/chain/1") in result.output
    assert "link-local address (169.254.169.254)" in result.output
    assert "Broken (#2, web): error:" in result.output and "HTTP 500" in result.output
    listed = cli("sources", "list").output
    assert "refused: resolves to a link-local address" in listed
    # Failed sources back off: a plain refresh right after has nothing due.
    again = cli("refresh", "--quiet")
    assert again.exit_code == 0 and "2 sources not due yet" in again.output


def test_refresh_stops_a_dripping_source_at_the_deadline_setting(
    cli: Cli, web_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NEWSBOT_SOURCE_DEADLINE_SECONDS stops a feed whose entry page drips, and is its error."""
    entry = "/dyn/cli-deadline/drip.html"
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Drip</title><item>'
        f"<title>Slow</title><link>{web_server.url(entry)}</link></item></channel></rss>"
    )
    with web_server.lock:
        web_server.dynamic["/dyn/cli-deadline/feed.xml"] = (feed.encode(), "application/rss+xml")
        web_server.dripping.add(entry)
    monkeypatch.setenv("NEWSBOT_SOURCE_DEADLINE_SECONDS", "3")
    try:
        cli("sources", "add", web_server.url("/dyn/cli-deadline/feed.xml"), "--name", "Drip")
        result = cli("refresh", "--quiet")
    finally:
        with web_server.lock:
            web_server.dripping.discard(entry)
            del web_server.dynamic["/dyn/cli-deadline/feed.xml"]
    assert result.exit_code == 1
    assert "Drip (#1, web): error: stopped after 3 s: " in result.output
    assert "none of its 1 new entries read yet" in result.output
    assert "stopped after 3 s" in table_row(cli("sources", "list").output, "Drip")[6]


def test_refresh_of_unknown_source_fails_cleanly(cli: Cli) -> None:
    """`refresh --source 99` says there is no such source."""
    result = cli("refresh", "--source", "99", "--quiet")
    assert result.exit_code == 1 and "error: no source with id 99" in result.output


def test_refresh_with_nothing_added_does_nothing(cli: Cli) -> None:
    """With no sources there is nothing to fetch and nothing to embed."""
    result = cli("refresh", "--quiet")
    assert result.exit_code == 0 and "nothing to refresh" in result.output


def test_invalid_allow_hosts_setting_is_reported(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed NEWSBOT_FETCH_ALLOW_HOSTS entry is named instead of crashing."""
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_HOSTS", "localhost")
    result = cli("refresh", "--quiet")
    assert result.exit_code == 1 and "NEWSBOT_FETCH_ALLOW_HOSTS" in result.output


def test_remove_of_unknown_source_fails_cleanly(cli: Cli) -> None:
    """`sources remove 5` on an empty database fails with one line."""
    result = cli("sources", "remove", "5", "--quiet")
    assert result.exit_code == 1 and "no source with id 5" in result.output


@pytest.mark.slow
def test_refresh_fetches_embeds_and_remove_drops_everything(
    cli: Cli, web_server: LocalServer
) -> None:
    """Refresh stores a feed's articles and indexes them; remove takes them out again."""
    cli("sources", "add", web_server.url("/site/gazette/index.html"), "--name", "Gazette")
    result = cli("refresh", "--quiet")
    assert result.exit_code == 0, result.output
    assert "Gazette (#1, feed): 2 new, 0 updated, 0 unchanged" in result.output
    assert "index: 2 passages (2 added" in result.output
    row = table_row(cli("sources", "list").output, "Gazette")
    assert row[2:4] == ["feed", web_server.url("/site/gazette/atom.xml")]
    assert row[-3:] == ["", "2", "2"]  # no error; articles; passages
    # Everything is fresh: --all asks anyway and the feed answers 304.
    again = cli("refresh", "--all", "--quiet")
    assert "Gazette (#1, feed): not modified" in again.output
    assert "index: unchanged" in again.output
    removed = cli("sources", "remove", "1", "--quiet")
    assert removed.exit_code == 0
    assert "removed source 1: Gazette (2 articles, 2 passages)" in removed.output
    assert "index: 0 passages (0 added, 2 removed" in removed.output
    assert "from the change log" in removed.output  # the removal's entries, not a comparison


def test_names_and_urls_with_rich_markup_are_shown_literally(
    cli: Cli, web_server: LocalServer
) -> None:
    """A name or URL containing "[/x]" is printed as typed by `sources add` and `sources list`."""
    url = web_server.url("/site/[/x]/feed.xml")
    added = cli("sources", "add", url, "--name", "[/x] Courier [bold]")
    assert added.exit_code == 0, added.output
    assert f"added source 1: [/x] Courier [bold] (web) {url}" in added.output
    listed = cli("sources", "list")
    assert listed.exit_code == 0, listed.output
    assert table_row(listed.output, "[/x]")[1:4] == ["[/x] Courier [bold]", "web", url]
