"""The local console runs the bot's commands and prints the same answers as text."""

from __future__ import annotations

import pytest

from bot.console import ConsoleSession
from bot.context import AppContext
from bot.services import Services
from tests.bot.conftest import GUILD_A


class Screen(list[str]):
    def say(self, message: str) -> None:
        self.append(message)

    @property
    def last(self) -> str:
        return self[-1]


@pytest.fixture
def screen() -> Screen:
    return Screen()


def session_for(context: AppContext, screen: Screen, guild_id: int | None = None) -> ConsoleSession:
    return ConsoleSession(Services.create(context), guild_id, screen.say, progress_every=0.01)


@pytest.mark.slow
async def test_questions_are_answered_with_quotes_and_citations(
    news: AppContext, screen: Screen
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
    news: AppContext, screen: Screen
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
    news: AppContext, screen: Screen
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
async def test_more_shows_the_next_passages(news: AppContext, screen: Screen) -> None:
    """/more continues the last answer's numbering, then says there is nothing more."""
    console = session_for(news, screen, guild_id=GUILD_A)
    await console.run_line("/ask news from Brindle Bay")
    await console.run_line("/more")
    assert screen.last.startswith("[4] ")
    await console.run_line("/more")
    assert screen.last == "error: no more passages; ask another question"


@pytest.mark.slow
async def test_reindex_reports_when_done(news: AppContext, screen: Screen) -> None:
    """/reindex rebuilds the index and reports the count and duration."""
    console = session_for(news, screen)
    await console.run_line("/reindex")
    assert screen.last.startswith("Reindex done: 7 passages in the index")


async def test_sources_can_be_managed(empty_context: AppContext, screen: Screen) -> None:
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
    empty_context: AppContext, screen: Screen
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


async def test_about_describes_the_corpus(empty_context: AppContext, screen: Screen) -> None:
    """/about prints the counts and how to use the bot."""
    console = session_for(empty_context, screen)
    await console.run_line("/about")
    assert screen.last.startswith("Indexed: 0 sources, 0 articles, 0 passages.")
    assert "Index built: not built yet." in screen.last


async def test_a_bug_in_a_command_does_not_end_the_console(
    empty_context: AppContext, screen: Screen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error is logged and reported briefly; the prompt continues."""
    console = session_for(empty_context, screen)

    async def broken(guild_id: int | None) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(console.services.about, "about", broken)
    assert await console.run_line("/about")
    assert screen.last == "error: something went wrong (the log has the details)"
