"""Who may run the admin and moderator commands.

Discord's ``default_permissions`` only hides a command in the client, and server admins can
change it, so every such command also carries a real check (RoboDanny's
``hybrid_permissions_check`` pattern): one decorator, both effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TypeVar, cast

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import maybe_coroutine

if TYPE_CHECKING:
    from bot.app import NewsBot

T = TypeVar("T")
StaffRole = Literal["moderator", "admin"]


class NotStaff(app_commands.CheckFailure):
    """The member lacks Manage Server and the configured role; the message says so."""


def role_id_for(interaction: discord.Interaction, role: StaffRole) -> int | None:
    settings = cast("NewsBot", interaction.client).resources.settings
    return settings.moderator_role_id if role == "moderator" else settings.admin_role_id


def is_staff(interaction: discord.Interaction, role: StaffRole) -> bool:
    """Manage Server (or Administrator) in this server, or the configured role."""
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    if permissions.manage_guild or permissions.administrator:
        return True
    role_id = role_id_for(interaction, role)
    user = interaction.user
    return bool(role_id and isinstance(user, discord.Member) and user.get_role(role_id))


def require_staff(interaction: discord.Interaction, role: StaffRole) -> bool:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage("This command works in servers only.")
    if is_staff(interaction, role):
        return True
    extra = f" or the server's {role} role" if role_id_for(interaction, role) else ""
    raise NotStaff(f"Only members with the Manage Server permission{extra} can use this command.")


def staff_only(role: StaffRole) -> Callable[[T], T]:
    """Hide the command from members without Manage Server, and refuse them if they run it.

    Works on a command and on a ``GroupCog`` (whose ``interaction_check`` then guards every
    subcommand: Discord only takes the permission hint on top-level commands).
    """

    def decorator(target: T) -> T:
        target = app_commands.default_permissions(manage_guild=True)(target)
        target = app_commands.guild_only()(target)
        if isinstance(target, type) and issubclass(target, commands.Cog):
            inherited = target.interaction_check

            async def interaction_check(
                self: commands.Cog, interaction: discord.Interaction, /
            ) -> bool:
                return require_staff(interaction, role) and bool(
                    await maybe_coroutine(inherited, self, interaction)
                )

            target.interaction_check = interaction_check  # type: ignore[method-assign]
            return target
        return app_commands.check(lambda interaction: require_staff(interaction, role))(target)

    return decorator
