"""Turning a scraped article body into its real paragraphs.

Scraped news carries page furniture ("News Feed", "2 min read", "Show More"), photo captions,
repeated headlines, teasers of other stories and author bios. Line rules remove what is
recognisable on its own; :func:`boilerplate_hashes` catches what is only recognisable because
it repeats across articles of the same outlet.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ingest.dates import parse_dateline

UI_LINE = re.compile(
    r"""^(
        news\s*feed | show\s*more | show\s*less | read\s*more | load\s*more | see\s*more
      | article\s*image | avatar | video | advertisement | ad | sponsored | share | share\s*this
      | subscribe | sign\s*up | sign\s*in | log\s*in | newsletter | related | related\s*sources:?
      | related\s*(stories|articles|coverage|content):? | more\s*from.* | most\s*read | trending
      | \d+\s*(min|minute)s?\s*read | listen\s*to\s*(this\s*)?article.*
      | skip\s*to\s*(main\s*)?content
      | (photo|image|video)\s*(credit)?:.* | copyright.* | ©.* | all\s*rights\s*reserved.*
      | click\s*here.* | continue\s*reading.* | updated:?.* | published:?.*
      | by\s+[\w .'-]{2,60}(?<!\.)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# "(Jane Doe / Getty Images)" at the end of a line marks a photo caption.
CAPTION_CREDIT = re.compile(r"\([^()]{2,120}/[^()]{2,120}\)\s*$")
# Past the middle of an article, these open the page's tail: bios, teasers, more links.
TAIL_MARKERS = re.compile(
    r"^(read\s*more|show\s*more|avatar|related\s*sources:?|related\s*(stories|articles):?|more\s*from.*)$",
    re.IGNORECASE,
)
TEASER_MARKER = re.compile(r"^article\s*image$", re.IGNORECASE)
# Full stops of Chinese and Japanese (。！？), Hindi (।), Arabic (؟) and Urdu (۔) end sentences too.
SENTENCE_END = re.compile(r"""[.!?…。！？｡।॥؟۔]["'”’)\]」』）]*$""")
MIN_UNPUNCTUATED_WORDS = 16
# No menu item, caption or heading is this long, whatever its script or its spaces.
MAX_FURNITURE_CHARS = 200
# Scripts written without spaces between words: about two characters make a word.
SPACELESS_SCRIPT = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana, Han
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]"  # Thai, Lao, Myanmar, Khmer
)


def normalize(text: str) -> str:
    """Unicode-normalized, whitespace-collapsed text, for comparing lines."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def paragraph_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).casefold().encode()).hexdigest()


def candidate_paragraphs(title: str, body: str) -> list[str]:
    """Body lines that can be content, after the rules that need no other article."""
    lines = [normalize(line) for line in body.splitlines()]
    lines = [line for line in lines if line]
    lines = _cut_tail(lines)
    lines = _drop_teasers(lines)
    title_key = normalize(title).casefold()
    kept: list[str] = []
    for line in lines:
        if line.casefold() == title_key or _is_furniture(line):
            continue
        if kept and line == kept[-1]:
            continue
        kept.append(line)
    return kept


def clean_paragraphs(title: str, body: str, boilerplate: set[str] | frozenset[str]) -> list[str]:
    """The article's real paragraphs, with lines repeated across the outlet removed."""
    return [p for p in candidate_paragraphs(title, body) if paragraph_hash(p) not in boilerplate]


def _is_furniture(line: str) -> bool:
    if UI_LINE.match(line) or CAPTION_CREDIT.search(line) or parse_dateline(line):
        return True
    # Headings, names, job titles and truncated teasers: short and not a sentence.
    short = _words(line) < MIN_UNPUNCTUATED_WORDS and len(line) < MAX_FURNITURE_CHARS
    return short and not SENTENCE_END.search(line)


def _words(line: str) -> int:
    return len(line.split()) + len(SPACELESS_SCRIPT.findall(line)) // 2


def _cut_tail(lines: list[str]) -> list[str]:
    total = sum(len(line) for line in lines)
    seen = 0
    for index, line in enumerate(lines):
        if seen > total * 0.5 and TAIL_MARKERS.match(line):
            return lines[:index]
        seen += len(line)
    return lines


def _drop_teasers(lines: list[str]) -> list[str]:
    """A teaser of another story is a headline and a blurb just above an "Article image" line."""
    drop: set[int] = set()
    for index, line in enumerate(lines):
        if TEASER_MARKER.match(line):
            drop.add(index)
            for back in (1, 2):
                if index - back >= 0:
                    drop.add(index - back)
    return [line for index, line in enumerate(lines) if index not in drop]


def boilerplate_hashes(articles: dict[int, set[str]], min_articles: int = 2) -> set[str]:
    """Paragraph hashes shared by ``min_articles`` or more independent articles.

    ``articles`` maps an article id to its paragraph hashes. Two versions of the same story
    share most paragraphs without any of them being boilerplate, so an article counts only
    when it is not a near-copy (Jaccard ≥ 0.5) of one already counted.
    """
    holders: dict[str, list[int]] = {}
    for article_id, hashes in articles.items():
        for digest in hashes:
            holders.setdefault(digest, []).append(article_id)
    result: set[str] = set()
    for digest, ids in holders.items():
        if len(ids) < min_articles:
            continue
        independent: list[set[str]] = []
        for article_id in sorted(ids):
            mine = articles[article_id]
            if all(_jaccard(mine, other) < 0.5 for other in independent):
                independent.append(mine)
            if len(independent) >= min_articles:
                result.add(digest)
                break
    return result


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
