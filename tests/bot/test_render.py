"""Answers as Discord embeds: quoted, cited, highlighted, and always within Discord's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import discord

from bot import limits, render, text
from bot.services.ask import paginate
from bot.services.check import CheckResult
from index.answer import Answer, Quote
from ingest.sources import SourceStatus

SENTENCE = "The parade starts at the fish market at 8 pm on 14 June."


def quote(number: int = 1, text: str | None = None, url: str | None = None, **kw: object) -> Quote:
    body = text or f"The festival moves to the harbour. {SENTENCE} Tickets are free."
    values: dict[str, object] = {
        "passage_id": number,
        "text": body,
        "title": f"Lantern festival moves {number}",
        "source": "Brindle Bay Courier",
        "url": url if url is not None else f"https://news.example/{number}",
        "published_at": datetime(2024, 5, 6, tzinfo=UTC),
        "score": 0.7,
        "highlight": SENTENCE if SENTENCE in body else "",
    }
    values.update(kw)
    return Quote(**values)  # type: ignore[arg-type]


def answer(*quotes: Quote, more: list[Quote] | None = None) -> Answer:
    return Answer("When does the parade start?", False, list(quotes), 1234, more=more or [])


def within_limits(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= limits.EMBED_TITLE
    assert len(embed.description or "") <= limits.EMBED_DESCRIPTION
    assert len(embed.fields) <= limits.EMBED_FIELDS
    for embed_field in embed.fields:
        assert len(embed_field.name or "") <= limits.FIELD_NAME
        assert len(embed_field.value or "") <= limits.FIELD_VALUE
    assert len(embed.footer.text or "") <= limits.FOOTER
    assert len(embed) <= limits.EMBED_TOTAL


def test_one_searched_passage_is_singular() -> None:
    """The footer says "1 passage", not "1 passages"."""
    single = Answer("When does the parade start?", False, [quote()], 1)
    assert render.answer_embed(paginate(single, 3)[0]).footer.text == (
        "Searched 1 passage · quotes are verbatim"
    )


def test_passage_is_quoted_with_its_best_sentence_in_bold() -> None:
    """Each passage is a block quote, the answering sentence in bold, then its citation."""
    embed = render.answer_embed(paginate(answer(quote()), 3)[0])
    description = embed.description or ""
    assert description.startswith("> The festival moves to the harbour. **" + SENTENCE + "**")
    citation = description.splitlines()[-1]
    assert citation.startswith("**1.** Brindle Bay Courier · Lantern festival moves 1 · <t:")
    assert citation.endswith(" · [link](https://news.example/1)")
    assert embed.title == "When does the parade start?"
    assert embed.footer.text == "Searched 1,234 passages · quotes are verbatim"


def test_pages_are_numbered_in_the_footer_and_the_quotes() -> None:
    """The second page continues the numbering and says which page it is."""
    pages = paginate(answer(quote(1), quote(2), more=[quote(3), quote(4)]), 2)
    assert len(pages) == 2
    second = render.answer_embed(pages[1])
    assert "**3.** " in (second.description or "")
    assert (second.footer.text or "").endswith("page 2 of 2 · no more relevant passages")


def test_the_console_says_where_the_pages_end() -> None:
    """The first page offers /more; the last says there are no more relevant passages."""
    pages = paginate(answer(quote(1), quote(2), more=[quote(3)]), 2)
    first, last = (text.page_as_text(page) for page in pages)
    assert "/more shows more passages." in first and "No more" not in first
    assert last.endswith("No more relevant passages.")


def test_markdown_in_passages_is_shown_literally() -> None:
    """Asterisks, underscores and masked links in a passage cannot format or hide anything."""
    text = f"Prices *rose* by 12_% [click](https://evil.example). {SENTENCE}"
    description = render.answer_embed(paginate(answer(quote(text=text)), 3)[0]).description
    assert description is not None
    assert "\\*rose\\*" in description
    assert "12\\_%" in description
    assert "\\[click\\](https://evil.example)" in description


def test_outlet_and_title_cannot_make_a_link_together() -> None:
    """An outlet ending in "[x" and a title starting with "](url)" are no masked link."""
    line = render.citation_line(
        quote(source="Courier [click", title="](https://evil.example)"), 500
    )
    assert "\\[click" in line and "\\](https://evil.example)" in line


def test_a_link_with_a_line_break_stays_on_the_citation_line() -> None:
    """Whitespace and control characters in a stored URL are percent-encoded."""
    line = render.citation_line(quote(url="https://news.example/a\nb\tc"), 500)
    assert line.endswith("[link](https://news.example/a%0Ab%09c)")


def test_long_passages_and_links_stay_within_every_limit() -> None:
    """Ten 1,000-character passages full of markdown and 1,500-character links still fit."""
    filler = "Words *with* stars_and_underscores and more. " * 22
    long_url = "https://news.example/" + "path/" * 300
    quotes = [
        quote(i, text=f"{filler[: 400 + 10 * i]}{SENTENCE} {filler}"[:1000], url=long_url)
        for i in range(1, 11)
    ]
    embed = render.answer_embed(paginate(answer(*quotes), 10)[0])
    within_limits(embed)
    description = embed.description or ""
    assert description.count("**" + SENTENCE + "**") == 10
    assert limits.ELLIPSIS in description
    # A link is shown whole or not at all.
    for target in re.findall(r"\]\(([^)]*)\)", description):
        assert target == render.safe_url(long_url)


def test_a_checked_message_with_a_linked_article_fits_in_one_message() -> None:
    """The linked article's embed and a full answer stay within 6,000 characters together."""
    filler = "Words *with* stars_and_underscores and more. " * 22
    quotes = [quote(i, text=f"{filler[:400]}{SENTENCE} {filler}"[:1000]) for i in range(1, 11)]
    linked = quote(99, text=f"{filler}{SENTENCE} {filler}", title="T" * 900)
    page = paginate(answer(*quotes), 10)[0]

    embeds = render.check_embeds(CheckResult(answer(*quotes), linked), page)

    assert [e.title for e in embeds] == ["The linked article", answer().question]
    for embed in embeds:
        within_limits(embed)
    assert sum(len(embed) for embed in embeds) <= limits.EMBED_TOTAL
    assert f"**{SENTENCE}**" in (embeds[0].description or "")
    assert (embeds[1].description or "").count(f"**{SENTENCE}**") == 10


