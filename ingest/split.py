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
    parts: list[str] = []
    start = 0
    for match in SENTENCE_BOUNDARY.finditer(text):
        end = match.start() + len(match.group(0).rstrip())
        parts.append(text[start:end].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def split_passages(
    paragraphs: list[str],
    max_chars: int = MAX_PASSAGE_CHARS,
    target_chars: int = TARGET_PASSAGE_CHARS,
) -> list[str]:
    """Group paragraphs into passages of about ``target_chars``, never above ``max_chars``.

    Short paragraphs join their neighbours; a paragraph longer than ``max_chars`` is cut at
    sentence boundaries (at word boundaries only for a single over-long sentence).
    """
    pieces: list[str] = []
    for paragraph in paragraphs:
        pieces.extend(_fit(paragraph, max_chars))
    passages: list[str] = []
    current = ""
    for piece in pieces:
        joined = f"{current}{PARAGRAPH_SEPARATOR}{piece}" if current else piece
        if current and (len(joined) > max_chars or len(current) >= target_chars):
            passages.append(current)
            current = piece
        else:
            current = joined
    if current:
        # A short last piece joins the passage before it when both fit.
        if passages and len(current) < target_chars // 3:
            merged = f"{passages[-1]}{PARAGRAPH_SEPARATOR}{current}"
            if len(merged) <= max_chars:
                passages[-1] = merged
                return passages
        passages.append(current)
    return passages


def _fit(paragraph: str, max_chars: int) -> list[str]:
    if len(paragraph) <= max_chars:
        return [paragraph]
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(paragraph):
        for part in _cut_words(sentence, max_chars):
            joined = f"{current} {part}" if current else part
            if len(joined) > max_chars:
                chunks.append(current)
                current = part
            else:
                current = joined
    if current:
        chunks.append(current)
    return chunks


def _cut_words(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    parts: list[str] = []
    current = ""
    for word in sentence.split():
        word = word[:max_chars]
        joined = f"{current} {word}" if current else word
        if len(joined) > max_chars:
            parts.append(current)
            current = word
        else:
            current = joined
    if current:
        parts.append(current)
    return parts
