"""Article extraction from news pages with navigation, banners and teasers around the story."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.decoding import decode_body, decode_bytes
from ingest.errors import FetchError
from ingest.fetch import FetchPolicy, SafeFetcher
from ingest.webpage import NoArticleText, declares_article, extract_article
from tests.ingest.conftest import FIXTURES, LocalServer

FURNITURE = [
    "cookies",
    "Accept all",
    "Subscribe",
    "Home",
    "Rowing club wins",
    "bus timetable",
    "morning briefing",
    "All rights reserved",
    "Privacy",
]


def page(name: str) -> str:
    return decode_bytes((FIXTURES / name).read_bytes())


def test_extracts_story_and_metadata() -> None:
    """Title, author, site name and an aware publication time come from the page's metadata."""
    article = extract_article(page("article.html"), "https://courier.example/harbour/mill")
    assert article.title == "Saltmere votes to restore its tidal mill"
    assert article.author == "Imogen Tarrant"
    assert article.site_name == "The Saltmere Courier"
    assert article.published_at == datetime(2024, 3, 14, 9, 30, tzinfo=UTC)


def test_paragraphs_are_separated_by_blank_lines() -> None:
    """Each story paragraph is its own block separated by "\\n\\n", without the headline."""
    article = extract_article(page("article.html"), "https://courier.example/harbour/mill")
    paragraphs = article.text.split("\n\n")
    assert len(paragraphs) == 5
    assert paragraphs[0].startswith("Saltmere town council voted seven to two")
    assert paragraphs[-1].endswith("open to visitors in the summer of 2026.")
    assert all("\n" not in p for p in paragraphs)


@pytest.mark.parametrize("name", ["article.html", "article_ferry.html"])
def test_navigation_banners_and_teasers_are_left_out(name: str) -> None:
    """Cookie banners, menus, related-story teasers and footers are not in the text."""
    article = extract_article(page(name), "https://courier.example/story")
    for phrase in [*FURNITURE, "Popular this week", "Read next", "Otters spotted", "Agree"]:
        assert phrase not in article.text, phrase


def test_second_layout_without_article_element() -> None:
    """A page using div.story-body instead of <article> still yields the three paragraphs."""
    article = extract_article(page("article_ferry.html"), "https://wren.example/news/ferry")
    assert article.title == "New ferry timetable adds a late crossing"
    assert article.author == "Marta Quill"
    assert article.site_name == "Wren Valley Weekly"
    assert article.published_at == datetime(2024, 2, 27, tzinfo=UTC)
    paragraphs = article.text.split("\n\n")
    assert len(paragraphs) == 3
    assert "petition signed by 640 residents" in paragraphs[1]


def test_page_without_a_story_raises() -> None:
    """An index page of links raises NoArticleText, a FetchError naming the URL."""
    with pytest.raises(NoArticleText, match=r"^https://wren\.example/sections: no article text"):
        extract_article(page("index_page.html"), "https://wren.example/sections")
    assert issubclass(NoArticleText, FetchError)


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "not html at all"])
def test_empty_or_trivial_input_raises(html: str) -> None:
    """Empty or trivial documents raise NoArticleText rather than returning empty text."""
    with pytest.raises(NoArticleText):
        extract_article(html, "https://x.example/")


async def test_fetch_decode_extract_latin1_page(web_server: LocalServer) -> None:
    """A latin-1 page fetched over HTTP decodes and extracts with its accents intact."""
    async with SafeFetcher(FetchPolicy(allow_hosts=frozenset({web_server.host_port}))) as fetcher:
        result = await fetcher.fetch(web_server.url("/pages/latin1.html"))
    article = extract_article(decode_body(result), result.url)
    assert article.title == "Caf\u00e9 on the quay reopens"
    assert "Ren\u00e9e and Jos\u00e9 Albarr\u00e1n" in article.text
    assert article.text.count("\n\n") == 2


def test_article_declaration_is_read_from_open_graph_or_json_ld() -> None:
    """Pages saying og:type=article or a JSON-LD NewsArticle are articles; home pages are not."""
    assert declares_article('<meta property="og:type" content="article">')
    assert declares_article("<meta content='article' property='og:type'>")
    assert declares_article('<script type="application/ld+json">{"@type": "NewsArticle"}')
    assert not declares_article('<meta property="og:type" content="website">')
    assert not declares_article("<html><body>Home</body></html>")
