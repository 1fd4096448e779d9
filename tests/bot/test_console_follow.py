"""/follow at the console: matches are printed as /source refresh stores them."""

from __future__ import annotations

import pytest

from bot.console import ConsoleSession
from bot.services import Services
from index.answer import DEFAULT_MIN_SCORE
from tests.bot.cogs.test_follow import FERRY, FERRY_AGAIN, QUARRY, Site
from tests.bot.cogs.test_follow import site as site  # the feed fixture
from tests.bot.conftest import MakeContext
from tests.ingest.conftest import LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

pytestmark = [pytest.mark.timeout(120)]


async def test_follow_prints_new_matching_articles_after_each_refresh(
    make_context: MakeContext, web_server: LocalServer, site: Site
) -> None:
    """Matching new stories are printed with the follow and citation; a paused follow is quiet."""
    context = await make_context(
        min_score=DEFAULT_MIN_SCORE,
        related_quotes_only=True,
        fetch_allow_hosts=web_server.host_port,
    )
    screen: list[str] = []
    services = Services.create(context)
    services.sources.refresh_cooldowns.seconds = 0  # two refreshes in a row
    console = ConsoleSession(services, None, screen.append)
    await console.run_line(f"/source add {site.feed('post')} Island Post")
    await console.run_line("/follow add Gull Island ferry")
    assert screen[-1].startswith("Following “Gull Island ferry” (#1)")
    site.add("post", "Island Post", "ferry", "Sunday ferries to Gull Island end", *FERRY)
    site.add("post", "Island Post", "quarry", "Quarry Road to be resurfaced", *QUARRY)

    await console.run_line("/source refresh")

    (printed,) = [line for line in screen if line.startswith("[follow #1")]
    assert printed.startswith(
        "[follow #1 “Gull Island ferry”] [1] Island Post · Sunday ferries to Gull Island end · "
    )
    assert "> The Gull Island ferry will stop running on Sundays" in printed
    assert "Quarry" not in printed
    assert "Island Post (#1, feed): 2 new" in screen[-1]

    await console.run_line("/follow pause 1")
    site.add("post", "Island Post", "boat", "Second boat for the Gull Island ferry", *FERRY_AGAIN)
    await console.run_line("/source refresh")
    assert len([line for line in screen if line.startswith("[follow #1")]) == 1
    await console.run_line("/follow list")
    assert screen[-1] == "#1 Gull Island ferry — paused"
