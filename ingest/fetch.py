"""A polite HTTP client that refuses to be turned against the machine it runs on.

Sources are URLs typed in by users of the bot, so every fetch is treated as hostile input:
only http(s), only hosts that resolve to public addresses (checked at connect time, on the
address actually connected to), redirects followed by hand and re-checked, bodies capped after
decompression, and only page or feed content types.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import logging
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Protocol, Self

import httpcore
import httpx

from ingest.decoding import bom_encoding
from ingest.errors import FetchError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ALLOWED_CONTENT_TYPES",
    "DEFAULT_SOURCE_DEADLINE_SECONDS",
    "DEFAULT_USER_AGENT",
    "BinaryContent",
    "BlockedAddress",
    "ConnectionFailed",
    "CorruptBody",
    "FetchPolicy",
    "FetchResult",
    "FetchTimeout",
    "HTTPStatusError",
    "RateLimited",
    "Resolver",
    "ResponseTooLarge",
    "SafeFetcher",
    "TooManyRedirects",
    "UnsafeURL",
    "UnsupportedContentType",
    "address_refusal",
    "parse_retry_after",
    "sniff_binary",
    "system_resolver",
]

DEFAULT_USER_AGENT = "newsbot/0.1 (+self-hosted news bot)"
# How long refreshing one source may take (ingest.refresh; here so settings can import it
# cheaply). A site that drips its pages a byte at a time would otherwise hold a refresh for
# a minute per entry page (each response's total timeout): half an hour for a 50-entry feed.
DEFAULT_SOURCE_DEADLINE_SECONDS = 120.0

DEFAULT_ALLOWED_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        "application/feed+json",
        "application/json",
        "text/plain",
    }
)

_ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/feed+json,application/xml;q=0.9,text/xml;q=0.9,application/json;q=0.8,"
    "text/plain;q=0.5"
)
# Only encodings we can inflate with a bounded output size (see _BoundedInflater).
_ACCEPT_ENCODING = "gzip, deflate"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RATE_LIMIT_STATUSES = frozenset({429, 503})
_SNIFF_BYTES = 1024


# --------------------------------------------------------------------------- errors


class UnsafeURL(FetchError):
    """The URL is not one we fetch: unparseable, not http(s), or without a host."""


class BlockedAddress(UnsafeURL):
    """The host resolves to an address that is not on the public internet."""

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class TooManyRedirects(FetchError):
    """The redirect chain is longer than the policy allows."""


class FetchTimeout(FetchError):
    """Connecting, reading or the whole fetch took longer than the policy allows."""


class ConnectionFailed(FetchError):
    """The host could not be resolved or connected to, or broke the HTTP protocol."""


class ResponseTooLarge(FetchError):
    """The (decompressed) body is larger than the policy allows."""


class UnsupportedContentType(FetchError):
    """The response is not a web page or a feed."""


class BinaryContent(UnsupportedContentType):
    """The body is binary (an image, archive, ...) whatever its Content-Type claims."""


class CorruptBody(FetchError):
    """The body's Content-Encoding could not be decoded."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(HTTPStatusError):
    """The server asked us to slow down (429 or 503); retry after ``retry_after_seconds``."""

    def __init__(self, message: str, *, status: int, retry_after_seconds: float | None) -> None:
        super().__init__(message, status=status)
        self.retry_after_seconds = retry_after_seconds


# --------------------------------------------------------------------------- policy


def _split_host_port(entry: str) -> tuple[str, int]:
    text = entry.strip().lower()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"allow-host entry {entry!r} must look like [v6addr]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"allow-host entry {entry!r} must look like host:port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"allow-host entry {entry!r} has an invalid port")
    return host, int(port_text)


