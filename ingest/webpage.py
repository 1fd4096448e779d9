"""The story out of a news web page: main text without navigation, banners or teasers."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trafilatura
from trafilatura.settings import Document

from ingest.dates import parse_iso
from ingest.errors import FetchError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MIN_CHARS",
    "ExtractedArticle",
    "NoArticleText",
    "declares_article",
    "extract_article",
]

# Ask htmldate for the time as well when the page has one; date-only pages give midnight.
_DATE_PARAMS = {
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
    "original_date": True,
    "extensive_search": False,
}
_LIST_TAGS = frozenset({"list"})
# trafilatura's fallbacks will return a lone "Home" link from a page with no story at all.
DEFAULT_MIN_CHARS = 120


_OG_ARTICLE = re.compile(
    r"""<meta[^>]+property\s*=\s*["']og:type["'][^>]*content\s*=\s*["']article["']""", re.I
)
_OG_ARTICLE_REVERSED = re.compile(
    r"""<meta[^>]+content\s*=\s*["']article["'][^>]*property\s*=\s*["']og:type["']""", re.I
)
_LD_ARTICLE = re.compile(r""""@type"\s*:\s*\[?\s*"(?:News|Reportage|Analysis)?Article["\]]""", re.I)


class NoArticleText(FetchError):
    """The page has no main text we could find (an index page, a paywall, a video...)."""


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    title: str | None
    text: str  # paragraphs separated by a blank line ("\n\n")
    author: str | None
    published_at: datetime | None  # timezone-aware
    site_name: str | None


def _squash(text: str | None) -> str:
    return " ".join((text or "").split())


def _paragraphs(body: Any) -> list[str]:
    """One string per block of trafilatura's XML body, in document order."""
    paragraphs: list[str] = []
    for element in body:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _LIST_TAGS:
            for item in element.iter("item"):
                text = _squash("".join(item.itertext()))
                if text:
                    paragraphs.append(text)
        elif tag == "table":
            for row in element.iter("row"):
                cells = [_squash("".join(cell.itertext())) for cell in row]
                line = " | ".join(c for c in cells if c)
                if line:
                    paragraphs.append(line)
        else:
            text = _squash("".join(element.itertext()))
            if text:
                paragraphs.append(text)
        # Text trailing an element belongs to the body, not to the element.
        tail = _squash(element.tail)
        if tail:
            paragraphs.append(tail)
    return paragraphs


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_iso(value)
    if parsed is None:
        logger.debug("unparseable date from trafilatura: %r", value)
    return parsed


def declares_article(html: str) -> bool:
    """Whether a page says it is one article (Open Graph or JSON-LD), not a home or section."""
    head = html[:200_000]
    return bool(_OG_ARTICLE.search(head) or _OG_ARTICLE_REVERSED.search(head)) or bool(
        _LD_ARTICLE.search(head)
    )


def extract_article(html: str, url: str, *, min_chars: int = DEFAULT_MIN_CHARS) -> ExtractedArticle:
    """Extract the main story of ``html`` (fetched from ``url``).

    Comments are left out and precision is favoured over recall, so a cookie banner or a list
    of other stories rarely gets in. Raises ``NoArticleText`` when no main text is found or it
    is shorter than ``min_chars``.
    CPU-bound: call it in a worker thread from async code.
    """
    document = trafilatura.bare_extraction(
        html,
        url=url,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        favor_precision=True,
        with_metadata=True,
        date_extraction_params=_DATE_PARAMS,
    )
    if document is not None and not isinstance(document, Document):
        raise TypeError("trafilatura returned a dict; as_dict must stay False")
    body = document.body if document is not None else None
    paragraphs = _paragraphs(body) if body is not None else []
    if document is not None and not paragraphs:
        # Some trafilatura paths fill only the text, one block per line.
        paragraphs = [_squash(line) for line in (document.text or "").splitlines()]
        paragraphs = [p for p in paragraphs if p]
    title = _squash(getattr(document, "title", None)) or None
    # The headline is usually repeated as the first block; it is the title, not a paragraph.
    if paragraphs and title and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    if document is None or not paragraphs:
        raise NoArticleText(f"{url}: no article text found on the page")
    size = sum(len(p) for p in paragraphs)
    if size < min_chars:
        raise NoArticleText(f"{url}: no article text found (only {size} characters of text)")
    return ExtractedArticle(
        title=title,
        text="\n\n".join(paragraphs),
        author=_squash(document.author) or None,
        published_at=_parse_date(document.date),
        site_name=_squash(document.sitename) or None,
    )
