"""Paragraphs into quotable passages that fit a Discord embed field."""

from __future__ import annotations

import re

MAX_PASSAGE_CHARS = 1000
TARGET_PASSAGE_CHARS = 500
PARAGRAPH_SEPARATOR = "\n\n"
# A sentence ends at . ! ? … (with closing quotes) followed by space and an uppercase start;
# "U.S. President" stays whole because the split also needs the next word capitalised
# after a lowercase letter or digit before the stop.
SENTENCE_BOUNDARY = re.compile(r"""(?<=[a-z0-9%)\]][.!?…])["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; joined back with single spaces they give the paragraph."""
    return [text[start:end] for start, end in sentence_spans(text)]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence of ``text``, without surrounding whitespace.

    A paragraph break always ends a sentence. Slicing gives sentences verbatim, which is
    what a quote needs to grow sentence by sentence.
    """
    spans: list[tuple[int, int]] = []
    offset = 0
    for paragraph in text.split(PARAGRAPH_SEPARATOR):
        start = 0
        for match in SENTENCE_BOUNDARY.finditer(paragraph):
            end = match.start() + len(match.group(0).rstrip())
            spans.append(_trimmed(paragraph, offset, start, end))
            start = match.end()
        spans.append(_trimmed(paragraph, offset, start, len(paragraph)))
        offset += len(paragraph) + len(PARAGRAPH_SEPARATOR)
    return [(start, end) for start, end in spans if end > start]


def _trimmed(paragraph: str, offset: int, start: int, end: int) -> tuple[int, int]:
    piece = paragraph[start:end]
    lead = len(piece) - len(piece.lstrip())
    return offset + start + lead, offset + start + len(piece.rstrip())


def split_passages(
    paragraphs: list[str],
    max_chars: int = MAX_PASSAGE_CHARS,
    target_chars: int = TARGET_PASSAGE_CHARS,
) -> list[str]:
    """Group paragraphs into passages of about ``target_chars``, never above ``max_chars``.

    Short paragraphs join their neighbours; a paragraph longer than ``max_chars`` is cut at
    sentence boundaries (at word boundaries only for a single over-long sentence).
    """
    pieces = [piece for paragraph in paragraphs for piece in _fit(paragraph, max_chars)]
    passages = _pack(pieces, PARAGRAPH_SEPARATOR, max_chars, target_chars)
    # A short last passage joins the one before it when both fit.
    if len(passages) > 1 and len(passages[-1]) < target_chars // 3:
        merged = f"{passages[-2]}{PARAGRAPH_SEPARATOR}{passages[-1]}"
        if len(merged) <= max_chars:
            passages[-2:] = [merged]
    return passages


def _pack(parts: list[str], separator: str, max_chars: int, target_chars: int) -> list[str]:
    """Greedily join consecutive parts until the next would pass ``max_chars`` (or the
    group already reaches ``target_chars``)."""
    groups: list[str] = []
    current = ""
    for part in parts:
        joined = f"{current}{separator}{part}" if current else part
        if current and (len(joined) > max_chars or len(current) >= target_chars):
            groups.append(current)
            current = part
        else:
            current = joined
    if current:
        groups.append(current)
    return groups


def _fit(paragraph: str, max_chars: int) -> list[str]:
    """The paragraph, or its sentences (words, for one over-long sentence) packed to fit."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    parts: list[str] = []
    for sentence in split_sentences(paragraph):
        if len(sentence) <= max_chars:
            parts.append(sentence)
        else:
            words = [word[:max_chars] for word in sentence.split()]
            parts.extend(_pack(words, " ", max_chars, max_chars))
    return _pack(parts, " ", max_chars, max_chars)
