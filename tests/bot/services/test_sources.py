"""Sources per server: web URLs only, each server sees its own and global ones, removes its own."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from bot.resources import Resources
from bot.services import Services
from bot.services import sources as sources_module
from bot.services.about import AboutService
from bot.services.ask import AskService
from bot.services.sources import SourceService
from ingest.db import session_scope
from ingest.errors import InputError
from ingest.sources import add_source
from tests.bot.conftest import COURIER, GUILD_A, GUILD_B, MakeContext
from tests.ingest.conftest import HeldFetcher, LocalServer
from tests.ingest.conftest import web_server as web_server  # the shared fixture

A, B = GUILD_A, GUILD_B


@pytest.fixture
def service(empty_context: Resources) -> SourceService:
    return SourceService(empty_context)


async def test_added_source_belongs_to_the_server(service: SourceService) -> None:
    """A URL added in a server is stored for that server, named after its host by default."""
    added = await service.add("https://feeds.example/rss.xml", None, A)
    assert (added.guild_id, added.name, added.kind) == (A, "feeds.example", "web")
    named = await service.add("https://other.example/", "Other news", A)
    assert named.name == "Other news"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("/etc/passwd", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://feeds.example/x", "only http and https"),
        ("https://user:secret@feeds.example/", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
async def test_only_web_urls_can_be_added(
    service: SourceService, location: str, reason: str
) -> None:
    """Paths and non-web URLs are refused: Discord users must not reach the host's files."""
    with pytest.raises(InputError, match=reason):
        await service.add(location, None, A)