def test_a_linked_article_and_nothing_else_is_not_called_not_found() -> None:
    """When only the linked article speaks to a message, it is shown alone, without "not found"."""
    refused = Answer("Was the wall fixed?", True, [], 10, closest=[quote(2)])
    embeds = render.check_embeds(CheckResult(refused, quote(1)), paginate(refused, 3)[0])
    assert len(embeds) == 1
    assert embeds[0].footer.text == text.NOTHING_ELSE
    assert text.NOT_FOUND not in (embeds[0].description or "")


def test_a_long_link_is_dropped_before_it_could_be_cut() -> None:
    """When a citation has no room for its link, the link is left out, never cut."""
    line = render.citation_line(quote(url="https://news.example/" + "x" * 500), 200)
    assert "](" not in line
    assert len(line) <= 200


def test_link_characters_that_end_markdown_links_are_encoded() -> None:
    """Parentheses and spaces in a URL do not break its markdown link."""
    line = render.citation_line(quote(url="https://news.example/a (b)"), 500)
    assert line.endswith("[link](https://news.example/a%20%28b%29)")


def test_abstention_is_honest_and_names_the_closest_articles() -> None:
    """Nothing relevant: say so plainly and list the closest titles."""
    abstained = Answer("Who won the cup?", True, [], 50, closest=[quote(1), quote(2)])
    embed = render.answer_embed(paginate(abstained, 3)[0])
    description = embed.description or ""
    assert description.startswith("I couldn't find this in the indexed news.")
    assert "Lantern festival moves 1" in description
    assert "Lantern festival moves 2" in description
    assert embed.footer.text == "Searched 50 passages"


