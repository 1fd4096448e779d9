"""A quoted passage widened with the sentences around it, still verbatim.

Passages are ranked at about 500 characters, which keeps the ranking precise; but the
answer is often a sentence or two past where the question's words are, across a passage
boundary. Quoting up to ``QUOTE_CHARS`` of the surrounding text of the same article (the
"small to big" pattern) shows that sentence without ranking bigger, vaguer passages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from index.lexical import tokenize
from ingest.split import PARAGRAPH_SEPARATOR, sentence_spans

log = logging.getLogger(__name__)

# Within Discord's 1,024-character embed field, with room for the ellipsis-free cut.
QUOTE_CHARS = 1000


@dataclass(frozen=True)
class Surroundings:
    """The same article's passages on either side of a quoted one (None at the edges)."""

    before: str | None
    after: str | None


def widen(
    question: str,
    core: str,
    around: Surroundings,
    limit: int = QUOTE_CHARS,
    shown_elsewhere: Callable[[str], bool] = lambda _: False,
) -> str:
    """``core`` plus whole sentences of its neighbours, up to ``limit`` characters.

    Sentence by sentence, the side whose next sentence shares more of the question's words
    grows first (the following text on a tie: stories explain after they name); the result is
    the end of the passage before, the passage, and the start of the one after. A side stops
    at a sentence ``shown_elsewhere`` (another quote says it: a wire story's paragraph).
    """
    if len(core) >= limit:
        return core
    wanted = set(tokenize(question))
    before_text, after_text = around.before or "", around.after or ""
    before = sentence_spans(before_text)
    after = sentence_spans(after_text)
    taken_before, taken_after = 0, 0

    def head(count: int) -> str:
        return after_text[: after[count - 1][1]].rstrip() if count else ""

    def tail(count: int) -> str:
        return before_text[before[len(before) - count][0] :].rstrip() if count else ""

    def joined(before_count: int, after_count: int) -> str:
        return PARAGRAPH_SEPARATOR.join(
            part for part in (tail(before_count), core, head(after_count)) if part
        )

    while True:
        options: list[tuple[float, int]] = []
        if taken_after < len(after) and len(joined(taken_before, taken_after + 1)) <= limit:
            start, end = after[taken_after]
            if not shown_elsewhere(after_text[start:end]):
                options.append((_shared(wanted, after_text[start:end]), 1))
        if taken_before < len(before) and len(joined(taken_before + 1, taken_after)) <= limit:
            start, end = before[len(before) - 1 - taken_before]
            if not shown_elsewhere(before_text[start:end]):
                options.append((_shared(wanted, before_text[start:end]), 0))
        if not options:
            return joined(taken_before, taken_after)
        if max(options)[1] == 1:
            taken_after += 1
        else:
            taken_before += 1


def _shared(wanted: set[str], sentence: str) -> float:
    return sum(len(word) ** 0.5 for word in wanted & set(tokenize(sentence)))
