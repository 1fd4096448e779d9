"""A local web server on 127.0.0.1 serving feeds, pages and hostile responses for fetch tests.

It runs in a thread (not on the test's event loop) so a blocked or slow handler can never
stall the client under test, and one server serves the whole session.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import gzip
import hashlib
import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest

from ingest.fetch import FetchPolicy, FetchResult, SafeFetcher

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "web"
# A small news site for refresh tests; "{{BASE}}" in these files becomes the server's URL.
SITE = FIXTURES / "site"
SITE_LAST_MODIFIED = "Fri, 15 Mar 2024 10:00:00 GMT"

ETAG = '"rss-v1"'
LAST_MODIFIED = "Wed, 13 Mar 2024 08:00:00 GMT"
# Bigger than FetchPolicy's default 5 MB cap.
HUGE_BYTES = 6 * 1024 * 1024
BOMB_BYTES = 16 * 1024 * 1024
DRIP_SECONDS = 0.2
# Longer than any deadline a test sets; the handler ends early when the client hangs up.
DRIP_FOR_SECONDS = 90

STATIC: dict[str, tuple[str, str | None]] = {
    "/feeds/rss.xml": ("rss.xml", "application/rss+xml; charset=utf-8"),
    "/feeds/atom.xml": ("atom.xml", "application/atom+xml"),
    "/feeds/relative.xml": ("relative.xml", "text/xml"),
    "/feeds/malformed.xml": ("malformed.xml", "application/rss+xml"),
    "/feeds/broken.xml": ("broken.xml", "application/rss+xml"),
    "/articles/mill.html": ("article.html", "text/html; charset=utf-8"),
    "/articles/ferry.html": ("article_ferry.html", "text/html; charset=utf-8"),
    "/pages/index.html": ("index_page.html", "text/html; charset=utf-8"),
    "/pages/with-feed.html": ("with_feed.html", "text/html"),
    "/pages/latin1.html": ("latin1.html", "text/html"),
    "/pages/latin1-header.html": ("latin1.html", "text/html; charset=ISO-8859-1"),
    "/pages/invalid-utf8.html": ("invalid_utf8.html", "text/html; charset=utf-8"),
    "/pages/no-type": ("article.html", None),
}

# Smallest valid PNG: signature, IHDR, IDAT, IEND for one transparent pixel.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@functools.cache
def huge_feed() -> bytes:
    """An RSS feed generated on demand, just over HUGE_BYTES."""
    item = (
        "<item><title>Tide report {n}</title>"
        "<link>https://courier.example/tides/{n}</link>"
        "<description>" + "Calm water, light wind from the west. " * 20 + "</description></item>\n"
    )
    parts = ['<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>\n']
    size = len(parts[0])
    n = 0
    while size < HUGE_BYTES:
        chunk = item.format(n=n)
        parts.append(chunk)
        size += len(chunk)
        n += 1
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


@functools.cache
def gzip_bomb() -> bytes:
    """Tens of kilobytes on the wire, BOMB_BYTES of whitespace once inflated."""
    return gzip.compress(b"<html><body>" + b" " * BOMB_BYTES + b"</body></html>", 9)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class LocalServer:
    port: int
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    # Responses a test sets (and changes) under /dyn/: path → (body, content type).
    dynamic: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # ETags a test wants a /dyn/ path to send instead of its body's hash.
    etags: dict[str, str] = field(default_factory=dict)
    # Paths under /dyn/ that answer 200 and then drip their body a byte every DRIP_SECONDS.
    dripping: set[str] = field(default_factory=set)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def reset_concurrency(self) -> None:
        with self.lock:
            self.in_flight = 0
            self.max_in_flight = 0


class _Handler(BaseHTTPRequestHandler):
    server_version = "fixture/1.0"
    # HTTP/1.0: every response closes the connection, so a body without Content-Length is
    # delimited by the close and the client has to stream it.
    protocol_version = "HTTP/1.0"
    state: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.state.lock:
            self.state.seen.append(Seen(path, {k.lower(): v for k, v in self.headers.items()}))
        # The client hangs up on purpose in some tests (size caps, timeouts).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(path)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = "text/plain",
        headers: dict[str, str] | None = None,
        length: bool = True,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, b"", headers={"Location": location})

    def _route(self, path: str) -> None:
        port = self.state.port
        if path in STATIC:
            name, content_type = STATIC[path]
            self._send(200, (FIXTURES / name).read_bytes(), content_type)
        elif path.startswith("/site/"):
            self._site(path.removeprefix("/site/"))
        elif path.startswith("/dyn/"):
            with self.state.lock:
                found = self.state.dynamic.get(path)
                drip = path in self.state.dripping
            if drip:
                self._drip()
            elif found is None:
                self._send(404, b"not found")
            else:
                self._cacheable(*found)
        elif path == "/conditional/feed.xml":
            self._conditional()
        elif path == "/echo":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self._send(200, body, "application/json")
        elif path == "/limited":
            self._send(429, b"slow down", headers={"Retry-After": "120"})
        elif path == "/busy":
            when = email.utils.formatdate(time.time() + 90, usegmt=True)
            self._send(503, b"maintenance", headers={"Retry-After": when})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"error page")
        elif path == "/redirect/to-feed":
            self._redirect("../feeds/rss.xml?utm_source=redirect")
        elif path.startswith("/redirect/chain/"):
            step = int(path.rsplit("/", 1)[1])
            if step < 3:
                self._redirect(f"/redirect/chain/{step + 1}")
            else:
                self._redirect("http://169.254.169.254/latest/meta-data/", 301)
        elif path == "/redirect/private":
            self._redirect("http://10.0.0.1/admin", 307)
        elif path == "/redirect/localhost":
            self._redirect(f"http://localhost:{port}/feeds/rss.xml")
        elif path == "/redirect/file":
            self._redirect("file:///etc/passwd")
        elif path == "/redirect/loop":
            self._redirect("/redirect/loop")
        elif path == "/redirect/no-location":
            self._send(302, b"")
        elif path.startswith("/redirect/n/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/redirect/n/{left - 1}" if left > 0 else "/feeds/rss.xml", 308)
        elif path == "/gzip/mill.html":
            body = gzip.compress((FIXTURES / "article.html").read_bytes())
            self._send(200, body, "text/html", headers={"Content-Encoding": "gzip"})
        elif path == "/deflate/mill.html":
            body = zlib.compress((FIXTURES / "article.html").read_bytes())
            self._send(200, body, "text/html", headers={"Content-Encoding": "deflate"})
        elif path == "/brotli/mill.html":
            self._send(200, b"\x0b\x02\x80hi\x03", "text/html", headers={"Content-Encoding": "br"})
        elif path == "/bomb.html":
            self._send(200, gzip_bomb(), "text/html", headers={"Content-Encoding": "gzip"})
        elif path == "/corrupt-gzip.html":
            # A valid gzip header followed by a deflate block of the reserved type 3.
            body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 16
            self._send(200, body, "text/html", headers={"Content-Encoding": "gzip"})
        elif path == "/truncated-gzip.html":
            body = gzip.compress((FIXTURES / "article.html").read_bytes())[:-40]
            self._send(200, body, "text/html", headers={"Content-Encoding": "gzip"})
        elif path == "/binary-as-html":
            self._send(200, PNG_BYTES, "text/html; charset=utf-8")
        elif path == "/nul-as-html":
            self._send(200, b"<html><body>\x00\x01\x02\x03" + b"x" * 2000, "text/html")
        elif path == "/image.png":
            self._send(200, PNG_BYTES, "image/png")
        elif path == "/huge/declared.xml":
            # Claims a body far over the cap; the client must refuse before reading it.
            self._send(
                200,
                b"<rss>",
                "application/rss+xml",
                headers={"Content-Length": str(HUGE_BYTES * 10)},
                length=False,
            )
        elif path == "/huge/streamed.xml":
            self._send(200, b"", "application/rss+xml", length=False)
            body = huge_feed()
            for start in range(0, len(body), 64 * 1024):
                self.wfile.write(body[start : start + 64 * 1024])
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, b"finally", "text/plain")
        elif path == "/drip":
            self._send(200, b"", "text/plain", length=False)
            for _ in range(30):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/concurrency":
            with self.state.lock:
                self.state.in_flight += 1
                self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
            try:
                time.sleep(0.15)
            finally:
                with self.state.lock:
                    self.state.in_flight -= 1
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404, b"not found")

    def _drip(self) -> None:
        """Every read gets a byte well within any read timeout; the page never finishes."""
        self._send(200, b"", "text/html; charset=utf-8", length=False)
        self.wfile.write(b"<!DOCTYPE html><html><body><p>")
        for _ in range(int(DRIP_FOR_SECONDS / DRIP_SECONDS)):
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(DRIP_SECONDS)

    def _site(self, name: str) -> None:
        file = (SITE / name).resolve()
        if not file.is_relative_to(SITE) or not file.is_file():
            self._send(404, b"not found")
            return
        body = file.read_bytes().replace(b"{{BASE}}", self.state.url("").encode())
        if file.suffix == ".html":
            content_type = "text/html; charset=utf-8"
        elif "atom" in file.name:
            content_type = "application/atom+xml"
        else:
            content_type = "application/rss+xml"
        self._cacheable(body, content_type)

    def _cacheable(self, body: bytes, content_type: str) -> None:
        """200 with an ETag of the body, or 304 when the client already has this body."""
        etag = self.state.etags.get(self.path.split("?", 1)[0])
        etag = etag or '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", None, headers={"ETag": etag}, length=False)
            return
        headers = {"ETag": etag, "Last-Modified": SITE_LAST_MODIFIED}
        self._send(200, body, content_type, headers=headers)

    def _conditional(self) -> None:
        if self.headers.get("If-None-Match") == ETAG or (
            self.headers.get("If-None-Match") is None
            and self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self._send(304, b"", None, headers={"ETag": ETAG}, length=False)
            return
        body = (FIXTURES / "rss.xml").read_bytes()
        self._send(
            200, body, "application/rss+xml", headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
        )


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are part of the tests


class HeldFetcher(SafeFetcher):
    """A real fetcher whose first fetch waits until the test lets it go."""

    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__(policy)
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def fetch(self, url: str, **conditions: str | None) -> FetchResult:
        if not self.started.is_set():
            self.started.set()
            await self.release.wait()
        return await super().fetch(url, **conditions)


@pytest.fixture(scope="session")
def web_server() -> Iterator[LocalServer]:
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port."""

    # A handler class per server: test modules elsewhere may start their own server.
    class Handler(_Handler):
        pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    state = LocalServer(port=server.server_address[1])
    Handler.state = state
    thread = threading.Thread(target=server.serve_forever, name="web-fixture", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def connect_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect the fetcher makes; anything but 127.0.0.1 fails instead of connecting."""
    log: list[tuple[str, int]] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def guarded(
        self: httpcore.AnyIOBackend,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        log.append((host, port))
        if host != "127.0.0.1":
            raise httpcore.ConnectError(f"test network: refusing to connect to {host}")
        return await original(
            self,
            host,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded)
    return log
