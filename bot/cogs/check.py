"""Right-click a message → Apps → "Check the news": what the indexed news says about it.

The answer is private to the member who asked; its "Post publicly" button posts it as a reply
to the checked message, so the bot never calls a member out by itself. The button carries
the checked message's id and works from the private answer's own embeds, across restarts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.votes import ShownButton, vote_buttons, votes_view
from bot.errors import report_error
from bot.render import NO_MENTIONS, check_embeds
from bot.respond import follow_up, send_private, think
from bot.services import guild_scope
from bot.services.ask import paginate
from bot.services.check import read_claim

if TYPE_CHECKING:
    from bot.app import NewsBot

MENU_NAME = "Check the news"
POST_ID = "newsbot:post:{answer}:{message}"
POST_TEMPLATE = r"newsbot:post:(?P<answer>[0-9]{1,18}):(?P<message>[0-9]{1,20})"
POST, POSTED = "Post publicly", "Posted"
ALREADY_POSTED = "This answer has been posted already."
REMEMBERED_POSTS = 10_000
NO_ANSWER = 0  # in a post button's id: the answer was not recorded, so the post has no votes
THREAD_TYPES = (
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
)
CANNOT_POST = (
    "I can't post in this channel: I need the Send Messages{threads}, Embed Links and "
    "Read Message History permissions here."
)


def private_view(answer_id: int | None, message_id: int, posted: bool = False) -> discord.ui.View:
    """The private answer's buttons: "Post publicly" (or "Posted"), then the votes."""
    view = discord.ui.View(timeout=None)
    view.add_item(
        ShownButton(
            label=POSTED if posted else POST,
            style=discord.ButtonStyle.primary,
            custom_id=POST_ID.format(answer=answer_id or NO_ANSWER, message=message_id),
            disabled=posted,
        )
    )
    for button in vote_buttons(answer_id) if answer_id is not None else []:
        view.add_item(button)
    return view


def may_post(interaction: discord.Interaction) -> bool:
    """Whether the bot may reply with embeds where the member checked the message."""
    permissions = interaction.app_permissions
    if getattr(interaction.channel, "type", None) in THREAD_TYPES:
        send = permissions.send_messages_in_threads
    else:
        send = permissions.send_messages
    return send and permissions.embed_links and permissions.read_message_history


class PostPublicly(discord.ui.DynamicItem[discord.ui.Button[Any]], template=POST_TEMPLATE):
    """Posts a private "Check the news" answer as a reply to the message it checked.

    Once per private answer: a second click before the button is greyed out (or a click that
    reaches the bot anyway) is told it was posted, rather than posting it twice.
    """

    posted: ClassVar[OrderedDict[int, None]] = OrderedDict()  # private answers' message ids

    def __init__(self, answer_id: int, message_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=POST, custom_id=POST_ID.format(answer=answer_id, message=message_id)
            )
        )
        self.answer_id = answer_id
        self.message_id = message_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PostPublicly:
        return cls(int(match["answer"]), int(match["message"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await self._post(interaction)
        except Exception as error:  # discord.py only logs a dynamic item's errors
            await report_error(interaction, error)

    async def _post(self, interaction: discord.Interaction) -> None:
        if not may_post(interaction):
            in_thread = getattr(interaction.channel, "type", None) in THREAD_TYPES
            threads = " in Threads" if in_thread else ""
            await send_private(interaction, CANNOT_POST.format(threads=threads))
            return
        private = interaction.message
        key = private.id if private is not None else 0
        if key in self.posted:
            await send_private(interaction, ALREADY_POSTED)
            return
        self.posted[key] = None
        while len(self.posted) > REMEMBERED_POSTS:
            self.posted.popitem(last=False)
        await interaction.response.defer()
        # The channel where the member checked the message, by id: a thread or forum post
        # the bot has not cached is as good as any.
        channel = interaction.client.get_partial_messageable(
            interaction.channel_id or 0, guild_id=interaction.guild_id
        )
        embeds = private.embeds if private is not None else []
        answer_id = self.answer_id if self.answer_id != NO_ANSWER else None
        extra: dict[str, Any] = {}
        if (view := votes_view(answer_id)) is not None:
            extra["view"] = view
        sent = await channel.send(
            f"{interaction.user.mention} checked this message against the news:",
            embeds=embeds,
            reference=discord.MessageReference(
                message_id=self.message_id,
                channel_id=interaction.channel_id or 0,
                fail_if_not_exists=False,  # deleted meanwhile: posted all the same
            ),
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
            **extra,
        )
        await interaction.edit_original_response(
            content=f"Posted: {sent.jump_url}",
            view=private_view(answer_id, self.message_id, posted=True),
            allowed_mentions=NO_MENTIONS,
        )


class CheckCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.asks = bot.services.ask
        self.checks = bot.services.check
        self.votes = bot.services.feedback
        # discord.py cannot declare a context menu with a decorator inside a cog.
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.check_message)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def check_message(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Quote what the indexed news says about this message, privately."""
        embeds = [(e.title or "", e.description or "", e.url or "") for e in message.embeds]
        claim = read_claim(message.content, embeds)
        self.asks.cooldowns.hit(interaction.user.id)
        await think(interaction, private=True)
        guild = guild_scope(interaction.guild_id)
        result = await self.checks.check(claim, guild)
        page = paginate(result.answer, self.asks.per_page)[0]
        answer_id = await self.votes.record(result.answer, guild, "check")
        await follow_up(
            interaction,
            private_view(answer_id, message.id),
            embeds=check_embeds(result, page),
        )


async def setup(bot: NewsBot) -> None:
    bot.add_dynamic_items(PostPublicly)
    await bot.add_cog(CheckCog(bot))
