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
# The permission that lets a member in without the role; Administrator always does.
StaffPermission = Literal["manage_guild", "manage_channels"]
PERMISSION_NAMES: dict[StaffPermission, str] = {
    "manage_guild": "Manage Server",
    "manage_channels": "Manage Channels",
}


class NotStaff(app_commands.CheckFailure):
    """The member lacks the permission and the configured role; the message says so."""


def role_id_for(interaction: discord.Interaction, role: StaffRole) -> int | None:
    settings = cast("NewsBot", interaction.client).resources.settings
    return settings.moderator_role_id if role == "moderator" else settings.admin_role_id


def is_staff(
    interaction: discord.Interaction,
    role: StaffRole,
    permission: StaffPermission = "manage_guild",
) -> bool:
    """The permission (Manage Server unless told) or Administrator here, or the configured role."""
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    if getattr(permissions, permission) or permissions.administrator:
        return True
    role_id = role_id_for(interaction, role)
    user = interaction.user
    return bool(role_id and isinstance(user, discord.Member) and user.get_role(role_id))


def require_staff(
    interaction: discord.Interaction,
    role: StaffRole,
    permission: StaffPermission = "manage_guild",
) -> bool:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage("This command works in servers only.")
    if is_staff(interaction, role, permission):
        return True
    extra = f" or the server's {role} role" if role_id_for(interaction, role) else ""
    raise NotStaff(
        f"Only members with the {PERMISSION_NAMES[permission]} permission{extra} "
        "can use this command."
    )


def staff_only(role: StaffRole, permission: StaffPermission = "manage_guild") -> Callable[[T], T]:
    """Hide the command from members without the permission, and refuse them if they run it.

    Works on a command and on a ``GroupCog`` (whose ``interaction_check`` then guards every
    subcommand: Discord only takes the permission hint on top-level commands).
    """

    def decorator(target: T) -> T:
        target = app_commands.default_permissions(**{permission: True})(target)
        target = app_commands.guild_only()(target)
        if isinstance(target, type) and issubclass(target, commands.Cog):
            inherited = target.interaction_check

            async def interaction_check(
                self: commands.Cog, interaction: discord.Interaction, /
            ) -> bool:
                return require_staff(interaction, role, permission) and bool(
                    await maybe_coroutine(inherited, self, interaction)
                )

            target.interaction_check = interaction_check  # type: ignore[method-assign]
            return target
        return app_commands.check(lambda interaction: require_staff(interaction, role, permission))(
            target
        )

    return decorator
