"""SafeFetcher against a local server: limits, conditional GETs, and SSRF refusals."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ingest.decoding import decode_body
from ingest.errors import FetchError
from ingest.fetch import (
    DEFAULT_USER_AGENT,
    BinaryContent,
    BlockedAddress,
    ConnectionFailed,
    CorruptBody,
    FetchPolicy,
    FetchTimeout,
    HTTPStatusError,
    RateLimited,
    Resolver,
    ResponseTooLarge,
    SafeFetcher,
    TooManyRedirects,
    UnsafeURL,
    UnsupportedContentType,
    address_refusal,
    parse_retry_after,
    sniff_binary,
)
from tests.ingest.conftest import ETAG, FIXTURES, LAST_MODIFIED, LocalServer

# Every test here records connects, and any connect to something other than 127.0.0.1 fails.
pytestmark = pytest.mark.usefixtures("connect_log")

PUBLIC_IP = "93.184.216.34"


def policy_for(server: LocalServer, **overrides: object) -> FetchPolicy:
    return FetchPolicy(allow_hosts=frozenset({server.host_port}), **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def fetcher(web_server: LocalServer) -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(policy_for(web_server)) as f:
        yield f


@pytest.fixture
async def strict_fetcher() -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(FetchPolicy()) as f:
        yield f


# ------------------------------------------------------------------ plain fetching


async def test_fetches_feed_with_type_and_charset(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A feed comes back with status, media type, charset and the exact body bytes."""
    result = await fetcher.fetch(web_server.url("/feeds/rss.xml"))
    assert result.status == 200
    assert result.content_type == "application/rss+xml"
    assert result.charset == "utf-8"
    assert result.body == (FIXTURES / "rss.xml").read_bytes()
    assert result.url == web_server.url("/feeds/rss.xml")
    assert result.not_modified is False


