"""Discord's message limits, and cutting text to fit them without breaking words or links.

Discord rejects a whole message (400, code 50035) when any part is too long, and discord.py
does not check beforehand, so everything the bot sends is cut to these sizes first.
Pure functions, no discord import: the console and the tests use them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

CONTENT = 2000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
EMBED_TOTAL = 6000
COMMAND_DESCRIPTION = 100
CHOICES = 25
CHOICE_NAME = 100

ELLIPSIS = "…"

# Spans that must never be cut in two: masked links, <links>, bare URLs.
LINK = re.compile(r"\[[^\]\n]*\]\([^)\s]*\)|<https?://[^>\s]+>|https?://\S+")
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+")
# Below this share of the room, a sentence boundary wastes too much: fall back to a word one.
SENTENCE_MIN_SHARE = 0.6


def _link_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in LINK.finditer(text)]


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits, else its start cut at a sentence or word boundary plus "…".

    A cut never falls inside a link: the link is dropped whole instead.
    """
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    if room <= 0:
        return ELLIPSIS[:limit] if limit > 0 else ""
    cut = room
    for start, end in _link_spans(text):
        if start < cut < end:
            cut = start
            break
    head = text[:cut]
    if cut < room:  # stopped before a link: that is already a clean boundary
        return head.rstrip() + ELLIPSIS
    sentence_ends = [m.end() for m in SENTENCE_END.finditer(text[: cut + 1])]
    sentence_ends = [end for end in sentence_ends if end <= cut]
    if sentence_ends and sentence_ends[-1] >= room * SENTENCE_MIN_SHARE:
        return text[: sentence_ends[-1]].rstrip() + ELLIPSIS
    if not text[cut].isspace():
        space = head.rfind(" ")
        newline = head.rfind("\n")
        boundary = max(space, newline)
        if boundary > 0:
            head = head[:boundary]
    return _strip_dangling_escape(head.rstrip()) + ELLIPSIS


def truncate_start(text: str, limit: int) -> str:
    """``text`` if it fits, else "…" plus its end, starting at a sentence or word boundary."""
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    if room <= 0:
        return ELLIPSIS[:limit] if limit > 0 else ""
    start = len(text) - room
    for link_start, link_end in _link_spans(text):
        if link_start < start < link_end:
            start = link_end
            break
    tail = text[start:]
    if start > 0 and not text[start - 1].isspace():
        sentence_starts = [m.end() - start for m in SENTENCE_END.finditer(text, start)]
        if sentence_starts and sentence_starts[0] <= room * (1 - SENTENCE_MIN_SHARE):
            tail = tail[sentence_starts[0] :]
        else:
            boundary = min((i for i in (tail.find(" "), tail.find("\n")) if i >= 0), default=-1)
            if boundary >= 0:
                tail = tail[boundary + 1 :]
    return ELLIPSIS + tail.lstrip()


def _strip_dangling_escape(text: str) -> str:
    # A cut right after the backslash of an escape ("\*") would escape our own "…" or "**".
    trailing = len(text) - len(text.rstrip("\\"))
    return text[:-1] if trailing % 2 else text


def shorten_around(before: str, focus: str, after: str, limit: int) -> tuple[str, str, str]:
    """Cut the context around ``focus`` (the sentence that matters) to fit ``limit`` in all.

    The focus is kept whole when it fits; the room left goes a third to what comes before
    and the rest to what follows, and any room one side does not need goes to the other.
    """
    if len(before) + len(focus) + len(after) <= limit:
        return before, focus, after
    if len(focus) >= limit:
        return "", truncate(focus, limit), ""
    room = limit - len(focus)
    keep_before = min(len(before), room // 3)
    keep_after = min(len(after), room - keep_before)
    keep_before = min(len(before), room - keep_after)
    return truncate_start(before, keep_before), focus, truncate(after, keep_after)


def fit_lines(lines: Sequence[str], limit: int, more: str = "… and {n} more") -> str:
    """Whole lines joined by newlines while they fit, then a line saying how many were left."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        line = truncate(line, limit)
        cost = len(line) + (1 if kept else 0)
        left = len(lines) - index - 1
        reserve = len(more.format(n=left)) + 1 if left else 0
        if used + cost + reserve > limit:
            note = more.format(n=len(lines) - index)
            while kept and used + 1 + len(note) > limit:
                used -= len(kept.pop()) + (1 if kept else 0)
                note = more.format(n=len(lines) - len(kept))
            return "\n".join([*kept, note])[:limit]
        kept.append(line)
        used += cost
    return "\n".join(kept)


def fit(render: Callable[[int], str], limit: int) -> str:
    """The longest rendering that fits: ``render(budget)`` is retried with smaller budgets.

    For text that grows when formatted (escapes, quote markers), so its raw length cannot
    be budgeted exactly up front.
    """
    budget = limit
    while True:
        text = render(budget)
        if len(text) <= limit or budget <= 0:
            return text[:limit] if len(text) > limit else text
        # Formatting grows roughly in proportion to the text: shrink the budget likewise.
        budget = min(budget - 1, budget * limit // len(text))
