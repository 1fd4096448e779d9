"""/ask, and questions asked by mentioning the bot (or, in its threads, following up)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.cogs.votes import vote_buttons, votes_view
from bot.errors import report_error, report_message_error
from bot.render import NO_MENTIONS, answer_embed
from bot.respond import follow_up, send_private, think
from bot.services import guild_scope
from bot.services.ask import AnswerPage, Conversation, paginate
from bot.services.feedback import AnswerKind
from index.answer import MAX_QUESTION_CHARS

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

# Buttons work this long after an answer. Interaction tokens live 15 minutes, so the answer
# can still be edited to disable them when the time is up.
VIEW_TIMEOUT = 10 * 60
Button = discord.ui.Button["AnswerView"]
ExpiredButton = discord.ui.Button["ExpiredAnswerButtons"]
BACK_ID = "newsbot:answer:back"
MORE_ID = "newsbot:answer:more"
EXPIRED = (
    "These buttons have expired: pages are kept for 10 minutes, and not over a restart. "
    "Ask again with /ask."
)
REMEMBERED_THREADS = 1000


class AnswerView(discord.ui.View):
    """ "More passages" and "Back" through an answer's pages, for the member who asked."""

    def __init__(
        self, pages: list[AnswerPage], owner_id: int, timeout: float, answer_id: int | None = None
    ) -> None:
        super().__init__(timeout=timeout)
        self.pages = pages
        self.owner_id = owner_id
        self.index = 0
        self.message: discord.Message | discord.WebhookMessage | None = None
        self._update_buttons()
        # Anyone may vote, for as long as the answer stands (bot/cogs/votes.py answers them).
        for button in vote_buttons(answer_id) if answer_id is not None else []:
            self.add_item(button)

    def _update_buttons(self) -> None:
        self.back.disabled = self.index == 0
        self.more.disabled = self.index >= len(self.pages) - 1

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await send_private(
            interaction, "Only the member who asked can page through this answer; try /ask."
        )
        return False

    @discord.ui.button(label="Back", style=discord.ButtonStyle.secondary, custom_id=BACK_ID)
    async def back(self, interaction: discord.Interaction, _: Button) -> None:
        await self._show(interaction, self.index - 1)

    @discord.ui.button(label="More passages", style=discord.ButtonStyle.primary, custom_id=MORE_ID)
    async def more(self, interaction: discord.Interaction, _: Button) -> None:
        await self._show(interaction, self.index + 1)

    async def _show(self, interaction: discord.Interaction, index: int) -> None:
        self.index = max(0, min(index, len(self.pages) - 1))
        self._update_buttons()
        await interaction.response.edit_message(
            embed=answer_embed(self.pages[self.index]), view=self, allowed_mentions=NO_MENTIONS
        )

    async def on_timeout(self) -> None:
        self.back.disabled = self.more.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as error:  # deleted meanwhile, or token expired
                log.debug("could not disable the buttons of an answer: %s", error)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, _: discord.ui.Item[Any], /
    ) -> None:
        await report_error(interaction, error)


class ExpiredAnswerButtons(discord.ui.View):
    """Answers "More passages"/"Back" on an answer no live view holds any more.

    Pages live in memory: after a restart the old buttons still show, and without this a
    click would end in Discord's "This interaction failed". A live answer's own view is
    found first (discord.py looks views up by message before falling back to this one).
    """

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Back", style=discord.ButtonStyle.secondary, custom_id=BACK_ID)
    async def back(self, interaction: discord.Interaction, _: ExpiredButton) -> None:
        await send_private(interaction, EXPIRED)

    @discord.ui.button(label="More passages", style=discord.ButtonStyle.primary, custom_id=MORE_ID)
    async def more(self, interaction: discord.Interaction, _: ExpiredButton) -> None:
        await send_private(interaction, EXPIRED)


class AskCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.asks = bot.services.ask
        self.votes = bot.services.feedback
        self.view_timeout: float = VIEW_TIMEOUT
        # Threads where the bot answered, each with the conversation its follow-ups lean on
        # (AskService.answer_follow_up decides when). Follow-ups there need no mention (with
        # the intent).
        self.threads: OrderedDict[int, Conversation] = OrderedDict()

    @app_commands.command()
    @app_commands.describe(
        question="Your question about the news, e.g. who won the election?",
        source="Only this source or outlet, e.g. Reuters",
        since="Only news from then on: 2025-03-01, last week, March 2025",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
        source: app_commands.Range[str, 1, limits.CHOICE_NAME] | None = None,
        since: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        """Ask about the news: I quote the passages that answer it, with their sources."""
        # Read first: a mistyped date is refused at once, and costs no cooldown.
        scope = self.asks.scope(source, since)
        cleaned = self.asks.admit(question, interaction.user.id)
        await think(interaction)
        answer = await self.asks.answer(
            cleaned, guild_scope(interaction.guild_id), scope.source, scope.since
        )
        pages = paginate(answer, self.asks.per_page, scope)
        answer_id = await self.votes.record(answer, guild_scope(interaction.guild_id), "ask")
        view = self._view(pages, interaction.user.id, answer_id)
        sent = await follow_up(interaction, view, embed=answer_embed(pages[0]))
        if isinstance(view, AnswerView):
            view.message = sent

    @ask.autocomplete("source")
    async def source_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = await self.asks.source_names(guild_scope(interaction.guild_id), current)
        return [app_commands.Choice(name=name, value=name) for name in names]

    def _view(
        self, pages: list[AnswerPage], owner_id: int, answer_id: int | None
    ) -> discord.ui.View | None:
        """Paging for an answer of several pages; vote buttons for every recorded answer."""
        if len(pages) > 1:
            return AnswerView(pages, owner_id, self.view_timeout, answer_id)
        return votes_view(answer_id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        question = self.question_in(message)
        if question is None:
            return
        thread_id = message.channel.id if isinstance(message.channel, discord.Thread) else None
        earlier = self.threads.get(thread_id) if thread_id is not None else None
        guild = guild_scope(message.guild.id if message.guild else None)
        try:
            cleaned = self.asks.admit(question, message.author.id)
            async with message.channel.typing():
                reply = await self.asks.answer_follow_up(cleaned, earlier, guild)
            pages = paginate(reply.answer, self.asks.per_page, read_with=reply.read_with)
            kind: AnswerKind = "thread" if thread_id is not None else "mention"
            answer_id = await self.votes.record(reply.answer, guild, kind)
            view = self._view(pages, message.author.id, answer_id)
            extra: dict[str, Any] = {"view": view} if view is not None else {}
            sent = await message.reply(
                embed=answer_embed(pages[0]),
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
                **extra,
            )
        except Exception as error:
            await report_message_error(message, error)
            return
        if isinstance(view, AnswerView):
            view.message = sent
        if thread_id is not None:
            self._remember_thread(thread_id, reply.conversation)

    def question_in(self, message: discord.Message) -> str | None:
        """The question in a message meant for the bot, or None for other messages.

        Without the privileged Message Content intent Discord still delivers the text of DMs
        and of messages that mention the bot (replies to it mention it by default).
        """
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return None
        if isinstance(message.channel, discord.DMChannel):
            return message.content
        if any(user.id == me.id for user in message.mentions):
            text = message.content
            for token in (f"<@{me.id}>", f"<@!{me.id}>"):
                text = text.replace(token, " ")
            return text
        if (
            self.bot.resources.settings.message_content_intent
            and isinstance(message.channel, discord.Thread)
            and message.channel.id in self.threads
            and message.content.strip()
        ):
            return message.content
        return None

    def _remember_thread(self, thread_id: int, earlier: Conversation) -> None:
        self.threads[thread_id] = earlier
        self.threads.move_to_end(thread_id)
        while len(self.threads) > REMEMBERED_THREADS:
            self.threads.popitem(last=False)


async def setup(bot: NewsBot) -> None:
    bot.add_view(ExpiredAnswerButtons())
    await bot.add_cog(AskCog(bot))