async def test_a_word_that_is_no_url_is_told_what_to_give(service: SourceService) -> None:
    """`/source add not-a-url` asks for a whole URL (it used to say "not none:")."""
    with pytest.raises(InputError) as refused:
        await service.add("not-a-url", None, A)
    assert str(refused.value) == (
        "only http and https sources are allowed, and 'not-a-url' is no URL: give the whole "
        "address, such as https://example.com/feed.xml"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/feed", "refused: a loopback address (127.0.0.1)"),
        ("http://localhost:8080/rss", "refused: localhost resolves to a loopback address"),
        ("http://10.1.2.3/rss", "refused: a private address (10.1.2.3)"),
        ("http://[::1]:9000/rss", "refused: a loopback address (::1)"),
        ("http://2130706433/feed", "refused: 2130706433 resolves to a loopback address"),
    ],
)
async def test_internal_addresses_are_refused_when_added(
    service: SourceService, url: str, reason: str
) -> None:
    """The fetcher's address check runs at add time, so the admin hears it at once."""
    with pytest.raises(InputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        await service.add(url, None, A)
    assert await service.visible(A) == []


async def test_allowed_hosts_may_be_added(
    make_context: MakeContext, web_server: LocalServer
) -> None:
    """NEWSBOT_FETCH_ALLOW_HOSTS opens its exact host:port pairs, and only those."""
    service = SourceService(await make_context(fetch_allow_hosts=web_server.host_port))
    added = await service.add(web_server.url("/site/courier/feed.xml"), None, A)
    assert added.location == web_server.url("/site/courier/feed.xml")
    with pytest.raises(InputError, match="loopback"):
        await service.add(f"http://127.0.0.1:{web_server.port + 1}/feed.xml", None, A)


async def test_the_same_url_twice_is_refused(service: SourceService) -> None:
    """Adding a URL the server already has says which source it is."""
    first = await service.add("https://feeds.example/rss.xml", None, A)
    with pytest.raises(InputError, match=f"already a source: feeds.example \\(id {first.id}\\)"):
        await service.add("https://feeds.example/rss.xml", None, A)
    await service.add("https://feeds.example/rss.xml", None, B)  # another server may


async def test_servers_list_their_own_and_global_sources(
    service: SourceService, sqlite_engine: Engine
) -> None:
    """A server's list holds its sources and global ones, never another server's."""
    mine = await service.add("https://a.example/", None, A)
    await service.add("https://b.example/", None, B)
    with session_scope(sqlite_engine) as session:
        shared = add_source(session, "https://global.example/", None, 0).id
    assert {s.id for s in await service.visible(A)} == {mine.id, shared}
    assert [s.id for s in await service.own(A)] == [mine.id]
    assert len(await service.visible(None)) == 3  # the console sees everything


async def test_autocomplete_matches_name_or_url(service: SourceService) -> None:
    """Typing part of a name or URL narrows the server's own sources."""
    await service.add("https://harbour.example/feed", "Harbour news", A)
    await service.add("https://ferries.example/", "Ferry updates", A)
    assert [s.name for s in await service.own(A, "ferr")] == ["Ferry updates"]
    assert [s.name for s in await service.own(A, "HARBOUR.example")] == ["Harbour news"]
    assert await service.own(B, "harbour") == []


async def test_a_server_cannot_remove_another_servers_source(service: SourceService) -> None:
    """Removing by id only works for the server's own sources."""
    theirs = await service.add("https://b.example/", None, B)
    with pytest.raises(InputError, match="no source with id"):
        await service.remove(theirs.id, A)
    removed = await service.remove(theirs.id, B)
    assert removed.name == "b.example"


async def test_sources_per_server_are_capped(
    service: SourceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server cannot add more than the maximum number of sources."""
    monkeypatch.setattr(sources_module, "MAX_SOURCES_PER_GUILD", 2)
    await service.add("https://one.example/", None, A)
    await service.add("https://two.example/", None, A)
    with pytest.raises(InputError, match="already has 2 sources"):
        await service.add("https://three.example/", None, A)


@pytest.mark.slow
async def test_refresh_fetches_the_servers_feed_and_indexes_it(
    make_context: MakeContext, web_server: LocalServer
) -> None:
    """/source refresh fetches the server's feed, indexes it, and answers then quote it."""
    context = await make_context(fetch_allow_hosts=web_server.host_port)
    service = SourceService(context)
    await service.add(web_server.url("/site/courier/feed.xml"), "Courier", A)
    report = await service.refresh(A)
    (outcome,) = report.outcomes
    assert outcome.status == "ok" and outcome.added >= 2
    assert report.index is not None and report.index.added >= 2
    answer = await AskService(context).answer("Will Saltmere restore its tidal mill?", A)
    assert (answer.passages[0].url or "").startswith(web_server.url("/site/courier/"))
    nothing = await AskService(context).answer("Will Saltmere restore its tidal mill?", B)
    assert nothing.passages == [] and nothing.more == []


async def test_refresh_touches_only_the_servers_own_sources(
    service: SourceService, web_server: LocalServer
) -> None:
    """Another server's refresh fetches nothing of this server's; repeats are slowed down."""
    await service.add("https://broken.example/feed.xml", "Broken", A)
    report = await service.refresh(B)
    assert report.outcomes == [] and report.index is None
    with pytest.raises(InputError, match="refreshed a moment ago; try again in"):
        await service.refresh(B)


async def test_a_failing_source_is_reported_not_raised(
    make_context: MakeContext, web_server: LocalServer
) -> None:
    """A source that cannot be fetched comes back as an error line; nothing is indexed."""
    service = SourceService(await make_context(fetch_allow_hosts=web_server.host_port))
    await service.add(web_server.url("/status/500"), "Broken", A)
    report = await service.refresh(A)
    assert [o.status for o in report.outcomes] == ["error"]
    assert "HTTP 500" in (report.outcomes[0].error or "")
    assert report.index is None


async def test_a_refresh_while_the_servers_refresh_runs_is_refused(
    make_context: MakeContext, web_server: LocalServer
) -> None:
    """/source refresh while the same server's refresh still runs says so, fetching nothing."""
    context = await make_context(fetch_allow_hosts=web_server.host_port)
    async with HeldFetcher(context.fetcher.policy) as held:
        service = SourceService(replace(context, fetcher=held), refresh_cooldown=0)
        await service.add(web_server.url("/site/courier/feed.xml"), "Courier", A)
        first = asyncio.create_task(service.refresh(A))
        await held.started.wait()
        with pytest.raises(InputError, match=r"^A refresh of these sources is already running\.$"):
            await service.refresh(A)
        held.release.set()
        (outcome,) = (await first).outcomes
    assert outcome.status == "ok" and outcome.added >= 2


async def test_refreshes_at_once_share_the_per_host_limit(
    make_context: MakeContext, web_server: LocalServer
) -> None:
    """Two servers refreshing at once send one host at most 2 requests at a time, not 2 each."""
    service = SourceService(await make_context(fetch_allow_hosts=web_server.host_port))
    for guild in (A, B):
        for n in range(3):
            await service.add(web_server.url(f"/concurrency?server={guild}&n={n}"), None, guild)
    web_server.reset_concurrency()
    reports = await asyncio.gather(service.refresh(A), service.refresh(B))
    assert [len(report.outcomes) for report in reports] == [3, 3]
    assert len(web_server.requests_to("/concurrency")) == 6
    assert 1 <= web_server.max_in_flight <= 2


@pytest.mark.slow
async def test_removed_sources_are_no_longer_quoted(news: Resources, services: Services) -> None:
    """After /source remove, answers stop quoting the source's articles at once."""
    courier = next(s for s in await services.sources.own(A) if s.name == "courier")
    removed = await services.sources.remove(courier.id, A)
    assert (removed.articles, removed.passages) == (5, 5)
    answer = await services.ask.answer("When does the lantern parade start?", A)
    assert all(q.source != COURIER for q in answer.passages + answer.more + answer.closest)
    await services.sources.idle()  # the index drops their vectors in the background
    assert (await services.ask.answer("lantern parade", A)).searched == 1


@pytest.mark.slow
async def test_about_counts_what_the_server_can_see(news: Resources) -> None:
    """/about counts the server's own and global sources, articles and passages only."""
    about = await AboutService(news).about(A)
    assert (about.sources, about.articles, about.passages) == (2, 6, 6)
    assert about.index_built is not None
    other = await AboutService(news).about(B)
    assert (other.sources, other.articles) == (2, 2)
