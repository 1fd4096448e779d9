"""A local news site for the worker tests: feeds of made-up stories, every request counted.

Each story's page can be made slow (``delay``), so a test can kill a worker in the middle of
a refresh; ``max_in_flight`` records the most requests the site ever served at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Story:
    slug: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass
class NewsSite:
    port: int = 0
    address: str = "127.0.0.1"
    feeds: dict[str, list[Story]] = field(default_factory=dict)
    delay: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    # time.monotonic() when each path was first asked for (the latency bench's "fetched").
    first_requested: dict[str, float] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host_port(self) -> str:
        return f"{self.address}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"

    def feed_path(self, name: str) -> str:
        return f"/feeds/{name}.xml"

    def page_path(self, name: str, story: Story) -> str:
        return f"/news/{name}/{story.slug}.html"

    def page_requests(self, name: str) -> dict[str, int]:
        with self.lock:
            return {s.slug: self.requests[self.page_path(name, s)] for s in self.feeds[name]}

    def feed_xml(self, name: str) -> bytes:
        when = format_datetime(datetime(2026, 11, 30, 9, tzinfo=UTC))
        items = "".join(
            f"<item><title>{s.title}</title><link>{self.url(self.page_path(name, s))}</link>"
            f"<guid>{self.url(self.page_path(name, s))}</guid><pubDate>{when}</pubDate></item>"
            for s in self.feeds[name]
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name.title()} Gazette'
            f"</title><link>{self.url('/')}</link><description>news</description>{items}"
            "</channel></rss>"
        ).encode()

    def page_html(self, name: str, story: Story) -> bytes:
        body = "".join(f"<p>{p}</p>" for p in story.paragraphs)
        return (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{story.title}</title>'
            f'<meta property="og:site_name" content="{name.title()} Gazette">'
            '<meta property="og:type" content="article">'
            '<meta name="date" content="2026-11-30"></head><body><article>'
            f"<h1>{story.title}</h1>{body}</article></body></html>"
        ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    site: NewsSite

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        site = self.site
        path = self.path.split("?", 1)[0]
        with site.lock:
            site.requests[path] += 1
            site.first_requested.setdefault(path, time.monotonic())
            site.in_flight += 1
            site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            self._answer(path)
        finally:
            with site.lock:
                site.in_flight -= 1

    def _answer(self, path: str) -> None:
        site = self.site
        for name, stories in site.feeds.items():
            if path == site.feed_path(name):
                return self._send(site.feed_xml(name), "application/rss+xml")
            for story in stories:
                if path == site.page_path(name, story):
                    time.sleep(site.delay)
                    return self._send(site.page_html(name, story), "text/html; charset=utf-8")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def news_site(address: str = "127.0.0.1", **feeds: list[Story]) -> Iterator[NewsSite]:
    """The site on ``address`` (any loopback address: 127.0.0.2 is another host)."""
    site = NewsSite(feeds=dict(feeds), address=address)
    handler = type("Handler", (_Handler,), {"site": site})
    server = _Server((address, 0), handler)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


HARBOUR = [
    Story(
        "terminal",
        "Quillon ferry terminal to open with 37 berths",
        (
            "The new Quillon ferry terminal will open in May with 37 berths for passenger"
            " boats, the harbour board said on Monday after the last inspection passed.",
            "The board said the terminal cost 41 million crowns and took three years to"
            " build on the old coal wharf at the mouth of the Quill estuary.",
        ),
    ),
    Story(
        "pilots",
        "Harbour pilots agree new night rota",
        (
            "Harbour pilots in Quillon have agreed a night rota that keeps two pilots on"
            " call between midnight and six in the morning, ending a month-long dispute.",
            "The pilots' association said the rota would be reviewed after the winter"
            " storms, when most night arrivals are container ships running late.",
        ),
    ),
]
UPLANDS = [
    Story(
        "observatory",
        "Fenwick observatory telescope sees first light",
        (
            "The rebuilt telescope at the Fenwick Hill observatory saw first light on"
            " Saturday, with a mirror of 2.4 metres ground by students from the college.",
            "Volunteers will open the dome to visitors on clear Friday evenings from"
            " December, the observatory trust said in a statement.",
        ),
    ),
]


def slow_feed(count: int) -> list[Story]:
    """``count`` stories, each with a fact of its own, for a refresh that takes a while."""
    return [
        Story(
            f"orchard-{i}",
            f"Orchard number {i} plants {100 + i} pear trees",
            (
                f"Orchard number {i} on the Brackley estate planted {100 + i} pear trees this"
                " week, the estate's growers' cooperative said in its autumn newsletter.",
                "The cooperative said the young trees would bear their first fruit in four"
                " years, and that volunteers are welcome at every planting weekend.",
            ),
        )
        for i in range(count)
    ]