def host_key(host: str, port: int) -> str:
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits for one ``SafeFetcher``. ``allow_hosts`` bypasses the address check for exactly
    those ``host:port`` pairs (tests, or a feed server on the LAN the operator trusts)."""

    timeout: float = 10.0
    # Per-operation timeouts do not stop a server that drips one byte every few seconds.
    total_timeout: float = 60.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    allowed_content_types: frozenset[str] = DEFAULT_ALLOWED_CONTENT_TYPES
    user_agent: str = DEFAULT_USER_AGENT
    per_host_concurrency: int = 2
    allow_hosts: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.per_host_concurrency < 1:
            raise ValueError("max_bytes, max_redirects and per_host_concurrency must be positive")
        normalised = frozenset(host_key(*_split_host_port(e)) for e in self.allow_hosts)
        object.__setattr__(self, "allow_hosts", normalised)
        types = frozenset(t.strip().lower() for t in self.allowed_content_types)
        object.__setattr__(self, "allowed_content_types", types)


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # final URL, after redirects
    status: int
    content_type: str | None  # media type only, lowercased, e.g. "text/html"
    charset: str | None  # from the Content-Type header only; ingest.decoding guesses the rest
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


# --------------------------------------------------------------------------- politeness


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


# --------------------------------------------------------------------------- address checks

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _kind_of_non_public(ip: IPAddress) -> str | None:
    # Order matters only for the message: 127.0.0.1 is also "private" to ipaddress.
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared (CGNAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # Python 3.11's properties judge these by their IPv6 prefix, not the IPv4 they carry.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_refusal(address: str) -> str | None:
    """Why we must not connect to ``address`` (e.g. "a private address (10.0.0.5)"), or None."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"an unparseable address ({address})"
    kind = None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind = _kind_of_non_public(embedded)
    kind = kind or _kind_of_non_public(ip)
    if kind is None:
        return None
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind} address ({address})"


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to, via getaddrinfo in the loop's executor."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, validates and connects to the validated IP in one step.

    httpcore hands us the URL's host; we connect to an address we checked ourselves, so a
    DNS answer that changes between check and connect (rebinding) cannot redirect us. Host
    header and TLS SNI still come from the URL because httpcore sets them, not us.
    """

    def __init__(
        self,
        *,
        allow_hosts: frozenset[str],
        resolver: Resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_hosts = allow_hosts
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise httpcore.ConnectError(f"cannot resolve {host}: {reason}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        trusted = host_key(host, port) in self._allow_hosts
        if not trusted:
            # Any bad answer refuses the host: we must not let connection order decide.
            for address in addresses:
                reason = address_refusal(address)
                if reason is not None:
                    raise BlockedAddress(f"refused: resolves to {reason}", address=address)
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            await self._check_peer(stream, address)
            logger.debug("connected to %s:%s at %s", host, port, address)
            return stream
        assert last_error is not None
        raise last_error

    async def _check_peer(self, stream: httpcore.AsyncNetworkStream, address: str) -> None:
        # Belt and braces: the inner backend got an IP literal, so this only fails if it
        # resolved or proxied behind our back.
        peer = stream.get_extra_info("server_addr")
        if not peer:
            return
        try:
            same = ipaddress.ip_address(str(peer[0]).split("%", 1)[0]) == ipaddress.ip_address(
                address.split("%", 1)[0]
            )
        except ValueError:
            same = False
        if not same:
            await stream.aclose()
            raise BlockedAddress(
                f"refused: connected to {peer[0]} instead of validated {address}",
                address=str(peer[0]),
            )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# httpx maps httpcore errors inside its own transport; ours has to do the same. Most
# specific first.
_ERROR_MAP: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _map_httpcore_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core_type, httpx_type in _ERROR_MAP:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc), request=request) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_httpcore_errors(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _map_httpcore_errors(self._request):
                await self._stream.aclose()


class _GuardedTransport(httpx.AsyncBaseTransport):
    """httpx transport over an httpcore pool that uses ``_GuardedBackend``.

    httpx.AsyncHTTPTransport has no public way to pass a network backend, so we build the
    pool ourselves with public httpcore API instead of patching httpx's private ``_pool``.
    """

    def __init__(self, backend: httpcore.AsyncNetworkBackend, *, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpcore.default_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _map_httpcore_errors(request):
            core_response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream, request),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


# --------------------------------------------------------------------------- body handling

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"RIFF", "RIFF media"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"fLaC", "FLAC audio"),
    (b"wOFF", "a web font"),
    (b"wOF2", "a web font"),
    (b"\x7fELF", "an executable"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
)


def sniff_binary(prefix: bytes) -> str | None:
    """What binary thing ``prefix`` (the start of a body) is, or None if it may be text."""
    for magic, kind in _MAGIC:
        if prefix.startswith(magic):
            return kind
    if prefix[4:8] == b"ftyp":
        return "MP4/ISO media"
    # UTF-16/32 text is full of NULs; it announces itself with a BOM.
    if b"\x00" in prefix[:_SNIFF_BYTES] and not bom_encoding(prefix):
        return "binary data (NUL bytes)"
    return None


class _BoundedInflater:
    """One Content-Encoding layer whose output can never exceed ``limit`` bytes in total.

    httpx's own decoders inflate a whole network chunk at once (a 64 KiB chunk can become
    tens of MB before we could count it); zlib's ``max_length`` stops at the cap instead.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self._deflate = encoding == "deflate"
        # "deflate" should be zlib-wrapped; some servers send raw deflate, retried below.
        wbits = zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16
        self._obj = zlib.decompressobj(wbits)
        self._started = False
        self._remaining = limit

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._obj.decompress(data, self._remaining + 1)
        except zlib.error:
            if not (self._deflate and not self._started):
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._obj.decompress(data, self._remaining + 1)
        self._started = True
        return self._take(out)

    def finish(self) -> bytes:
        out = self._take(self._obj.flush())
        if self._started and not self._obj.eof:
            # A cut-off stream would give a silently partial article; better to retry later.
            raise zlib.error("compressed stream is truncated")
        return out

    def _take(self, out: bytes) -> bytes:
        if len(out) > self._remaining:
            raise _TooLarge
        self._remaining -= len(out)
        return out


