"""Paragraphs into quotable passages that fit a Discord embed field."""

from __future__ import annotations

import re

MAX_PASSAGE_CHARS = 1000
TARGET_PASSAGE_CHARS = 500
PARAGRAPH_SEPARATOR = "\n\n"
# A sentence ends at . ! ? … (with closing quotes) followed by space and an uppercase start;
# "U.S. President" stays whole because the split also needs the next word capitalised
# after a lowercase letter or digit before the stop. Latin, Greek and Cyrillic letters count.
# Chinese and Japanese end sentences with full-width stops and no space after them (！ and ？
# are ASCII once clean.normalize has applied NFKC); Hindi
# (danda), Arabic and Urdu with their own marks followed by a space.
_LOWER = "a-z\u00df-\u00ff\u03ac-\u03ce\u0430-\u045f"
_UPPER = "A-Z\u00c0-\u00de\u0386-\u03ab\u0400-\u042f"
SENTENCE_BOUNDARY = re.compile(
    rf"""(?<=[{_LOWER}0-9%)\]][.!?…])["'”’)\]]*\s+(?=["'“‘(\[]?[{_UPPER}0-9])"""
    r"""|(?:(?<=[。！？｡])|(?<=[\u3040-\u30ff\u3400-\u9fff][!?]))[」』”’）)\]]*\s*(?=\S)"""
    r"""|(?<=[।॥؟۔])\s+"""
)
_WORD = re.compile(r"\S+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph, verbatim, without the spaces between them."""
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
    """The paragraph, or its sentences (words, for one over-long sentence) packed to fit.

    Pieces are slices of the paragraph, so a quote keeps the spacing it had (none between
    Chinese sentences). A run longer than ``max_chars`` without a space (a URL, a table of
    digits, a language written without spaces) is cut every ``max_chars`` characters.
    """
    if len(paragraph) <= max_chars:
        return [paragraph]
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(paragraph):
        if end - start <= max_chars:
            spans.append((start, end))
            continue
        words = [
            (cut, min(cut + max_chars, word.end()))
            for word in _WORD.finditer(paragraph, start, end)
            for cut in range(word.start(), word.end(), max_chars)
        ]
        spans.extend(_pack_spans(words, max_chars))
    return [paragraph[start:end] for start, end in _pack_spans(spans, max_chars)]


def _pack_spans(spans: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Greedily merge consecutive (start, end) spans while the merged span fits."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and end - merged[-1][0] <= max_chars:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
