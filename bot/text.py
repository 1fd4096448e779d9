"""Answers as plain text, for the terminal and the console."""

from __future__ import annotations

from index.answer import Answer, Quote


def citation(quote: Quote) -> str:
    date = quote.published_at.date().isoformat() if quote.published_at else "undated"
    parts = [quote.source, quote.title, date]
    if quote.url:
        parts.append(quote.url)
    return " · ".join(parts)


def answer_as_text(answer: Answer) -> str:
    if answer.abstained:
        lines = ["I couldn't find this in the indexed news."]
        if answer.closest:
            lines.append(
                "Closest articles: " + "; ".join(dict.fromkeys(q.title for q in answer.closest))
            )
        return "\n".join(lines)
    blocks = []
    for number, quote in enumerate(answer.passages, start=1):
        quoted = "\n".join("> " + line if line else ">" for line in quote.text.splitlines())
        blocks.append(f"[{number}] {citation(quote)}  (score {quote.score:.2f})\n{quoted}")
    blocks.append(f"({answer.searched} passages searched)")
    return "\n\n".join(blocks)