class _TooLarge(Exception):
    pass


def _inflaters(content_encoding: str | None, limit: int) -> list[_BoundedInflater]:
    tokens = [t.strip().lower() for t in (content_encoding or "").split(",")]
    tokens = [t for t in tokens if t and t != "identity"]
    inflaters = []
    for token in reversed(tokens):  # the last encoding applied is the first to undo
        if token in ("gzip", "x-gzip"):
            inflaters.append(_BoundedInflater("gzip", limit))
        elif token == "deflate":
            inflaters.append(_BoundedInflater("deflate", limit))
        else:
            raise UnsupportedContentType(f"unsupported content encoding {token!r}")
    return inflaters


def _parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'").lower() or None
    return media.strip().lower() or None, charset


# --------------------------------------------------------------------------- the fetcher


class SharedHostSlots(Protocol):
    """A per-host limit on requests in flight that several processes share."""

    def slot(self, host: str) -> contextlib.AbstractAsyncContextManager[None]: ...


def _blocking_cookie_jar() -> httpx.Cookies:
    # Fetches stay stateless: a source must not be able to track us or set state that
    # changes what another source's redirect does.
    return httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))


class SafeFetcher:
    """Fetches pages and feeds under a ``FetchPolicy``. Use as ``async with SafeFetcher():``."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        shared_slots: SharedHostSlots | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._resolver = resolver or system_resolver
        self._client: httpx.AsyncClient | None = None
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        # Slots shared with other processes (workers on several machines), taken after ours.
        self._shared_slots = shared_slots

    async def __aenter__(self) -> Self:
        backend = _GuardedBackend(allow_hosts=self.policy.allow_hosts, resolver=self._resolver)
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(backend, max_connections=100),
            # trust_env=False: an HTTP(S)_PROXY would mount a proxy transport that bypasses
            # our backend and lets the proxy resolve hosts for us.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self.policy.timeout),
            cookies=_blocking_cookie_jar(),
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": _ACCEPT_ENCODING,
            },
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _slot(self, host: str) -> asyncio.Semaphore:
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(self.policy.per_host_concurrency)
        return slot

    @contextlib.asynccontextmanager
    async def _slots(self, host: str) -> AsyncIterator[None]:
        async with self._slot(host):
            if self._shared_slots is None:
                yield
                return
            async with self._shared_slots.slot(host):
                yield

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` following redirects by hand; see the module docstring for the rules.

        Raises a ``FetchError`` subclass whose message is one line starting with the URL.
        """
        if self._client is None:
            raise RuntimeError("SafeFetcher must be used as 'async with SafeFetcher() as f'")
        client = self._client
        current = _checked_url(url, url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        loop = asyncio.get_running_loop()
        # The total budget covers network time only: waiting for a per-host slot behind other
        # fetches of the same site must not make this one time out.
        budget = self.policy.total_timeout
        for hop in range(self.policy.max_redirects + 1):
            label = url if hop == 0 else f"{url} (redirected to {current})"
            async with self._slots(current.host):
                started = loop.time()
                try:
                    async with asyncio.timeout(budget):
                        with _map_transport_errors(label):
                            request = client.build_request("GET", current, headers=headers)
                            response = await client.send(request, stream=True)
                            try:
                                target = _redirect_target(url, label, current, response)
                                if target is None:
                                    return await self._finish(
                                        label, current, response, etag, last_modified
                                    )
                            finally:
                                await response.aclose()
                except TimeoutError:
                    raise FetchTimeout(
                        f"{label}: timed out after {self.policy.total_timeout:g} s in total"
                    ) from None
                budget -= loop.time() - started
            logger.debug("%s: HTTP %s redirect to %s", url, response.status_code, target)
            current = target
        raise TooManyRedirects(f"{url}: refused: more than {self.policy.max_redirects} redirects")

    async def _finish(
        self,
        label: str,
        url: httpx.URL,
        response: httpx.Response,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            logger.debug("%s: not modified", label)
            return FetchResult(
                url=str(url),
                status=status,
                content_type=None,
                charset=None,
                body=b"",
                etag=response.headers.get("etag") or etag,
                last_modified=response.headers.get("last-modified") or last_modified,
                not_modified=True,
            )
        if status in _RATE_LIMIT_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
            raise RateLimited(
                f"{label}: rate limited (HTTP {status}){wait}",
                status=status,
                retry_after_seconds=retry_after,
            )
        if not 200 <= status < 300:
            reason = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise HTTPStatusError(f"{label}: HTTP {status}{reason}", status=status)

        media_type, charset = _parse_content_type(response.headers.get("content-type"))
        # A missing Content-Type is allowed; the binary sniff below still applies.
        if media_type is not None and media_type not in self.policy.allowed_content_types:
            raise UnsupportedContentType(
                f"{label}: refused: content type {media_type} is not a web page or feed"
            )
        cap = self.policy.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(
                f"{label}: refused: Content-Length {int(declared)} exceeds {cap} bytes"
            )
        body = await self._read_body(label, response)
        logger.debug("%s: %s %s, %d bytes", label, status, media_type, len(body))
        return FetchResult(
            url=str(url),
            status=status,
            content_type=media_type,
            charset=charset,
            body=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )

    async def _read_body(self, label: str, response: httpx.Response) -> bytes:
        cap = self.policy.max_bytes
        too_large = ResponseTooLarge(f"{label}: refused: body larger than {cap} bytes")
        try:
            layers = _inflaters(response.headers.get("content-encoding"), cap)
        except UnsupportedContentType as exc:
            raise UnsupportedContentType(f"{label}: refused: {exc}") from None
        body = bytearray()
        raw_total = 0
        sniffed = False
        try:
            async for raw in response.aiter_raw():
                raw_total += len(raw)
                if raw_total > cap:
                    raise too_large
                data = raw
                for layer in layers:
                    data = layer.feed(data)
                body += data
                if not sniffed and len(body) >= _SNIFF_BYTES:
                    _refuse_binary(label, bytes(body[:_SNIFF_BYTES]))
                    sniffed = True
            # Flush each layer, passing what an outer layer still held through the inner ones.
            tail = b""
            for layer in layers:
                if tail:
                    tail = layer.feed(tail)
                tail += layer.finish()
            body += tail
        except _TooLarge:
            raise too_large from None
        except zlib.error as exc:
            raise CorruptBody(
                f"{label}: body does not match its Content-Encoding ({exc})"
            ) from None
        if len(body) > cap:
            raise too_large
        if not sniffed:
            _refuse_binary(label, bytes(body[:_SNIFF_BYTES]))
        return bytes(body)


def _refuse_binary(label: str, prefix: bytes) -> None:
    kind = sniff_binary(prefix)
    if kind is not None:
        raise BinaryContent(f"{label}: refused: body is {kind}, not text")


def _checked_url(label: str, url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURL(f"{label}: refused: invalid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "no scheme"
        raise UnsafeURL(f"{label}: refused: scheme {scheme!r} is not http or https")
    if not parsed.host:
        raise UnsafeURL(f"{label}: refused: URL has no host")
    return parsed


def _redirect_target(
    original: str, hop_label: str, current: httpx.URL, response: httpx.Response
) -> httpx.URL | None:
    if response.status_code not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("location", "").strip()
    label = f"{original} (redirected to {location})"
    if not location:
        raise HTTPStatusError(
            f"{hop_label}: HTTP {response.status_code} redirect without a Location",
            status=response.status_code,
        )
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeURL(f"{label}: refused: invalid redirect Location ({exc})") from None
    return _checked_url(label, target)


@contextlib.contextmanager
def _map_transport_errors(label: str) -> Iterator[None]:
    try:
        yield
    except BlockedAddress as exc:
        raise BlockedAddress(f"{label}: {exc}", address=exc.address) from None
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"{label}: timed out ({_describe(exc)})") from None
    except httpx.ConnectError as exc:
        raise ConnectionFailed(f"{label}: cannot connect ({_describe(exc)})") from None
    except httpx.UnsupportedProtocol as exc:
        raise UnsafeURL(f"{label}: refused: {_describe(exc)}") from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"{label}: connection failed ({_describe(exc)})") from None
    except httpx.InvalidURL as exc:
        raise UnsafeURL(f"{label}: refused: invalid URL ({exc})") from None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
