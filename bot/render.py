"""Answers and reports as Discord embeds, always within Discord's limits.

Passages are quoted verbatim; where one must be shortened, the cut falls at a sentence or
word boundary and is marked with "…", and the sentence that best answers the question stays.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from urllib.parse import quote

import discord
from discord.utils import escape_markdown, format_dt

from bot import limits, text
from bot.services.about import About
from bot.services.ask import AnswerPage, closest_articles
from bot.services.check import CheckResult
from bot.services.sources import RefreshReport
from index.answer import Quote
from ingest.sources import Removed, SourceStatus

NO_MENTIONS = discord.AllowedMentions.none()
"""Passed on every send: a quoted ``@everyone`` or role mention must never ping anyone."""

COLOUR = discord.Colour(0x2F6FAB)
ABSTAIN_COLOUR = discord.Colour(0x8A8F98)
# Room for the blank line between two passages in a description.
SEPARATOR = "\n\n"
TITLE_IN_CITATION = 150
# A checked message's linked article: its citation and one passage, before the answer.
LINKED_ROOM = 1500
OUTLET_IN_CITATION = 60
_BRACKET = re.compile(r"([\[\]])")
# What would end a markdown link or an autolink, or break the line it is on.
_URL_UNSAFE = re.compile(r"[\s()<>\x00-\x1f\x7f]")


def answer_embed(page: AnswerPage, room: int = limits.EMBED_DESCRIPTION) -> discord.Embed:
    """One page of an answer: each passage quoted, its best sentence in bold, then its source.

    ``room`` is the description's size: less when the answer shares a message with another
    embed (all of a message's embeds count towards limits.EMBED_TOTAL).
    """
    answer = page.answer
    if answer.abstained:
        return abstention_embed(page, room)
    blocks_room = room - len(SEPARATOR) * (len(page.quotes) - 1)
    share = blocks_room // max(1, len(page.quotes))
    blocks = [
        quote_block(quote, number, share)
        for number, quote in enumerate(page.quotes, start=page.first_number)
    ]
    embed = discord.Embed(
        title=limits.truncate(answer.question, limits.EMBED_TITLE),
        description=SEPARATOR.join(blocks),
        colour=COLOUR,
    )
    footer = f"{text.read_with_line(page)}{searched(page)} · quotes are verbatim"
    if page.count > 1:
        footer += f" · page {page.number + 1} of {page.count}"
        if page.is_last:
            footer += text.NO_MORE
    embed.set_footer(text=limits.truncate(footer, limits.FOOTER))
    return embed


def abstention_embed(page: AnswerPage, room: int = limits.EMBED_DESCRIPTION) -> discord.Embed:
    """An honest "not found", with the titles that came closest."""
    answer = page.answer
    lines = [text.NOT_FOUND]
    if page.quotes:
        lines.append("")
        lines.append("Closest articles:")
        closest = [citation_line(q, room // 4) for q in closest_articles(page.quotes)]
        lines.append(limits.fit_lines(closest, room - 200))
    embed = discord.Embed(
        title=limits.truncate(answer.question, limits.EMBED_TITLE),
        description="\n".join(lines),
        colour=ABSTAIN_COLOUR,
    )
    footer = text.read_with_line(page) + searched(page)
    embed.set_footer(text=limits.truncate(footer, limits.FOOTER))
    return embed


def check_embeds(result: CheckResult, page: AnswerPage) -> list[discord.Embed]:
    """A checked message: the article it links to (if indexed) first, then the answer."""
    if result.linked is None:
        return [answer_embed(page)]
    linked = result.linked
    cite = citation_line(linked, LINKED_ROOM // 3)
    quoted = quote_markdown(linked.text, linked.highlight, LINKED_ROOM - len(cite) - 1)
    article = discord.Embed(
        title="The linked article", description=f"{cite}\n{quoted}", colour=COLOUR
    )
    if page.answer.abstained:  # "not found" would deny the article just quoted
        return [article.set_footer(text=text.NOTHING_ELSE)]
    room = limits.EMBED_TOTAL - len(article)
    answer = answer_embed(page, min(limits.EMBED_DESCRIPTION, room))
    excess = len(article) + len(answer) - limits.EMBED_TOTAL
    if excess > 0:  # the title and footer took their share too
        answer = answer_embed(page, min(limits.EMBED_DESCRIPTION, room) - excess)
    return [article, answer]


def searched(page: AnswerPage) -> str:
    """ "Searched 1,234 passages from Reuters since 1 March 2025": how much, within what.

    Footers show no Discord timestamps, so the date is spelled out (in UTC).
    """
    scope = text.scope_words(page.scope, OUTLET_IN_CITATION)
    return f"Searched {text.passages(page.answer.searched)}{scope}"


def quote_block(quote: Quote, number: int, room: int) -> str:
    """``> passage`` lines with the best sentence in bold, then the citation, in ``room``."""
    cite = f"**{number}.** " + citation_line(quote, room // 3)
    quoted = quote_markdown(quote.text, quote.highlight, room - len(cite) - 1)
    return f"{quoted}\n{cite}"


def citation_line(quote: Quote, room: int) -> str:
    """outlet · title · date · link; the link is left out whole rather than cut."""
    parts = [
        plain(limits.truncate(" ".join(quote.source.split()), OUTLET_IN_CITATION)),
        plain(limits.truncate(" ".join(quote.title.split()), TITLE_IN_CITATION)),
        published(quote.published_at),
    ]
    line = " · ".join(parts)
    if quote.url:
        link = f"[link]({safe_url(quote.url)})"
        if len(line) + 3 + len(link) <= room:
            return f"{line} · {link}"
    return limits.truncate(line, room)


def published(moment: datetime | None) -> str:
    # A Discord timestamp shows the date in each reader's own locale.
    return format_dt(moment, "D") if moment else "undated"


def safe_url(url: str) -> str:
    """The URL with the characters that would end a markdown link percent-encoded."""
    return _URL_UNSAFE.sub(lambda match: quote(match.group(0), safe=""), url)


def plain(fragment: str) -> str:
    """``fragment`` with its markdown escaped, whatever text it is joined to.

    ``escape_markdown`` escapes a masked link only when it is whole: an outlet ending in
    "[x" and a title starting with "](url)", escaped apart and joined, would still make a
    link. So every square bracket is escaped too.
    """
    return "".join(
        "\\" + piece if piece in ("[", "]") else escape_markdown(piece)
        for piece in _BRACKET.split(fragment)
    )


def quote_markdown(passage: str, highlight: str, room: int) -> str:
    """The passage as a block quote, escaped, with ``highlight`` (verbatim in it) in bold."""
    at = passage.find(highlight) if highlight.strip() else -1
    if at < 0:
        before, focus, after = passage, "", ""
    else:
        before, focus, after = passage[:at], highlight, passage[at + len(highlight) :]

    def render(budget: int) -> str:
        b, f, a = limits.shorten_around(before, focus, after, max(budget, 0))
        return _blockquote(plain(b) + _bold(plain(f)) + plain(a))

    return limits.fit(render, room)


def _bold(fragment: str) -> str:
    # "**" only renders bold when it hugs the text, so keep surrounding spaces outside.
    stripped = fragment.strip()
    if not stripped:
        return fragment
    lead = fragment[: len(fragment) - len(fragment.lstrip())]
    trail = fragment[len(fragment.rstrip()) :]
    lines = [f"**{line}**" if line.strip() else line for line in stripped.split("\n")]
    return lead + "\n".join(lines) + trail


def _blockquote(body: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in body.strip().split("\n"))


def reindex_content(message: str) -> str:
    return limits.truncate(message, limits.CONTENT)


def sources_embed(sources: list[SourceStatus], guild_name: str | None) -> discord.Embed:
    lines = [_source_line(s) for s in sources] or [text.sources_as_text([])]
    embed = discord.Embed(
        title=limits.truncate(f"Sources for {guild_name or 'this server'}", limits.EMBED_TITLE),
        description=limits.fit_lines(lines, limits.EMBED_DESCRIPTION),
        colour=COLOUR,
    )
    embed.set_footer(text="(global) sources are shared by every server and managed by the host.")
    return embed


def _source_line(source: SourceStatus) -> str:
    owner = " *(global)*" if source.guild_id == 0 else ""
    health = text.source_health(
        source,
        when=lambda moment: format_dt(moment, "R"),
        error=lambda error: plain(limits.truncate(error, 120)),
    )
    where = _location(source.location, 300)
    return (
        f"`#{source.id}` **{plain(limits.truncate(source.name, 100))}**{owner} — {where}"
        f"\n{source.articles:,} articles · {source.passages:,} passages · {health}"
    )


def _location(location: str, room: int) -> str:
    """A web location as a link without a preview, a local path as plain text."""
    if location.startswith(("http://", "https://")) and len(location) + 2 <= room:
        return f"<{safe_url(location)}>"
    return plain(limits.truncate(location, room))


def added_content(source: SourceStatus) -> str:
    """The "added" message, with a name or address that cannot format or link anything."""
    web = source.location.startswith(("http://", "https://"))
    location = safe_url(source.location) if web else plain(source.location)
    shown = replace(source, name=plain(source.name), location=location)
    return limits.truncate(text.added_text(shown), limits.CONTENT)


def removed_content(removed: Removed) -> str:
    return limits.truncate(
        text.removed_text(replace(removed, name=plain(removed.name))), limits.CONTENT
    )


def refreshed_content(report: RefreshReport) -> str:
    """The refresh summary; its lines quote source names and servers' error messages."""
    return limits.truncate(plain(text.refreshed_text(report)), limits.CONTENT)


def about_embed(about: About) -> discord.Embed:
    embed = discord.Embed(title="About newsbot", description=text.USAGE, colour=COLOUR)
    embed.add_field(name="Sources", value=f"{about.sources:,}")
    embed.add_field(name="Articles", value=f"{about.articles:,}")
    embed.add_field(name="Passages", value=f"{about.passages:,}")
    refreshed = format_dt(about.last_refresh, "R") if about.last_refresh else "never"
    built = format_dt(about.index_built, "R") if about.index_built else "not built yet"
    embed.add_field(name="Last refresh", value=refreshed)
    embed.add_field(name="Index built", value=built)
    embed.add_field(name="Helpful votes", value=text.vote_share(about.votes), inline=False)
    return embed


def choice_name(source: SourceStatus) -> str:
    """``#id name — location`` in an autocomplete choice's 100 characters (not a link there)."""
    label = f"#{source.id} {limits.truncate(source.name, 40)} — "
    room = limits.CHOICE_NAME - len(label)
    location = source.location
    if len(location) > room:
        location = location[: room - 1] + limits.ELLIPSIS
    return label + location
