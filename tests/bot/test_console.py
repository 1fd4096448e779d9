"""The local console runs the bot's commands and prints the same answers as text."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.console import ConsoleSession
from bot.resources import Resources
from bot.services import Services
from tests.bot.conftest import GUILD_A, MakeContext


class Screen(list[str]):
    def say(self, message: str) -> None:
        self.append(message)

    @property
    def last(self) -> str:
        return self[-1]


@pytest.fixture
def screen() -> Screen:
    return Screen()


def session_for(context: Resources, screen: Screen, guild_id: int | None = None) -> ConsoleSession:
    return ConsoleSession(Services.create(context), guild_id, screen.say, progress_every=0.01)


@pytest.mark.slow
async def test_questions_are_answered_with_quotes_and_citations(
    news: Resources, screen: Screen
) -> None:
    """A bare line is a question; the answer quotes passages with outlet, title, date, link."""
    console = session_for(news, screen)
    assert await console.run_line("When does the lantern parade start?")
    assert "> The Brindle Bay lantern festival will move" in screen.last
    assert "[1] Brindle Bay Courier · Lantern festival moves to the harbour · 2024-05-06" in (
        screen.last
    )
    # The citation ends with the link, as in Discord: no ranking score for readers to decode.
    assert "· https://news.example/lanterns\n> " in screen.last
    assert "/more shows more passages." in screen.last


@pytest.mark.slow
async def test_ask_takes_since_and_source_as_discord_shows_them(
    news: Resources, screen: Screen
) -> None:
    """ "since:" and "source:" after the question narrow it, and the answer says how."""
    console = session_for(news, screen, guild_id=GUILD_A)
    await console.run_line("/ask What is new in Brindle Bay? since:2024-05-09")
    assert "Fish market opens on Sundays" in screen.last
    assert "Lantern festival moves to the harbour" not in screen.last
    assert "(2 passages searched since 9 May 2024)" in screen.last
    await console.run_line("What is new in Brindle Bay? source:Atlantis Times")
    assert screen.last == "error: no source or outlet called 'Atlantis Times'"
    await console.run_line("What is new in Brindle Bay? since:whenever")
    assert screen.last.startswith("error: Can't read 'whenever' as a date")


@pytest.mark.slow
async def test_follow_ups_are_read_with_the_question_before_as_in_a_thread(
    news: Resources, screen: Screen
) -> None:
    """The console is one conversation: "How much will it cost?" leans on the question before."""
    console = session_for(news, screen, guild_id=GUILD_A)
    await console.run_line("What did Marlow County council approve?")
    await console.run_line("How much will it cost?")
    assert screen.last.startswith(
        "Read with the earlier question: “What did Marlow County council approve?”\n[1] "
        "Marlow County Herald · Marlow County approves library budget"
    )
    await console.run_line("What about the airport?")
    assert screen.last.startswith("I couldn't find this in the indexed news.")
    # A question narrowed with options stands alone.
    await console.run_line("How much will it cost? source:Brindle Bay Courier")
    assert "Read with" not in screen.last and "ferry fares" in screen.last


@pytest.mark.slow
async def test_more_shows_the_next_passages(news: Resources, screen: Screen) -> None:
    """/more continues the last answer's numbering, then says there is nothing more."""
    console = session_for(news, screen, guild_id=GUILD_A)
    await console.run_line("/ask news from Brindle Bay")
    await console.run_line("/more")
    assert screen.last.startswith("[4] ")
    await console.run_line("/more")
    assert screen.last == "error: no more passages; ask another question"


@pytest.mark.slow
async def test_reindex_reports_when_done(news: Resources, screen: Screen) -> None:
    """/reindex rebuilds the index and reports the count and duration."""
    console = session_for(news, screen)
    await console.run_line("/reindex")
    assert screen.last.startswith("Reindex done: 7 passages in the index")


async def test_sources_can_be_managed(empty_context: Resources, screen: Screen) -> None:
    """/source add, list and remove work like the Discord commands (global sources here)."""
    console = session_for(empty_context, screen)
    await console.run_line('/source add https://feeds.example/rss "Harbour feed"')
    assert screen.last.startswith("Added source #1 Harbour feed (https://feeds.example/rss).")
    await console.run_line("/source list")
    assert screen.last.startswith("#1 Harbour feed (global) — https://feeds.example/rss")
    await console.run_line("/source remove 1")
    assert screen.last.startswith("Removed Harbour feed")
    await console.run_line("/source list")
    assert screen.last == "No sources yet. Add one with /source add URL."