async def test_sends_user_agent_and_only_bounded_encodings(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """Requests carry the newsbot User-Agent, ask only for gzip/deflate and send no cookies."""
    result = await fetcher.fetch(web_server.url("/echo"))
    headers = json.loads(result.body)
    assert headers["user-agent"] == DEFAULT_USER_AGENT == "newsbot/0.1 (+self-hosted news bot)"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "cookie" not in headers


async def test_follows_relative_redirect_and_reports_final_url(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A relative Location is resolved and the result's url is the final one."""
    result = await fetcher.fetch(web_server.url("/redirect/to-feed"))
    assert result.url == web_server.url("/feeds/rss.xml?utm_source=redirect")
    assert result.body.startswith(b"<?xml")


async def test_redirect_loop_is_refused(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """A redirect loop stops after max_redirects with TooManyRedirects."""
    with pytest.raises(TooManyRedirects, match="more than 5 redirects"):
        await fetcher.fetch(web_server.url("/redirect/loop"))
    assert len(web_server.requests_to("/redirect/loop")) >= 6


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
async def test_max_redirects_is_the_exact_limit(
    fetcher: SafeFetcher, web_server: LocalServer, hops: int, ok: bool
) -> None:
    """Exactly max_redirects redirects are followed; one more is refused."""
    url = web_server.url(f"/redirect/n/{hops - 1}")
    if ok:
        assert (await fetcher.fetch(url)).status == 200
    else:
        with pytest.raises(TooManyRedirects):
            await fetcher.fetch(url)


async def test_redirect_without_location_is_an_error(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A 3xx with no Location raises HTTPStatusError instead of returning an empty page."""
    with pytest.raises(HTTPStatusError, match="without a Location") as info:
        await fetcher.fetch(web_server.url("/redirect/no-location"))
    assert info.value.status == 302


async def test_fetch_outside_context_manager_is_a_programming_error() -> None:
    """Calling fetch before entering the context manager raises RuntimeError."""
    with pytest.raises(RuntimeError, match="async with"):
        await SafeFetcher().fetch("https://example.com/")


# ------------------------------------------------------------------ conditional GET


async def test_first_fetch_returns_validators_then_304(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """ETag/Last-Modified from a 200 sent back give not_modified with an empty body."""
    url = web_server.url("/conditional/feed.xml")
    first = await fetcher.fetch(url)
    assert (first.etag, first.last_modified) == (ETAG, LAST_MODIFIED)
    second = await fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified is True
    assert second.status == 304
    assert second.body == b""
    assert second.etag == ETAG
    assert second.last_modified == LAST_MODIFIED
    sent = web_server.requests_to("/conditional/feed.xml")[-1].headers
    assert sent["if-none-match"] == ETAG
    assert sent["if-modified-since"] == LAST_MODIFIED


async def test_last_modified_alone_gives_304(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """If-Modified-Since alone is honoured by a server that supports it."""
    result = await fetcher.fetch(
        web_server.url("/conditional/feed.xml"), last_modified=LAST_MODIFIED
    )
    assert result.not_modified is True


async def test_stale_etag_gets_the_full_body(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """An ETag the server no longer matches returns a normal 200 with the new validators."""
    result = await fetcher.fetch(web_server.url("/conditional/feed.xml"), etag='"old"')
    assert result.not_modified is False
    assert result.etag == ETAG
    assert b"<rss" in result.body


# ------------------------------------------------------------------ status codes


async def test_429_raises_rate_limited_with_seconds(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """429 with Retry-After: 120 raises RateLimited carrying 120 seconds."""
    with pytest.raises(RateLimited, match="rate limited") as info:
        await fetcher.fetch(web_server.url("/limited"))
    assert info.value.status == 429
    assert info.value.retry_after_seconds == 120


async def test_503_retry_after_http_date(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """503 with an HTTP-date Retry-After raises RateLimited with the seconds until then."""
    with pytest.raises(RateLimited) as info:
        await fetcher.fetch(web_server.url("/busy"))
    assert info.value.status == 503
    assert info.value.retry_after_seconds is not None
    assert 80 <= info.value.retry_after_seconds <= 91


@pytest.mark.parametrize("status", [404, 410, 500])
async def test_error_status_raises_http_status_error(
    fetcher: SafeFetcher, web_server: LocalServer, status: int
) -> None:
    """Other 4xx/5xx raise HTTPStatusError with the code and a one-line message."""
    with pytest.raises(HTTPStatusError) as info:
        await fetcher.fetch(web_server.url(f"/status/{status}"))
    assert type(info.value) is HTTPStatusError
    assert info.value.status == status
    assert str(info.value).startswith(web_server.url(f"/status/{status}") + f": HTTP {status}")
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ size and encoding


async def test_declared_length_over_cap_is_refused_up_front(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A Content-Length above max_bytes is refused before the body is read."""
    with pytest.raises(ResponseTooLarge, match="Content-Length"):
        await fetcher.fetch(web_server.url("/huge/declared.xml"))


async def test_streamed_body_over_cap_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A body without Content-Length is cut off once it passes max_bytes."""
    with pytest.raises(ResponseTooLarge, match="larger than 5242880 bytes"):
        await fetcher.fetch(web_server.url("/huge/streamed.xml"))


async def test_small_cap_applies_to_normal_pages(web_server: LocalServer) -> None:
    """max_bytes is taken from the policy, not hard-coded."""
    async with SafeFetcher(policy_for(web_server, max_bytes=500)) as fetcher:
        with pytest.raises(ResponseTooLarge):
            await fetcher.fetch(web_server.url("/articles/mill.html"))


async def test_gzip_bomb_is_refused_by_decompressed_size(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A small gzip body that inflates past max_bytes raises ResponseTooLarge."""
    with pytest.raises(ResponseTooLarge):
        await fetcher.fetch(web_server.url("/bomb.html"))


@pytest.mark.parametrize("path", ["/gzip/mill.html", "/deflate/mill.html"])
async def test_compressed_bodies_are_decoded(
    fetcher: SafeFetcher, web_server: LocalServer, path: str
) -> None:
    """gzip and deflate bodies come back decompressed."""
    result = await fetcher.fetch(web_server.url(path))
    assert result.body == (FIXTURES / "article.html").read_bytes()


async def test_unrequested_content_encoding_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """An encoding we did not ask for (br) is refused rather than passed through."""
    with pytest.raises(UnsupportedContentType, match="'br'"):
        await fetcher.fetch(web_server.url("/brotli/mill.html"))


@pytest.mark.parametrize("path", ["/corrupt-gzip.html", "/truncated-gzip.html"])
async def test_corrupt_or_truncated_gzip_is_a_fetch_error(
    fetcher: SafeFetcher, web_server: LocalServer, path: str
) -> None:
    """Invalid or cut-off gzip raises CorruptBody rather than a zlib error or partial page."""
    with pytest.raises(CorruptBody, match="Content-Encoding"):
        await fetcher.fetch(web_server.url(path))


# ------------------------------------------------------------------ content types


async def test_image_content_type_is_refused(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """A Content-Type that is not a page or feed raises UnsupportedContentType."""
    with pytest.raises(UnsupportedContentType, match="image/png") as info:
        await fetcher.fetch(web_server.url("/image.png"))
    assert type(info.value) is UnsupportedContentType


@pytest.mark.parametrize(("path", "kind"), [("/binary-as-html", "PNG"), ("/nul-as-html", "NUL")])
async def test_binary_body_labelled_html_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer, path: str, kind: str
) -> None:
    """Binary content is sniffed and refused even when the header says text/html."""
    with pytest.raises(BinaryContent, match=kind):
        await fetcher.fetch(web_server.url(path))


async def test_missing_content_type_with_text_body_is_accepted(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A text body without Content-Type is accepted with content_type None."""
    result = await fetcher.fetch(web_server.url("/pages/no-type"))
    assert result.content_type is None
    assert b"tidal mill" in result.body


# ------------------------------------------------------------------ SSRF: schemes and literals


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.com/feed.xml",
        "gopher://example.com/_GET",
        "javascript:alert(1)",
        "data:text/html,<p>hi</p>",
        "//example.com/no-scheme",
        "http:///no-host",
    ],
)
async def test_refuses_non_http_urls(
    strict_fetcher: SafeFetcher, connect_log: list[tuple[str, int]], url: str
) -> None:
    """Only http and https URLs with a host are fetched."""
    with pytest.raises(UnsafeURL, match="refused"):
        await strict_fetcher.fetch(url)
    assert connect_log == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://10.255.255.254:8080/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://100.64.0.1/", "shared (CGNAT)"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fd00::1]/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
    ],
)
async def test_refuses_non_public_addresses_without_connecting(
    strict_fetcher: SafeFetcher, connect_log: list[tuple[str, int]], url: str, kind: str
) -> None:
    """Loopback, private, link-local, CGNAT and numeric forms of them are refused unconnected."""
    with pytest.raises(BlockedAddress, match=f"refused: resolves to an? .*{re.escape(kind)}"):
        await strict_fetcher.fetch(url)
    assert connect_log == []


@pytest.mark.parametrize("url", ["http://0177.0.0.1/", "http://017700000001/"])
async def test_refuses_octal_loopback_forms(
    strict_fetcher: SafeFetcher, connect_log: list[tuple[str, int]], url: str
) -> None:
    """Octal spellings of 127.0.0.1 are refused (httpx rejects them, else the check would)."""
    with pytest.raises(UnsafeURL):
        await strict_fetcher.fetch(url)
    assert connect_log == []


async def test_private_refusal_message_is_one_clear_line(strict_fetcher: SafeFetcher) -> None:
    """The refusal names the URL and the resolved address on one line."""
    with pytest.raises(BlockedAddress) as info:
        await strict_fetcher.fetch("http://10.0.0.5/feed")
    expected = "http://10.0.0.5/feed: refused: resolves to a private address (10.0.0.5)"
    assert str(info.value) == expected
    assert info.value.address == "10.0.0.5"
    assert isinstance(info.value, FetchError)


async def test_local_server_is_refused_when_not_allow_listed(
    strict_fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """Without an allow_hosts entry even the test server on 127.0.0.1 is refused."""
    with pytest.raises(BlockedAddress, match="loopback"):
        await strict_fetcher.fetch(web_server.url("/feeds/rss.xml"))
    assert connect_log == []


async def test_hostname_resolving_to_loopback_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """'localhost' resolves to loopback and is refused: allow_hosts matches 127.0.0.1 only."""
    with pytest.raises(BlockedAddress, match="loopback"):
        await fetcher.fetch(f"http://localhost:{web_server.port}/feeds/rss.xml")
    assert connect_log == []


async def test_allow_hosts_entry_is_exact_host_and_port(
    fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """Allow-listing 127.0.0.1:<port> does not allow another port on the same address."""
    other = web_server.port + 1 if web_server.port < 65535 else web_server.port - 1
    with pytest.raises(BlockedAddress):
        await fetcher.fetch(f"http://127.0.0.1:{other}/")
    assert connect_log == []


# ------------------------------------------------------------------ SSRF: redirects


async def test_redirect_to_private_address_is_refused_without_connecting(
    fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """A redirect to http://10.0.0.1/ is refused before any connection to 10.0.0.1."""
    with pytest.raises(BlockedAddress) as info:
        await fetcher.fetch(web_server.url("/redirect/private"))
    message = str(info.value)
    assert "redirected to http://10.0.0.1/admin" in message
    assert message.endswith("refused: resolves to a private address (10.0.0.1)")
    assert {host for host, _ in connect_log} == {"127.0.0.1"}


async def test_redirect_chain_to_metadata_service_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """Every hop is re-checked: a chain ending at 169.254.169.254 is refused."""
    with pytest.raises(BlockedAddress, match=r"link-local address \(169\.254\.169\.254\)"):
        await fetcher.fetch(web_server.url("/redirect/chain/1"))
    assert {host for host, _ in connect_log} == {"127.0.0.1"}
    assert web_server.requests_to("/redirect/chain/3")


async def test_redirect_to_localhost_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """A redirect to a loopback hostname is refused even on the allow-listed port."""
    with pytest.raises(BlockedAddress, match="loopback"):
        await fetcher.fetch(web_server.url("/redirect/localhost"))
    assert {host for host, _ in connect_log} == {"127.0.0.1"}


async def test_redirect_to_file_scheme_is_refused(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A redirect to file:// is refused as an unsafe URL."""
    with pytest.raises(UnsafeURL, match="scheme 'file'"):
        await fetcher.fetch(web_server.url("/redirect/file"))


# ------------------------------------------------------------------ SSRF: DNS


def fixed_resolver(answers: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


async def test_any_private_answer_refuses_the_host(
    connect_log: list[tuple[str, int]],
) -> None:
    """A host with one public and one private address is refused outright."""
    resolver = fixed_resolver({"mixed.test": [PUBLIC_IP, "10.0.0.5"]})
    async with SafeFetcher(resolver=resolver) as fetcher:
        with pytest.raises(BlockedAddress, match=r"private address \(10\.0\.0\.5\)"):
            await fetcher.fetch("https://mixed.test/feed")
    assert connect_log == []


async def test_connects_to_the_validated_address_not_a_fresh_lookup(
    web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """DNS rebinding: the address checked is the address connected to; no second lookup."""
    calls: list[str] = []
    answers = iter([[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    async with SafeFetcher(resolver=rebinding) as fetcher:
        # The test network refuses the public address, so the fetch fails to connect.
        with pytest.raises(ConnectionFailed, match="cannot connect"):
            await fetcher.fetch(f"http://rebind.test:{web_server.port}/echo")
    assert calls == ["rebind.test"]
    assert connect_log == [(PUBLIC_IP, web_server.port)]


async def test_allow_listed_name_keeps_its_host_header(
    web_server: LocalServer, connect_log: list[tuple[str, int]]
) -> None:
    """Connecting to the resolved IP keeps the URL's hostname in the Host header."""
    host = f"news.test:{web_server.port}"
    policy = FetchPolicy(allow_hosts=frozenset({host}))
    resolver = fixed_resolver({"news.test": ["127.0.0.1"]})
    async with SafeFetcher(policy, resolver=resolver) as fetcher:
        result = await fetcher.fetch(f"http://{host}/echo")
    assert json.loads(result.body)["host"] == host
    assert connect_log == [("127.0.0.1", web_server.port)]


async def test_unresolvable_host_is_a_connection_failure(
    connect_log: list[tuple[str, int]],
) -> None:
    """A name that does not resolve raises ConnectionFailed with a one-line reason."""
    async with SafeFetcher(resolver=fixed_resolver({})) as fetcher:
        with pytest.raises(ConnectionFailed, match=r"cannot resolve nowhere\.test") as info:
            await fetcher.fetch("https://nowhere.test/feed")
    assert "\n" not in str(info.value)
    assert connect_log == []


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::1", "loopback"),
        ("fec0::1", "site-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::127.0.0.1", "reserved"),
        ("not-an-ip", "unparseable"),
    ],
)
def test_address_refusal_classifies_addresses(address: str, expected: str | None) -> None:
    """address_refusal says why an address is not public, or None for public ones."""
    reason = address_refusal(address)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
        assert address in reason


# ------------------------------------------------------------------ timeouts and politeness


async def test_slow_server_times_out(web_server: LocalServer) -> None:
    """A server slower than the read timeout raises FetchTimeout."""
    async with SafeFetcher(policy_for(web_server, timeout=0.3)) as fetcher:
        with pytest.raises(FetchTimeout, match="timed out"):
            await fetcher.fetch(web_server.url("/slow"))


async def test_dripping_server_hits_the_total_timeout(web_server: LocalServer) -> None:
    """A server that keeps each read under the timeout is still cut off by total_timeout."""
    policy = policy_for(web_server, timeout=2.0, total_timeout=0.5)
    async with SafeFetcher(policy) as fetcher:
        with pytest.raises(FetchTimeout, match="in total"):
            await fetcher.fetch(web_server.url("/drip"))


async def test_per_host_concurrency_is_limited(web_server: LocalServer) -> None:
    """No more than per_host_concurrency requests to one host run at once."""
    web_server.reset_concurrency()
    async with SafeFetcher(policy_for(web_server, per_host_concurrency=2)) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(web_server.url("/concurrency")) for _ in range(6))
        )
    assert all(r.body == b"ok" for r in results)
    assert 1 <= web_server.max_in_flight <= 2


async def test_waiting_for_a_host_slot_does_not_use_the_time_budget(
    web_server: LocalServer,
) -> None:
    """Queueing behind other fetches of the same host does not count toward total_timeout."""
    # Eight 0.15 s requests in single file take 1.2 s, longer than the 1 s budget of each.
    policy = policy_for(web_server, per_host_concurrency=1, total_timeout=1.0)
    async with SafeFetcher(policy) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(web_server.url("/concurrency")) for _ in range(8))
        )
    assert [r.body for r in results] == [b"ok"] * 8


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Thu, 14 Mar 2024 12:01:30 GMT", 90.0),
        ("Thu, 14 Mar 2024 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After accepts delta-seconds or an HTTP date; junk gives None, the past gives 0."""
    now = datetime(2024, 3, 14, 12, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


# ------------------------------------------------------------------ policy


@pytest.mark.parametrize("entry", ["127.0.0.1", "localhost:", "host:99999", "::1:80", "[::1]"])
def test_allow_hosts_entries_need_a_port(entry: str) -> None:
    """An allow_hosts entry without a valid port is rejected, so nothing is allowed by accident."""
    with pytest.raises(ValueError, match="allow-host entry"):
        FetchPolicy(allow_hosts=frozenset({entry}))


def test_policy_defaults_match_the_spec() -> None:
    """Default policy: 10 s, 5 MB, 5 redirects, 2 per host, no allow-listed hosts."""
    policy = FetchPolicy()
    assert (policy.timeout, policy.max_bytes, policy.max_redirects) == (10.0, 5 * 1024 * 1024, 5)
    assert policy.per_host_concurrency == 2
    assert policy.allow_hosts == frozenset()
    assert "application/rss+xml" in policy.allowed_content_types
    assert "image/png" not in policy.allowed_content_types


# ------------------------------------------------------------------ sniffing and decoding


@pytest.mark.parametrize(
    ("prefix", "binary"),
    [
        (b"\x89PNG\r\n\x1a\n....", True),
        (b"%PDF-1.7\n", True),
        (b"PK\x03\x04rest", True),
        (b"\x1f\x8b\x08\x00", True),
        (b"<html>\x00</html>", True),
        (b"<!DOCTYPE html><html>", False),
        ("<p>caf\u00e9</p>".encode("utf-16"), False),
    ],
)
def test_sniff_binary(prefix: bytes, binary: bool) -> None:
    """Magic numbers and NUL bytes mark a body binary; UTF-16 text with a BOM does not."""
    assert (sniff_binary(prefix) is not None) is binary


async def test_latin1_page_declared_in_meta_decodes(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """A page declaring iso-8859-1 only in <meta> decodes without mojibake."""
    result = await fetcher.fetch(web_server.url("/pages/latin1.html"))
    assert result.charset is None
    text = decode_body(result)
    assert "Caf\u00e9 on the quay" in text
    assert "cr\u00e8me br\u00fbl\u00e9e" in text


async def test_charset_from_header_is_used(fetcher: SafeFetcher, web_server: LocalServer) -> None:
    """The Content-Type charset is reported and used for decoding."""
    result = await fetcher.fetch(web_server.url("/pages/latin1-header.html"))
    assert result.charset == "iso-8859-1"
    assert "Ren\u00e9e and Jos\u00e9" in decode_body(result)


async def test_invalid_utf8_decodes_with_replacement(
    fetcher: SafeFetcher, web_server: LocalServer
) -> None:
    """Invalid bytes in a UTF-8 page become U+FFFD instead of raising."""
    text = decode_body(await fetcher.fetch(web_server.url("/pages/invalid-utf8.html")))
    assert "\ufffd" in text
    assert "still readable" in text
    assert "\u2014" in text