def test_an_article_is_listed_once_among_the_closest() -> None:
    """Two close passages of one article name it once, as `ask --json` lists it."""
    same = quote(2, title="Lantern festival moves 1", url="https://news.example/1")
    abstained = Answer("Who won the cup?", True, [], 50, closest=[quote(1), same, quote(3)])
    description = render.answer_embed(paginate(abstained, 3)[0]).description or ""
    assert description.count("Lantern festival moves 1") == 1
    assert "Lantern festival moves 3" in description


def test_an_over_long_question_title_is_cut() -> None:
    """A 500-character question still makes a valid embed title."""
    long = Answer("why " * 125, False, [quote()], 3)
    within_limits(render.answer_embed(paginate(long, 3)[0]))


def test_a_follow_up_read_with_the_earlier_question_says_so_first() -> None:
    """The footer's first line names the earlier question, on every page and in a "not found"."""
    earlier = "What did the council approve?"
    pages = paginate(answer(quote(1), quote(2), more=[quote(3)]), 2, read_with=earlier)
    for page in pages:
        footer = render.answer_embed(page).footer.text or ""
        assert footer.startswith(f"Read with the earlier question: “{earlier}”\nSearched 1,234")
    abstained = Answer("How many votes did it get?", True, [], 50, closest=[quote(1)])
    not_found = render.answer_embed(paginate(abstained, 3, read_with=earlier)[0])
    assert not_found.footer.text == (
        f"Read with the earlier question: “{earlier}”\nSearched 50 passages"
    )


def test_answers_read_alone_have_no_earlier_question_line() -> None:
    """Without an earlier question the footer is as it always was."""
    footer = render.answer_embed(paginate(answer(quote()), 3)[0]).footer.text or ""
    assert "earlier question" not in footer


def test_a_long_earlier_question_is_cut_and_the_embed_still_fits() -> None:
    """A 500-character earlier question is shortened with "…" beside a full-size answer."""
    long_text = " ".join(f"Sentence {i} about the harbour wall repairs." for i in range(200))
    long = Answer("why " * 125, False, [quote(i, text=long_text) for i in range(1, 4)], 3)
    embed = render.answer_embed(paginate(long, 3, read_with="how " * 125)[0])
    within_limits(embed)
    first_line = (embed.footer.text or "").splitlines()[0]
    assert first_line.endswith("…”")
    assert len(first_line) <= len("Read with the earlier question: “”") + text.EARLIER_CHARS


def status(i: int, guild_id: int = 7) -> SourceStatus:
    return SourceStatus(
        id=i,
        name=f"Source {i} " + "n" * 150,
        kind="web",
        location=f"https://feeds.example/{i}/" + "p" * 200,
        guild_id=guild_id,
        last_success_at=None,
        last_error="timed out " * 50,
        last_error_at=None,
        articles=10,
        passages=40,
    )


def test_a_long_source_list_fits_and_counts_the_rest() -> None:
    """Fifty sources with long names and errors fit one embed, with "… and N more"."""
    embed = render.sources_embed([status(i) for i in range(50)], "Brindle Bay")
    within_limits(embed)
    assert re.search(r"… and \d+ more$", embed.description or "")


def test_global_sources_are_marked() -> None:
    """Sources shared by every server are labelled as global."""
    embed = render.sources_embed([status(1, guild_id=0)], "Brindle Bay")
    assert "*(global)*" in (embed.description or "")


def test_source_names_and_local_paths_cannot_format_the_source_list() -> None:
    """Markdown in a source's name or local path is shown literally in /source list."""
    source = SourceStatus(
        id=7,
        name="**Loud** [click](https://evil.example)",
        kind="local",
        location="/data/__init__/*x*",
        guild_id=0,
        last_success_at=None,
        last_error=None,
        last_error_at=None,
        articles=1,
        passages=1,
    )
    description = render.sources_embed([source], "Brindle Bay").description or ""
    assert "\\*\\*Loud\\*\\* \\[click\\](https://evil.example)" in description
    assert "/data/\\_\\_init\\_\\_/\\*x\\*" in description


def test_autocomplete_choice_names_fit() -> None:
    """Each /source remove choice name is at most 100 characters."""
    name = render.choice_name(status(12345))
    assert len(name) <= limits.CHOICE_NAME
    assert name.startswith("#12345 Source 12345")
