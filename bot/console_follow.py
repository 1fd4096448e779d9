"""``/follow`` at the console: topics followed for this session, matches printed as the
refresh stores them (the same matching as the bot's follows, without a channel or a cap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot import render_follow
from bot.services import Services
from bot.services.follow import FollowNews, validate_topic
from ingest.errors import InputError
from ingest.follows import FollowRecord
from ingest.models import GLOBAL_GUILD

USAGE = "usage: /follow add TOPIC [source:NAME] | list | remove ID | pause ID | resume ID"


class ConsoleFollows:
    """The console's follows, kept for the session (the console has no channel to post in)."""

    def __init__(self, services: Services, guild_id: int | None, say: Callable[[str], None]):
        self.services = services
        self.guild_id = guild_id
        self.say = say
        self.follows: dict[int, FollowRecord] = {}
        self.shown: dict[int, set[int]] = {}  # follow id → articles already printed
        services.sources.subscribe(self.on_articles_stored)

    async def run(self, action: str, argument: str) -> None:
        """``/follow list|remove ID|pause ID|resume ID`` (the console parses ``add`` itself)."""
        if action == "list" and not argument:
            self.say("\n".join(self._line(f) for f in self.follows.values()) or _NONE)
        elif action in ("remove", "pause", "resume") and argument.lstrip("#").isdigit():
            follow = self._own(int(argument.lstrip("#")))
            if action == "remove":
                del self.follows[follow.id]
                self.say(f"Stopped following “{follow.topic}” (#{follow.id}).")
                return
            self.follows[follow.id] = replace(follow, paused=action == "pause")
            word = "Paused" if action == "pause" else "Resumed"
            self.say(f"{word} “{follow.topic}” (#{follow.id}).")
        else:
            raise InputError(USAGE)

    async def add(self, topic: str, source: str | None) -> None:
        topic = validate_topic(topic)
        await self.services.follows.check_source(self.guild_id, source)
        number = max(self.follows, default=0) + 1
        self.follows[number] = FollowRecord(
            id=number,
            guild_id=GLOBAL_GUILD if self.guild_id is None else self.guild_id,
            channel_id=0,
            topic=topic,
            source=source,
            paused=False,
            disabled=None,
        )
        self.shown[number] = set()
        self.say(
            f"Following “{topic}” (#{number}): new articles that answer it are printed here "
            "when /source refresh stores them."
        )

    async def on_articles_stored(self, article_ids: list[int]) -> None:
        for follow in list(self.follows.values()):
            if follow.paused:
                continue
            unseen = [a for a in article_ids if a not in self.shown[follow.id]]
            stories = await self.services.follows.stories_in(
                follow.topic, self.guild_id, unseen, follow.source
            )
            if not stories:
                continue
            for story in stories:
                self.shown[follow.id].update([story.article_id, *story.copies])
            self.say(render_follow.news_as_text(FollowNews(follow, stories, cap=0)))

    def _own(self, follow_id: int) -> FollowRecord:
        if follow_id not in self.follows:
            raise InputError(f"no follow with id {follow_id}")
        return self.follows[follow_id]

    @staticmethod
    def _line(follow: FollowRecord) -> str:
        source = f" (from {follow.source})" if follow.source else ""
        return f"#{follow.id} {follow.topic}{source} — {'paused' if follow.paused else 'active'}"


_NONE = "No follows yet. Start one with /follow add TOPIC."
