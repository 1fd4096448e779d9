"""Followed stories as Discord messages and as console text, within Discord's limits."""

from __future__ import annotations

import discord

from bot import limits, text
from bot.render import COLOUR, citation_line, plain, quote_markdown
from bot.services.follow import FollowNews, Story
from ingest.follows import FollowRecord

TOPIC_CHARS = 100
ALSO_IN_CHARS = 300
OTHERS_TITLE = "More matching stories"


def follow_label(follow: FollowRecord, word: str = "follow") -> str:
    """``follow #3 “harbour festival”``: which follow a post matched."""
    return f"{word} #{follow.id} “{limits.truncate(follow.topic, TOPIC_CHARS)}”"


def also_in(story: Story) -> str:
    return limits.truncate("also in " + ", ".join(story.also_in), ALSO_IN_CHARS)


def news_embed(news: FollowNews) -> discord.Embed:
    """The best new story quoted with its citation, the outlets that carry it too, and the
    other matching stories of the same refresh named, each with its link."""
    lead = news.lead
    cite = citation_line(lead.quote, limits.EMBED_DESCRIPTION // 4)
    extra = f"\n*{plain(also_in(lead))}*" if lead.also_in else ""
    room = limits.EMBED_DESCRIPTION // 2 - len(cite) - len(extra) - 1
    quoted = quote_markdown(lead.quote.text, lead.quote.highlight, room)
    embed = discord.Embed(
        title=limits.truncate(f"New on “{news.follow.topic}”", limits.EMBED_TITLE),
        description=f"{quoted}\n{cite}{extra}",
        colour=COLOUR,
    )
    others = [
        citation_line(s.quote, limits.FIELD_VALUE // 2)
        + (f" · *{plain(also_in(s))}*" if s.also_in else "")
        for s in news.named
    ]
    if news.unnamed:
        others.append(more_line(news.unnamed))
    if others:
        embed.add_field(
            name=OTHERS_TITLE, value=limits.fit_lines(others, limits.FIELD_VALUE), inline=False
        )
    footer = f"Matched {follow_label(news.follow)} · quotes are verbatim · /follow list"
    embed.set_footer(text=limits.truncate(footer, limits.FOOTER))
    return embed


def more_line(count: int) -> str:
    return f"… and {count:,} more matching {'story' if count == 1 else 'stories'}"


def summary_content(news: FollowNews) -> str:
    """The one message that stands for every story past the hourly cap, updated as they come."""
    stories = "story" if news.held == 1 else "stories"
    posts = "post" if news.cap == 1 else "posts"
    return limits.truncate(
        f"**{plain(follow_label(news.follow, 'Follow'))}** reached its limit of "
        f"{news.cap} {posts} an hour: {news.held:,} more matching {stories} not posted "
        "(ask about them with /ask).",
        limits.CONTENT,
    )


def follows_embed(follows: list[FollowRecord], guild_name: str | None) -> discord.Embed:
    lines = [_follow_line(f) for f in follows] or [NO_FOLLOWS]
    return discord.Embed(
        title=limits.truncate(f"Follows in {guild_name or 'this server'}", limits.EMBED_TITLE),
        description=limits.fit_lines(lines, limits.EMBED_DESCRIPTION),
        colour=COLOUR,
    )


NO_FOLLOWS = "No follows yet. Start one with /follow add."


def _follow_line(follow: FollowRecord) -> str:
    source = f" · from {plain(limits.truncate(follow.source, 60))}" if follow.source else ""
    return (
        f"`#{follow.id}` **{plain(limits.truncate(follow.topic, TOPIC_CHARS))}** → "
        f"<#{follow.channel_id}>{source} · {plain(state(follow))}"
    )


def state(follow: FollowRecord) -> str:
    if follow.disabled:
        return f"disabled: {limits.truncate(follow.disabled, 200)} (/follow resume turns it on)"
    return "paused" if follow.paused else "active"


def added_content(follow: FollowRecord) -> str:
    return limits.truncate(
        f"Following “{plain(follow.topic)}” (#{follow.id}) in <#{follow.channel_id}>: new "
        "articles that answer it are posted there after each refresh, at most "
        "one post per refresh.",
        limits.CONTENT,
    )


def removed_content(follow: FollowRecord) -> str:
    return limits.truncate(
        f"Stopped following “{plain(follow.topic)}” (#{follow.id}).", limits.CONTENT
    )


def paused_content(follow: FollowRecord) -> str:
    word = "Paused" if follow.paused else "Resumed"
    return limits.truncate(f"{word} “{plain(follow.topic)}” (#{follow.id}).", limits.CONTENT)


def choice_name(follow: FollowRecord) -> str:
    return limits.truncate(f"#{follow.id} {follow.topic} ({state(follow)})", limits.CHOICE_NAME)


def news_as_text(news: FollowNews) -> str:
    """A console block: which follow matched, the quote with its citation, the others."""
    lead = news.lead
    lines = [f"[{follow_label(news.follow)}] {text.quotes_as_text([lead.quote])}"]
    if lead.also_in:
        lines.append(also_in(lead))
    lines.extend(f"more: {text.citation(s.quote)}" for s in news.named)
    if news.unnamed:
        lines.append(more_line(news.unnamed))
    return "\n".join(lines)
