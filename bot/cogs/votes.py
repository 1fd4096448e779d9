"""The "Helpful" / "Not helpful" buttons under every answer, working across restarts.

Each button's custom id names its answer (``newsbot:vote:42:yes``), so a click is understood
from the id alone, whenever it comes: a ``DynamicItem`` registered once reads it. Answers show
the buttons as plain, non-dispatching copies (``vote_buttons``): a live view holding the
dynamic item itself would unregister it for everyone when that view times out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import report_error
from bot.respond import send_private
from bot.services import guild_scope
from bot.services.feedback import Tally

if TYPE_CHECKING:
    from bot.app import NewsBot

VOTE_ID = "newsbot:vote:{answer}:{choice}"
VOTE_TEMPLATE = r"newsbot:vote:(?P<answer>[0-9]{1,18}):(?P<choice>yes|no)"
HELPFUL, NOT_HELPFUL = "Helpful", "Not helpful"
VOTE_ROW = 1  # below an answer's own buttons ("Back", "More passages", "Post publicly")


class ShownButton(discord.ui.Button[discord.ui.View]):
    """A button that is drawn but never dispatched by its view (``VoteButton`` answers it)."""

    def is_dispatchable(self) -> bool:
        return False


def vote_buttons(answer_id: int) -> list[discord.ui.Button[discord.ui.View]]:
    """The two vote buttons of an answer, to add to the view it is sent with."""
    return [
        ShownButton(
            label=label,
            style=discord.ButtonStyle.secondary,
            custom_id=VOTE_ID.format(answer=answer_id, choice=choice),
            row=VOTE_ROW,
        )
        for label, choice in ((HELPFUL, "yes"), (NOT_HELPFUL, "no"))
    ]


def votes_view(answer_id: int | None) -> discord.ui.View | None:
    """A view of the vote buttons alone (None: the answer could not be recorded)."""
    if answer_id is None:
        return None
    view = discord.ui.View(timeout=None)
    for button in vote_buttons(answer_id):
        view.add_item(button)
    return view


def thanks(tally: Tally) -> str:
    said = "helpful" if tally.mine else "not helpful"
    return (
        f"Thanks: you marked this answer {said}. So far {tally.helpful:,} found it helpful and "
        f"{tally.not_helpful:,} did not. Press the other button to change your vote."
    )


class VoteButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=VOTE_TEMPLATE):
    """A click on "Helpful" or "Not helpful": the member's vote, recorded or changed."""

    def __init__(self, answer_id: int, helpful: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label=HELPFUL if helpful else NOT_HELPFUL,
                custom_id=VOTE_ID.format(answer=answer_id, choice="yes" if helpful else "no"),
                row=VOTE_ROW,
            )
        )
        self.answer_id = answer_id
        self.helpful = helpful

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VoteButton:
        return cls(int(match["answer"]), match["choice"] == "yes")

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: NewsBot = interaction.client  # type: ignore[assignment]
        try:
            tally = await bot.services.feedback.vote(
                self.answer_id,
                guild_scope(interaction.guild_id),
                interaction.user.id,
                self.helpful,
            )
            await send_private(interaction, thanks(tally))
        except Exception as error:  # discord.py only logs a dynamic item's errors
            await report_error(interaction, error)


async def setup(bot: NewsBot) -> None:
    bot.add_dynamic_items(VoteButton)