async def test_mistakes_are_explained_and_the_console_goes_on(
    empty_context: Resources, screen: Screen
) -> None:
    """Bad input prints a one-line error; only /quit ends the session."""
    console = session_for(empty_context, screen)
    assert await console.run_line("/source add /etc/passwd")
    assert screen.last.startswith("error: only http and https sources are allowed")
    assert await console.run_line("/source frobnicate")
    assert screen.last.startswith("error: usage: /source add URL")
    assert await console.run_line("/nonsense")
    assert screen.last == "error: unknown command /nonsense; /help lists them"
    assert await console.run_line("/source refresh")
    assert screen.last == "No web sources to refresh. Add one with /source add URL."
    assert await console.run_line("/help")
    assert "/source add URL [NAME]" in screen.last
    assert not await console.run_line("/quit")


async def test_about_describes_the_corpus(empty_context: Resources, screen: Screen) -> None:
    """/about prints the counts and how to use the bot."""
    console = session_for(empty_context, screen)
    await console.run_line("/about")
    assert screen.last.startswith("Indexed: 0 sources, 0 articles, 0 passages.")
    assert "Index built: not built yet." in screen.last


async def test_a_bug_in_a_command_does_not_end_the_console(
    empty_context: Resources, screen: Screen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error is logged and reported briefly; the prompt continues."""
    console = session_for(empty_context, screen)

    async def broken(guild_id: int | None) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(console.services.about, "about", broken)
    assert await console.run_line("/about")
    assert screen.last == "error: something went wrong (the log has the details)"


def damage_index(context: Resources) -> None:
    """Overwrite the live version's vectors with bytes FAISS cannot read."""
    index = context.settings.index_dir
    version = (index / "CURRENT").read_text().strip()
    (index / version / "vectors.faiss").write_bytes(b"not a faiss index")


@pytest.mark.slow
async def test_a_damaged_index_is_said_not_taken_for_no_answer(
    news: Resources, make_context: MakeContext, screen: Screen
) -> None:
    """An index that cannot be read is reported with what to run, not as "couldn't find"."""
    damage_index(news)
    console = session_for(await make_context(), screen)  # a new process would load it afresh
    await console.run_line("When does the lantern parade start?")
    assert screen.last.startswith("error: The index could not be loaded (")
    assert screen.last.endswith("rebuild it with `newsbot reindex` (or /reindex).")


async def test_source_add_asks_for_a_whole_url(empty_context: Resources, screen: Screen) -> None:
    """`/source add not-a-url` says what to give instead of "not none:"."""
    console = session_for(empty_context, screen)
    await console.run_line("/source add not-a-url")
    assert screen.last == (
        "error: only http and https sources are allowed, and 'not-a-url' is no URL: give the "
        "whole address, such as https://example.com/feed.xml"
    )
    await console.run_line("/source add http://localhost:8080/rss")
    assert screen.last.startswith("error: refused: localhost resolves to a loopback address")


def read_until(process: subprocess.Popen[bytes], wanted: bytes, seconds: float = 120) -> bytes:
    """What the process printed, up to and including ``wanted`` (fails if it never comes)."""
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {wanted!r} in {seen!r}"
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, f"the console ended before {wanted!r}: {seen!r}"
        seen += chunk
    return seen


def test_ctrl_c_at_the_prompt_stops_the_console(tmp_path: Path) -> None:
    """Ctrl+C while the console waits for a question ends it at once, saying bye."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env["NEWSBOT_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        read_until(process, b"newsbot> ")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 130)
        assert process.stdout is not None
        rest = process.stdout.read()
        assert b"bye" in rest and b"Traceback" not in rest
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
async def test_check_names_the_linked_article_then_quotes_the_news(
    news: Resources, screen: Screen
) -> None:
    """/check with a pasted message: the linked article and its passage first, then the rest."""
    console = session_for(news, screen, guild_id=GUILD_A)
    assert await console.run_line(
        "/check the harbour wall was fixed in time <@42> https://news.example/lanterns"
    )
    assert screen.last.startswith(
        "The linked article: Brindle Bay Courier · Lantern festival moves to the harbour · "
        "2024-05-06 · https://news.example/lanterns\n> "
    )
    # The lantern article is the only one about the harbour wall.
    assert screen.last.endswith("\n\nNo other indexed article speaks to this message.")
    assert await console.run_line("/check <@42>")
    assert screen.last == "error: This message has no text to check against the news."
