"""A fake Discord (REST API + gateway websocket) that the real discord.py client runs against.

It listens on 127.0.0.1 on an ephemeral port and speaks just enough of Discord's API v10 for a
bot built on ``discord.Client`` / ``app_commands.CommandTree`` / ``discord.ui.View`` to log in,
become ready, sync commands, receive interactions and messages, and answer them.

Typical use::

    async with FakeDiscord() as fake:              # starts the server and patches discord.py
        client = MyBot(intents=discord.Intents.default())
        async with run_client(client, fake):       # client.start() + wait until ready + close()
            ix = await fake.send_interaction("ask", {"question": "what happened?"})
            cb = await fake.wait_for_callback(ix)  # POST /interactions/{id}/{token}/callback
            assert cb.json["type"] == 5            # deferred
            followup = await fake.wait_for_followup(ix)
            assert "Sources" in followup.json["embeds"][0]["title"]

Or as a pytest fixture: ``from tests.fakes.discord_server import fake_discord  # noqa: F401``
in a conftest.py, then ``async def test_x(fake_discord: FakeDiscord): ...``.

Public API (see the docstrings):

* ``FakeDiscord(*, bot_user=None, application_id=None, guilds=None, users=(), token=None,
  heartbeat_interval=41.25, gateway_compression=True, privileged_intents=None,
  application_flags=..., callback_deadline=3.0, validate_payloads=True,
  echo_bot_messages=True, require_synced_commands=False, enforce_default_permissions=False,
  recommended_shards=1)``
* lifecycle: ``async with FakeDiscord() as fake`` (start + patch), ``await fake.start()``,
  ``await fake.stop()``, ``with fake.patch():`` / ``patch_discord(fake)``, ``fake.port``,
  ``fake.api_base``, ``fake.gateway_url``; ``run_client(client, fake)`` runs a client.
* world: ``FakeGuild``/``FakeChannel``/``FakeRole``/``FakeMember``/``FakeUser`` and the default
  ids ``GUILD_ID``, ``CHANNEL_ID``, ``OWNER_ID``, ``USER_ID`` ("alice"), ``BOT_USER_ID``.
* recording: ``fake.requests`` (``RecordedRequest``: method, path, query, headers, json,
  files, received_at, status, response, interaction), ``fake.unknown_requests``,
  ``await fake.wait_for(pred)``, ``wait_for_request(method, path)``,
  ``wait_for_callback(ix)``, ``wait_for_followup(ix, index=0)``, ``wait_for_edit(ix)``,
  ``fake.gateway_received`` / ``wait_for_gateway(pred)``, ``fake.gateway_sent``,
  ``fake.identify``, ``fake.intents``, ``fake.presence``, ``fake.commands(guild_id=None)``,
  ``fake.messages``, ``fake.channel_messages(cid)``, ``fake.original_message(ix)``,
  ``fake.errors`` (exceptions inside the fake's handlers; should stay empty).
* several clients: ``label_client(client, name)`` before it logs in, then ``request.client``
  is ``name`` on each of its requests; ``fake.shard_sessions``.
* driving: ``send_interaction(command, options, ...)``, ``send_autocomplete(...)``,
  ``send_component_interaction(message_id, custom_id, ...)``,
  ``send_message_command(name, message_id, ...)`` (a message context menu),
  ``send_message_create(content, ...)``, ``dispatch(event, data)``, ``disconnect()``,
  ``send_reconnect()``, ``invalidate_session()``, ``fail_next(method, path, status)``.

Requests are recorded (and ``wait_for`` wakes up) when the fake has computed its answer but
before the client has read it: after ``await fake.wait_for_callback(ix)`` the bot has *sent*
the callback, it may not have finished processing the reply.

What the fake models beyond the happy path (each is documented on the relevant method):

* HTTP responses carry ``Content-Type: application/json`` exactly (no charset suffix; discord.py
  compares the header verbatim and would otherwise hand you the raw text). 204 responses carry
  no body and no content type, like Discord.
* Gateway transport compression (``zlib-stream``, and ``zstd-stream`` which discord.py picks
  when ``zstandard`` is installed), RESUME with replay of missed events, RECONNECT,
  INVALID_SESSION, REQUEST_GUILD_MEMBERS, privileged-intent rejection (close code 4014),
  intent filtering of MESSAGE_CREATE and message-content stripping without the
  MESSAGE_CONTENT intent (except DMs, the bot's own messages and messages mentioning the bot).
* Sharding: IDENTIFY with ``shard: [id, count]`` (an id outside the count is closed with
  4010), ``GET /gateway/bot`` recommending ``recommended_shards``, and every event routed to
  the session of shard ``(guild_id >> 22) % count`` alone (direct messages to shard 0), READY
  and GUILD_CREATE included, as Discord does; ``fake.shard_sessions``, ``shard_for()``.
* Interactions: 3-second callback deadline, "already acknowledged", the first followup after a
  "thinking" defer resolving the deferred message (and inheriting its ephemerality), and
  Discord's message limits (2000 chars of content, 10 embeds, embed field limits, 6000 embed
  chars, 5 action rows of 5 buttons, 25 autocomplete choices). None of these limits are
  enforced by discord.py itself; Discord answers 400 / code 50035.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest_asyncio
import yarl
from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

__all__ = [
    "ADMINISTRATOR",
    "APPLICATION_ID",
    "BOT_USER_ID",
    "CHANNEL_ID",
    "GUILD_ID",
    "MANAGE_GUILD",
    "OWNER_ID",
    "USER_ID",
    "CommandNotAvailable",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "GatewayMessage",
    "RecordedFile",
    "RecordedRequest",
    "fake_discord",
    "label_client",
    "patch_discord",
    "run_client",
    "shard_for",
]

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000

# Deterministic ids for the default world, so tests can refer to them directly.
BOT_USER_ID = 1100000000000000001
APPLICATION_ID = BOT_USER_ID
GUILD_ID = 1100000000000000100
CHANNEL_ID = 1100000000000000200
OWNER_ID = 1100000000000000300
USER_ID = 1100000000000000301
BOT_ROLE_ID = 1100000000000000110

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = discord.Permissions.all().value
MEMBER_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
    create_public_threads=True,
    connect=True,
    speak=True,
).value
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Application flags saying "privileged intents enabled" (the *_LIMITED variants).
DEFAULT_APPLICATION_FLAGS = (1 << 13) | (1 << 15) | (1 << 19)

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
# Channel types of threads (announcement, public, private): a FakeChannel of one of these types
# with a ``parent_id`` is sent in GUILD_CREATE's ``threads``, as Discord sends active threads.
THREAD_TYPES = (10, 11, 12)

_JSON_HEADERS = {"Content-Type": "application/json"}
# Sent by clients marked with label_client(), so that records say which of several sent what.
CLIENT_LABEL_HEADER = "X-Fake-Discord-Client"
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def shard_for(guild_id: int | None, shard_count: int) -> int:
    """The shard Discord sends a server's events to; direct messages go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


class _Snowflakes:
    """Realistic, strictly increasing snowflakes (discord.utils.snowflake_time works on them)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = ms << 22
        if value <= self._last:
            value = self._last + 1
        self._last = value
        return value


# --------------------------------------------------------------------------------------------
# The fake world: users, guilds, channels, roles.
# --------------------------------------------------------------------------------------------


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass
class FakeChannel:
    id: int
    name: str = "general"
    type: int = 0  # 0 text, 2 voice, 4 category, 5 news, 11 public thread, 15 forum
    topic: str | None = None
    parent_id: int | None = None
    nsfw: bool = False

    def to_payload(self, guild_id: int, position: int) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": position,
            "permission_overwrites": [],
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "topic": self.topic,
            "nsfw": self.nsfw,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            **(self._thread_fields() if self.type in THREAD_TYPES else {}),
        }

    def _thread_fields(self) -> dict[str, Any]:
        return {
            "owner_id": str(OWNER_ID),
            "member_count": 1,
            "message_count": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(_now()),
                "locked": False,
            },
        }


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class FakeMember:
    user: FakeUser
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime = field(default_factory=_now)

    def to_payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": _iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_payload()
        return data


@dataclass
class FakeGuild:
    """A guild the bot is in. ``roles`` must not include @everyone (it is added, id == guild id)."""

    id: int = GUILD_ID
    name: str = "Test Guild"
    owner_id: int = OWNER_ID
    channels: list[FakeChannel] = field(default_factory=lambda: [FakeChannel(CHANNEL_ID)])
    roles: list[FakeRole] = field(default_factory=list)
    members: list[FakeMember] = field(
        default_factory=lambda: [
            FakeMember(FakeUser(OWNER_ID, "owner")),
            FakeMember(FakeUser(USER_ID, "alice")),
        ]
    )
    everyone_permissions: int = MEMBER_PERMISSIONS

    def member(self, user_id: int) -> FakeMember | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def channel(self, channel_id: int) -> FakeChannel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def role(self, role_id: int) -> FakeRole | None:
        if role_id == self.id:
            return self.everyone_role
        return next((r for r in self.roles if r.id == role_id), None)

    @property
    def everyone_role(self) -> FakeRole:
        return FakeRole(self.id, "@everyone", self.everyone_permissions, position=0)

    def permissions_for(self, user_id: int, role_ids: Sequence[int] | None = None) -> int:
        """Guild-level permissions like Discord computes them (no channel overwrites)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        if role_ids is None:
            member = self.member(user_id)
            role_ids = member.roles if member else []
        perms = self.everyone_permissions
        for rid in role_ids:
            role = self.role(rid)
            if role is not None:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def to_payload(self) -> dict[str, Any]:
        roles = [self.everyone_role, *self.roles]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "roles": [r.to_payload() for r in roles],
            "emojis": [],
            "stickers": [],
        }

    def to_gateway_payload(self) -> dict[str, Any]:
        data = self.to_payload()
        data.update(
            {
                "unavailable": False,
                "large": False,
                "lazy": True,
                "joined_at": _iso(_now()),
                "member_count": len(self.members),
                "members": [m.to_payload() for m in self.members],
                "channels": [
                    c.to_payload(self.id, i)
                    for i, c in enumerate(self.channels)
                    if c.type not in THREAD_TYPES
                ],
                # Discord lists active threads apart from channels, with their metadata.
                "threads": [
                    c.to_payload(self.id, i)
                    for i, c in enumerate(self.channels)
                    if c.type in THREAD_TYPES
                ],
                "presences": [],
                "voice_states": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
        return data


# --------------------------------------------------------------------------------------------
# Records.
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes = dataclasses.field(repr=False)


@dataclass
class RecordedRequest:
    """One HTTP request the client made.

    ``path`` is relative to the API base (``/channels/1/messages``, no ``/api/v10``); ``json`` is
    the JSON body, or the ``payload_json`` part of a multipart body; ``received_at`` is
    ``time.monotonic()``. ``status``/``response`` are what the fake answered.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str] = field(repr=False)  # case-insensitive
    json: Any
    files: list[RecordedFile]
    received_at: float
    timestamp: datetime = field(repr=False)
    url_path: str = field(repr=False, default="")
    status: int | None = None
    response: Any = field(default=None, repr=False)
    interaction: FakeInteraction | None = field(default=None, repr=False)
    known_route: bool = True

    @property
    def client(self) -> str | None:
        """The name given to the client that sent this, by :func:`label_client`."""
        return self.headers.get(CLIENT_LABEL_HEADER)

    def matches(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> bool:
        """``path`` is matched exactly if a str without regex metacharacters, else fullmatch."""
        if method is not None and self.method != method.upper():
            return False
        if path is None:
            return True
        if isinstance(path, re.Pattern):
            return path.fullmatch(self.path) is not None
        return self.path == path or re.fullmatch(path, self.path) is not None


@dataclass
class GatewayMessage:
    """A payload the client sent over the gateway (``op``/``d``), or one the fake sent.

    ``shard`` is the ``[id, count]`` of the session it came from or went to (None before the
    connection identified).
    """

    op: int
    d: Any
    received_at: float
    t: str | None = None
    s: int | None = None
    shard: list[int] | None = None


@dataclass
class FakeInteraction:
    """Handle for an interaction the fake dispatched; also tracks Discord's side of its state."""

    id: int
    token: str
    type: int
    application_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any] = field(repr=False)
    dispatched_at: float = field(repr=False)
    response_type: int | None = None
    original_message_id: int | None = None
    ephemeral: bool = False
    loading: bool = False
    followup_message_ids: list[int] = field(default_factory=list)

    @property
    def callback_path(self) -> str:
        return f"/interactions/{self.id}/{self.token}/callback"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.application_id}/{self.token}"

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None


class CommandNotAvailable(Exception):
    """Raised by ``send_interaction`` when Discord would not let the user run the command."""


class _Reply:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _ok(body: Any, status: int = 200) -> _Reply:
    return _Reply(status, body)


def _no_content() -> _Reply:
    return _Reply(204)


def _error(status: int, code: int, message: str, errors: Any = None) -> _Reply:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return _Reply(status, body)


def _form_error(errors: dict[str, Any]) -> _Reply:
    return _error(400, 50035, "Invalid Form Body", errors)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


class _Waitable:
    """A list of items plus predicate waiters that also see items recorded before the wait."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[Any] = []
        self._waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []

    def add(self, item: Any) -> None:
        self.items.append(item)
        for waiter in list(self._waiters):
            pred, fut = waiter
            if fut.done():
                continue
            try:
                matched = pred(item)
            except Exception as exc:
                fut.set_exception(exc)
                continue
            if matched:
                fut.set_result(item)

    async def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float, describe: Callable[[], str]
    ) -> Any:
        for item in self.items:
            if predicate(item):
                return item
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiter = (predicate, fut)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no matching {self.what} within {timeout}s; seen so far:\n{describe()}"
            ) from None
        finally:
            self._waiters.remove(waiter)


# --------------------------------------------------------------------------------------------
# Gateway plumbing.
# --------------------------------------------------------------------------------------------


class _GatewayConnection:
    def __init__(self, ws: web.WebSocketResponse, path: str, query: Mapping[str, str]) -> None:
        self.ws = ws
        self.path = path
        self.query = dict(query)
        self.compression: str | None = None
        self._lock = asyncio.Lock()
        self._encode: Callable[[bytes], bytes] | None = None
        self.session: _GatewaySession | None = None

    def enable_compression(self, kind: str | None) -> None:
        if kind == "zlib-stream":
            zctx = zlib.compressobj()

            def zlib_encode(data: bytes) -> bytes:
                return zctx.compress(data) + zctx.flush(zlib.Z_SYNC_FLUSH)

            self._encode = zlib_encode
            self.compression = kind
        elif kind == "zstd-stream":
            try:
                import zstandard  # optional: only when the client asks for it
            except ImportError:
                log.warning("client asked for zstd-stream but zstandard is missing; sending text")
                return
            zobj = zstandard.ZstdCompressor().compressobj()

            def zstd_encode(data: bytes) -> bytes:
                return zobj.compress(data) + zobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

            self._encode = zstd_encode
            self.compression = kind

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, payload: Mapping[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._encode is not None:
                    await self.ws.send_bytes(self._encode(text.encode()))
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:  # client went away mid-send
                log.debug("gateway send failed: %s", exc)


@dataclass
class _GatewaySession:
    session_id: str
    intents: int
    identify: dict[str, Any]
    shard: list[int]
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    connection: _GatewayConnection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def shard_id(self) -> int:
        return self.shard[0]

    @property
    def shard_count(self) -> int:
        return self.shard[1]

    def holds(self, guild_id: int | None) -> bool:
        return shard_for(guild_id, self.shard_count) == self.shard_id


# --------------------------------------------------------------------------------------------
# The fake.
# --------------------------------------------------------------------------------------------


_Handler = Callable[..., Any]


class FakeDiscord:
    """Fake Discord REST API + gateway on 127.0.0.1 for the real discord.py client.

    ``async with FakeDiscord() as fake`` starts the server and patches discord.py to use it
    (``start()``/``stop()`` + ``patch()`` do the same separately).
    """

    def __init__(
        self,
        *,
        bot_user: FakeUser | None = None,
        application_id: int | None = None,
        guilds: Sequence[FakeGuild] | None = None,
        users: Sequence[FakeUser] = (),
        token: str | None = None,
        heartbeat_interval: float = 41.25,
        gateway_compression: bool = True,
        privileged_intents: int | None = None,
        application_flags: int = DEFAULT_APPLICATION_FLAGS,
        callback_deadline: float | None = 3.0,
        validate_payloads: bool = True,
        echo_bot_messages: bool = True,
        require_synced_commands: bool = False,
        enforce_default_permissions: bool = False,
        recommended_shards: int = 1,
        host: str = "127.0.0.1",
    ) -> None:
        self.bot_user = bot_user or FakeUser(BOT_USER_ID, "newsbot", bot=True)
        self.application_id = application_id or self.bot_user.id
        self.guilds: list[FakeGuild] = list(guilds) if guilds is not None else [FakeGuild()]
        for guild in self.guilds:
            if guild.member(self.bot_user.id) is None:
                if guild.role(BOT_ROLE_ID) is None:
                    guild.roles.append(
                        FakeRole(BOT_ROLE_ID, self.bot_user.username, BOT_PERMISSIONS, 1, True)
                    )
                guild.members.append(FakeMember(self.bot_user, roles=[BOT_ROLE_ID]))
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.gateway_compression = gateway_compression
        self.privileged_intents = privileged_intents
        self.application_flags = application_flags
        self.callback_deadline = callback_deadline
        self.validate_payloads = validate_payloads
        self.echo_bot_messages = echo_bot_messages
        self.require_synced_commands = require_synced_commands
        self.enforce_default_permissions = enforce_default_permissions
        self.recommended_shards = recommended_shards
        self.host = host

        self._users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        for guild in self.guilds:
            for member in guild.members:
                self._users.setdefault(member.user.id, member.user)
        for user in users:
            self._users[user.id] = user

        self._ids = _Snowflakes()
        self._requests = _Waitable("request")
        self._gateway_in = _Waitable("gateway payload from the client")
        self._gateway_out = _Waitable("gateway event to the client")
        self.errors: list[str] = []  # internal errors of the fake (handler exceptions)
        self.presence: dict[str, Any] | None = None
        self.gateway_connections: list[_GatewayConnection] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.dropped_events: list[dict[str, Any]] = []
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._dm_channels: dict[int, int] = {}  # channel id -> recipient user id
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._injected: list[dict[str, Any]] = []
        self._sessions: dict[str, _GatewaySession] = {}
        self._session: _GatewaySession | None = None  # the last one to identify
        self._shard_sessions: dict[int, _GatewaySession] = {}  # by shard id, the latest of each
        self._ready = asyncio.Event()
        self._connections: set[_GatewayConnection] = set()
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self._patches: list[tuple[str, yarl.URL]] = []
        self._routes = self._build_routes()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway_handler)
        app.router.add_get("/resume", self._gateway_handler)
        app.router.add_route("*", "/{tail:.*}", self._http_handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake discord stopping")
        self._connections.clear()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        self._push_patch()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._pop_patch()
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/resume"

    def _push_patch(self) -> None:
        self._patches.append(
            (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        )
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def _pop_patch(self) -> None:
        base, gateway = self._patches.pop()
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway

    @contextlib.contextmanager
    def patch(self) -> Iterator[FakeDiscord]:
        """Point discord.py at this fake (``Route.BASE``, ``DEFAULT_GATEWAY``), restore after."""
        self._push_patch()
        try:
            yield self
        finally:
            self._pop_patch()

    # ---- convenient accessors --------------------------------------------------------------

    @property
    def guild(self) -> FakeGuild:
        return self.guilds[0]

    @property
    def guild_id(self) -> int:
        return self.guilds[0].id

    @property
    def channel_id(self) -> int:
        return next(c.id for c in self.guilds[0].channels if c.type in (0, 5))

    @property
    def bot_mention(self) -> str:
        return f"<@{self.bot_user.id}>"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._requests.items

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        return [r for r in self._requests.items if not r.known_route]

    @property
    def gateway_received(self) -> list[GatewayMessage]:
        """Every payload the client sent over the gateway (identify, heartbeats, presence...)."""
        return self._gateway_in.items

    @property
    def gateway_sent(self) -> list[GatewayMessage]:
        """Every DISPATCH the fake sent (READY, GUILD_CREATE, INTERACTION_CREATE, ...)."""
        return self._gateway_out.items

    @property
    def identify(self) -> dict[str, Any] | None:
        """The ``d`` of the client's last IDENTIFY (token, intents, properties, ...)."""
        return self._session.identify if self._session else None

    @property
    def intents(self) -> int | None:
        return self._session.intents if self._session else None

    @property
    def session_id(self) -> str | None:
        return self._session.session_id if self._session else None

    @property
    def shard_sessions(self) -> dict[int, list[int]]:
        """The ``[id, count]`` of the latest session of each shard id that identified."""
        return {sid: list(sess.shard) for sid, sess in sorted(self._shard_sessions.items())}

    def user(self, user_id: int) -> FakeUser:
        return self._users[user_id]

    def add_user(self, user: FakeUser) -> FakeUser:
        self._users[user.id] = user
        return user

    def new_id(self) -> int:
        return self._ids.next()

    def commands(self, guild_id: int | None = None) -> dict[str, dict[str, Any]]:
        """Synced commands by name: global ones, or those of ``guild_id``."""
        cmds = self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])
        return {c["name"]: c for c in cmds}

    def channel_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        cid = str(channel_id or self.channel_id)
        return [m for m in self.messages.values() if m["channel_id"] == cid]

    def original_message(self, interaction: FakeInteraction) -> dict[str, Any] | None:
        if interaction.original_message_id is None:
            return None
        return self.messages.get(interaction.original_message_id)

    def interaction_requests(self, interaction: FakeInteraction) -> list[RecordedRequest]:
        return [r for r in self.requests if r.interaction is interaction]

    def describe_requests(self) -> str:
        lines = []
        for r in self.requests:
            body = json.dumps(r.json)[:200] if r.json is not None else ""
            lines.append(f"  {r.method} {r.path} -> {r.status} {body}")
        return "\n".join(lines) or "  (none)"

    # ---- waiting ---------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0
    ) -> RecordedRequest:
        """First recorded request (already received or future) matching ``predicate``.

        Requests are recorded once the fake has computed its answer, so ``status`` and
        ``response`` are set.
        """
        return await self._requests.wait_for(predicate, timeout, self.describe_requests)

    async def wait_for_request(
        self, method: str, path: str | re.Pattern[str], timeout: float = 5.0
    ) -> RecordedRequest:
        return await self.wait_for(lambda r: r.matches(method, path), timeout)

    async def wait_for_callback(
        self, interaction: FakeInteraction, timeout: float = 5.0
    ) -> RecordedRequest:
        """The ``POST /interactions/{id}/{token}/callback`` for ``interaction``."""
        return await self.wait_for(
            lambda r: r.interaction is interaction and r.path.endswith("/callback"), timeout
        )

    async def wait_for_followup(
        self, interaction: FakeInteraction, timeout: float = 5.0, index: int = 0
    ) -> RecordedRequest:
        """The ``index``-th followup ``POST /webhooks/{app_id}/{token}`` for ``interaction``."""
        seen: list[RecordedRequest] = []

        def pred(r: RecordedRequest) -> bool:
            if (
                r.interaction is interaction
                and r.method == "POST"
                and r.path.startswith("/webhooks/")
            ):
                seen.append(r)
                return len(seen) > index
            return False

        return await self.wait_for(pred, timeout)

    async def wait_for_edit(
        self, interaction: FakeInteraction, timeout: float = 5.0
    ) -> RecordedRequest:
        """The first ``PATCH .../messages/@original`` for ``interaction``."""
        return await self.wait_for(
            lambda r: (
                r.interaction is interaction
                and r.method == "PATCH"
                and r.path.endswith("/messages/@original")
            ),
            timeout,
        )

    async def wait_for_gateway(
        self, predicate: Callable[[GatewayMessage], bool], timeout: float = 5.0
    ) -> GatewayMessage:
        """First payload from the client over the gateway matching ``predicate``."""
        return await self._gateway_in.wait_for(
            predicate,
            timeout,
            lambda: "\n".join(f"  op={m.op} d={str(m.d)[:120]}" for m in self._gateway_in.items),
        )

    async def wait_until_ready(self, timeout: float = 5.0) -> None:
        """Until a client has identified and READY + GUILD_CREATEs were sent."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no client identified with the fake within {timeout}s; requests:\n"
                + self.describe_requests()
            ) from None

    # ---- error injection -------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str | re.Pattern[str],
        status: int = 500,
        json_body: Any = None,
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with an error.

        discord.py retries 500/502/504/524 up to 5 times with 1 s, 3 s, ... sleeps, so prefer 4xx
        (403 with code 50013 "Missing Permissions" is the realistic one) or a 429 (the fake adds
        the ``Via`` header and a small ``retry_after``, otherwise discord.py treats it as a
        Cloudflare ban).
        """
        hdrs = dict(headers or {})
        if json_body is None:
            if status == 429:
                json_body = {
                    "message": "You are being rate limited.",
                    "retry_after": 0.05,
                    "global": False,
                }
            elif status == 403:
                json_body = {"message": "Missing Permissions", "code": 50013}
            else:
                json_body = {"message": f"{status}: injected error", "code": 0}
        if status == 429:
            hdrs.setdefault("Via", "1.1 google")
        self._injected.append(
            {
                "method": method.upper(),
                "path": path,
                "status": status,
                "body": json_body,
                "headers": hdrs,
                "times": times,
            }
        )

    # ---- HTTP ------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[set[str], re.Pattern[str], _Handler]]:
        app = r"(?P<app_id>\d+)"
        guild = r"(?:/guilds/(?P<guild_id>\d+))?"
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/users/@me", self._h_me),
            ("GET", r"/users/(?P<user_id>\d+)", self._h_user),
            ("POST", r"/users/@me/channels", self._h_create_dm),
            ("GET", r"/(?:oauth2/)?applications/@me", self._h_application),
            ("GET", r"/gateway", self._h_gateway),
            ("GET", r"/gateway/bot", self._h_gateway_bot),
            (
                "GET",
                rf"/applications/{app}/guilds/(?P<guild_id>\d+)/commands/permissions",
                lambda rec, **kw: _ok([]),
            ),
            ("GET PUT POST", rf"/applications/{app}{guild}/commands", self._h_commands),
            (
                "GET PATCH DELETE",
                rf"/applications/{app}{guild}/commands/(?P<command_id>\d+)",
                self._h_command,
            ),
            ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._h_callback),
            ("POST", rf"/webhooks/{app}/(?P<token>[^/]+)", self._h_followup),
            (
                "GET PATCH DELETE",
                rf"/webhooks/{app}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._h_webhook_message,
            ),
            ("GET", r"/channels/(?P<channel_id>\d+)", self._h_channel),
            ("GET POST", r"/channels/(?P<channel_id>\d+)/messages", self._h_channel_messages),
            (
                "GET PATCH DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)",
                self._h_channel_message,
            ),
            ("POST", r"/channels/(?P<channel_id>\d+)/typing", lambda rec, **kw: _no_content()),
            (
                "PUT DELETE",
                r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)"
                r"/reactions/(?P<emoji>[^/]+)/@me",
                self._h_reaction,
            ),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._h_guild),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._h_guild_channels),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._h_guild_roles),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._h_member),
        ]
        return [(set(m.split()), re.compile(p), h) for m, p, h in table]

    async def _http_handler(self, request: web.Request) -> web.StreamResponse:
        url_path = request.path
        m = re.match(r"^/api/v\d+(/.*)$", url_path)
        api_path = m.group(1) if m else url_path
        try:
            payload, files = await self._read_body(request)
        except ValueError as exc:  # malformed payload_json / multipart
            payload, files = {"_unparseable": repr(exc)}, []
        rec = RecordedRequest(
            method=request.method,
            path=api_path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            json=payload,
            files=files,
            received_at=time.monotonic(),
            timestamp=_now(),
            url_path=url_path,
        )
        reply = self._injected_reply(rec)
        if reply is None:
            reply = await self._route(rec, api_path if m else None)
        rec.status = reply.status
        rec.response = reply.body
        self._requests.add(rec)
        if reply.status == 204 or reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        headers = {**reply.headers, **_JSON_HEADERS}
        return web.Response(
            status=reply.status, body=json.dumps(reply.body).encode(), headers=headers
        )

    def _injected_reply(self, rec: RecordedRequest) -> _Reply | None:
        for inj in self._injected:
            if inj["times"] > 0 and rec.matches(inj["method"], inj["path"]):
                inj["times"] -= 1
                return _Reply(inj["status"], inj["body"], inj["headers"])
        return None

    async def _route(self, rec: RecordedRequest, api_path: str | None) -> _Reply:
        if api_path is not None:
            for methods, pattern, handler in self._routes:
                m = pattern.fullmatch(api_path)
                if m is None or rec.method not in methods:
                    continue
                if rec.headers.get("Authorization") is not None and not self._auth_ok(rec):
                    return _error(401, 0, "401: Unauthorized")
                try:
                    result = handler(rec, **{k: v for k, v in m.groupdict().items()})
                    if asyncio.iscoroutine(result):
                        result = await result
                    return result
                except Exception as exc:  # surface bugs in the fake without 5xx retry storms
                    log.exception("fake discord handler failed for %s %s", rec.method, rec.path)
                    self.errors.append(f"{rec.method} {rec.path}: {exc!r}")
                    return _error(400, 0, f"fake discord internal error: {exc!r}")
        rec.known_route = False
        log.warning("fake discord: unknown route %s %s", rec.method, rec.url_path)
        return _error(404, 0, "Unknown")

    def _auth_ok(self, rec: RecordedRequest) -> bool:
        auth = rec.headers.get("Authorization", "")
        if not auth.startswith("Bot ") or len(auth) <= 4:
            return False
        return self.token is None or auth == f"Bot {self.token}"

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[RecordedFile]]:
        files: list[RecordedFile] = []
        if not request.can_read_body:
            return None, files
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                data = bytes(await part.read(decode=False))
                name = part.name or ""
                if name == "payload_json":
                    payload = json.loads(data)
                else:
                    files.append(
                        RecordedFile(
                            field=name,
                            filename=part.filename,
                            content_type=part.headers.get("Content-Type"),
                            data=data,
                        )
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode(errors="replace"), files

    # ---- REST handlers: users, app, gateway ------------------------------------------------

    def _h_me(self, rec: RecordedRequest) -> _Reply:
        if not self._auth_ok(rec):
            return _error(401, 0, "401: Unauthorized")
        data = self.bot_user.to_payload()
        data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return _ok(data)

    def _h_user(self, rec: RecordedRequest, user_id: str) -> _Reply:
        user = self._users.get(int(user_id))
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _ok(user.to_payload())

    def _h_create_dm(self, rec: RecordedRequest) -> _Reply:
        user_id = int((rec.json or {}).get("recipient_id", 0))
        user = self._users.get(user_id)
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _ok(self._dm_channel_payload(self._dm_channel_for(user_id)))

    def _dm_channel_for(self, user_id: int) -> int:
        for cid, uid in self._dm_channels.items():
            if uid == user_id:
                return cid
        cid = self.new_id()
        self._dm_channels[cid] = user_id
        return cid

    def _dm_channel_payload(self, channel_id: int) -> dict[str, Any]:
        user = self._users[self._dm_channels[channel_id]]
        return {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "recipients": [user.to_payload()],
            "flags": 0,
        }

    def _h_application(self, rec: RecordedRequest) -> _Reply:
        return _ok(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "fake application",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "owner": self._users.get(OWNER_ID, FakeUser(OWNER_ID, "owner")).to_payload(),
                "team": None,
                "bot": self.bot_user.to_payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    def _h_gateway(self, rec: RecordedRequest) -> _Reply:
        return _ok({"url": self.gateway_url.rstrip("/")})

    def _h_gateway_bot(self, rec: RecordedRequest) -> _Reply:
        return _ok(
            {
                "url": self.gateway_url.rstrip("/"),
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    # ---- REST handlers: application commands -----------------------------------------------

    def _command_list(self, guild_id: str | None) -> list[dict[str, Any]]:
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(int(guild_id), [])

    def _finish_command(self, data: Mapping[str, Any], guild_id: int | None) -> dict[str, Any]:
        cmd = dict(data)
        ctype = cmd.get("type", 1)
        perms = cmd.get("default_member_permissions")
        key = (guild_id, cmd["name"], ctype)
        if key not in self._command_ids:
            self._command_ids[key] = self.new_id()
        cmd.update(
            {
                "id": str(self._command_ids[key]),
                "application_id": str(self.application_id),
                "version": str(self.new_id()),
                "type": ctype,
                "description": cmd.get("description", ""),
                "options": cmd.get("options") or [],
                # discord.py sends an int; Discord answers with a string (or null).
                "default_member_permissions": (None if perms is None else str(perms)),
                "dm_permission": cmd.get("dm_permission", True),
                "nsfw": cmd.get("nsfw", False),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types") or [0],
                "name_localizations": cmd.get("name_localizations"),
                "description_localizations": cmd.get("description_localizations"),
            }
        )
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        return cmd

    def _validate_command(self, cmd: Any) -> dict[str, Any] | None:
        if not isinstance(cmd, dict) or "name" not in cmd:
            return _field_error("BASE_TYPE_REQUIRED", "This field is required")
        errors: dict[str, Any] = {}
        ctype = cmd.get("type", 1)
        name = cmd["name"]
        if ctype == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
            errors["name"] = _field_error("APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
        if ctype == 1 and not 1 <= len(cmd.get("description", "")) <= 100:
            errors["description"] = _field_error(
                "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        opt_errors = self._validate_options(cmd.get("options") or [])
        if opt_errors:
            errors["options"] = opt_errors
        return errors or None

    def _validate_options(self, options: list[dict[str, Any]]) -> dict[str, Any] | None:
        errors: dict[str, Any] = {}
        if len(options) > 25:
            return _field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        for i, opt in enumerate(options):
            e: dict[str, Any] = {}
            name = opt.get("name", "")
            if not _COMMAND_NAME.match(name) or name != name.lower():
                e["name"] = _field_error("APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
            if not 1 <= len(opt.get("description", "")) <= 100:
                e["description"] = _field_error(
                    "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            if len(opt.get("choices") or []) > 25:
                e["choices"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
            if opt.get("type") in (1, 2):
                sub = self._validate_options(opt.get("options") or [])
                if sub:
                    e["options"] = sub
            elif opt.get("required"):
                if seen_optional:
                    e["required"] = _field_error(
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            if e:
                errors[str(i)] = e
        return errors or None

    def _h_commands(self, rec: RecordedRequest, app_id: str, guild_id: str | None) -> _Reply:
        if int(app_id) != self.application_id:
            return _error(403, 50001, "Missing Access")
        gid = int(guild_id) if guild_id else None
        if gid is not None and not any(g.id == gid for g in self.guilds):
            return _error(403, 50001, "Missing Access")
        current = self._command_list(guild_id)
        if rec.method == "GET":
            return _ok(current)
        if rec.method == "PUT":
            payload = rec.json if isinstance(rec.json, list) else []
            if len(payload) > 100:
                return _form_error(_field_error("BASE_TYPE_MAX_LENGTH", "Max 100 commands"))
            errors = {str(i): e for i, c in enumerate(payload) if (e := self._validate_command(c))}
            if errors and self.validate_payloads:
                return _form_error(errors)
            current[:] = [self._finish_command(c, gid) for c in payload]
            return _ok(current)
        # POST: upsert one command
        if self.validate_payloads and (err := self._validate_command(rec.json)):
            return _form_error(err)
        cmd = self._finish_command(rec.json, gid)
        current[:] = [c for c in current if c["id"] != cmd["id"]] + [cmd]
        return _ok(cmd, status=201)

    def _h_command(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None, command_id: str
    ) -> _Reply:
        current = self._command_list(guild_id)
        cmd = next((c for c in current if c["id"] == command_id), None)
        if cmd is None:
            return _error(404, 10063, "Unknown application command")
        if rec.method == "GET":
            return _ok(cmd)
        if rec.method == "DELETE":
            current.remove(cmd)
            return _no_content()
        cmd.update(rec.json or {})
        return _ok(cmd)

    # ---- REST handlers: interactions -------------------------------------------------------

    async def _h_callback(self, rec: RecordedRequest, iid: str, token: str) -> _Reply:
        ix = self.interactions.get(int(iid))
        if ix is None or ix.token != token:
            return _error(404, 10062, "Unknown interaction")
        rec.interaction = ix
        body = rec.json if isinstance(rec.json, dict) else {}
        late = (
            self.callback_deadline is not None
            and time.monotonic() - ix.dispatched_at > self.callback_deadline
        )
        if late:
            return _error(404, 10062, "Unknown interaction")
        if ix.acknowledged:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        rtype = body.get("type")
        allowed = {
            2: {4, 5, 9},  # application command
            3: {4, 5, 6, 7, 9},  # message component
            4: {8},  # autocomplete
            5: {4, 5, 6, 7},  # modal submit
        }[ix.type]
        if rtype not in allowed:
            return _form_error({"type": _field_error("INTERACTION_TYPE_INVALID", "Invalid type")})
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if rtype == 4:
            if err := self._validate_message(data, rec.files, creating=True):
                return err
            ix.ephemeral = bool(data.get("flags", 0) & FLAG_EPHEMERAL)
            message = self._create_message(
                ix.channel_id, data, rec.files, interaction=ix, flags=data.get("flags", 0)
            )
            ix.original_message_id = int(message["id"])
        elif rtype == 5:
            flags = (data.get("flags", 0) & FLAG_EPHEMERAL) | FLAG_LOADING
            ix.ephemeral = bool(flags & FLAG_EPHEMERAL)
            ix.loading = True
            message = self._create_message(
                ix.channel_id, {"content": ""}, [], interaction=ix, flags=flags
            )
            ix.original_message_id = int(message["id"])
        elif rtype in (6, 7):
            ix.original_message_id = int(ix.payload["message"]["id"])
            if rtype == 7:
                if err := self._validate_message(data, rec.files, creating=False):
                    return err
                message = self._edit_message(ix.original_message_id, data, rec.files)
        elif rtype == 8:
            choices = data.get("choices") or []
            if len(choices) > 25:
                return _form_error(
                    {"data": {"choices": _field_error("BASE_TYPE_MAX_LENGTH", "Max 25.")}}
                )
            for i, choice in enumerate(choices):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    return _form_error(
                        {"data": {"choices": {str(i): {"name": _field_error("BAD_LENGTH", "")}}}}
                    )
        ix.response_type = rtype
        if message is not None and not message["flags"] & FLAG_EPHEMERAL:
            event = "MESSAGE_UPDATE" if rtype == 7 else "MESSAGE_CREATE"
            await self._echo_message(event, message)
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return _no_content()
        interaction: dict[str, Any] = {"id": str(ix.id), "type": ix.type}
        resource: dict[str, Any] = {"type": rtype}
        if message is not None:
            interaction["response_message_id"] = message["id"]
            interaction["response_message_loading"] = rtype == 5
            interaction["response_message_ephemeral"] = ix.ephemeral
            resource["message"] = message
        return _ok({"interaction": interaction, "resource": resource})

    def _interaction_for_webhook(self, app_id: str, token: str) -> FakeInteraction | None:
        if int(app_id) != self.application_id:
            return None
        return self._interactions_by_token.get(token)

    async def _h_followup(self, rec: RecordedRequest, app_id: str, token: str) -> _Reply:
        ix = self._interaction_for_webhook(app_id, token)
        if ix is None or not ix.acknowledged:
            # Discord only creates the interaction webhook once the interaction is acknowledged.
            return _error(404, 10015, "Unknown Webhook")
        rec.interaction = ix
        data = rec.json if isinstance(rec.json, dict) else {}
        if err := self._validate_message(data, rec.files, creating=True):
            return err
        if ix.loading and ix.original_message_id is not None:
            # The first followup after a "thinking" defer resolves the loading message; its
            # ephemerality is the defer's (https://github.com/discord/discord-api-docs/issues/2742).
            ix.loading = False
            message = self._edit_message(ix.original_message_id, data, rec.files, resolve=True)
            event = "MESSAGE_UPDATE"
        else:
            flags = data.get("flags", 0) & (FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS)
            message = self._create_message(
                ix.channel_id, data, rec.files, interaction=ix, flags=flags, followup=True
            )
            event = "MESSAGE_CREATE"
        ix.followup_message_ids.append(int(message["id"]))
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._echo_message(event, message)
        if rec.query.get("wait") in ("0", "false", "False"):
            return _no_content()
        return _ok(message)

    async def _h_webhook_message(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> _Reply:
        ix = self._interaction_for_webhook(app_id, token)
        if ix is None:
            return _error(404, 10015, "Unknown Webhook")
        rec.interaction = ix
        if message_id == "@original":
            mid = ix.original_message_id
        elif int(message_id) in (*ix.followup_message_ids, ix.original_message_id):
            mid = int(message_id)
        else:
            mid = None
        if mid is None or mid not in self.messages:
            return _error(404, 10008, "Unknown Message")
        if rec.method == "GET":
            return _ok(self.messages[mid])
        if rec.method == "DELETE":
            msg = self.messages.pop(mid)
            if mid == ix.original_message_id:
                # Deleting the "thinking…" placeholder leaves nothing for a followup to resolve:
                # the next followup is a new message with its own (ephemeral) flags.
                ix.loading = False
            await self._echo_delete(msg)
            return _no_content()
        data = rec.json if isinstance(rec.json, dict) else {}
        if err := self._validate_message(data, rec.files, creating=False):
            return err
        was_loading = bool(self.messages[mid]["flags"] & FLAG_LOADING)
        message = self._edit_message(mid, data, rec.files, resolve=True)
        if mid == ix.original_message_id and was_loading:
            ix.loading = False
        if not message["flags"] & FLAG_EPHEMERAL:
            await self._echo_message("MESSAGE_UPDATE", message)
        return _ok(message)

    # ---- REST handlers: channels, messages, guilds -----------------------------------------

    def _find_channel(self, channel_id: int) -> tuple[FakeGuild | None, dict[str, Any] | None]:
        for guild in self.guilds:
            ch = guild.channel(channel_id)
            if ch is not None:
                return guild, ch.to_payload(guild.id, guild.channels.index(ch))
        if channel_id in self._dm_channels:
            return None, self._dm_channel_payload(channel_id)
        return None, None

    def _h_channel(self, rec: RecordedRequest, channel_id: str) -> _Reply:
        _, payload = self._find_channel(int(channel_id))
        if payload is None:
            return _error(404, 10003, "Unknown Channel")
        return _ok(payload)

    async def _h_channel_messages(self, rec: RecordedRequest, channel_id: str) -> _Reply:
        cid = int(channel_id)
        _, channel = self._find_channel(cid)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if rec.method == "GET":
            limit = int(rec.query.get("limit", 50))
            msgs = sorted(self.channel_messages(cid), key=lambda m: int(m["id"]), reverse=True)
            return _ok(msgs[:limit])
        data = rec.json if isinstance(rec.json, dict) else {}
        if err := self._validate_message(data, rec.files, creating=True):
            return err
        ref = data.get("message_reference")
        if ref and ref.get("message_id") and int(ref["message_id"]) not in self.messages:
            if ref.get("fail_if_not_exists", True):
                return _form_error(
                    {
                        "message_reference": _field_error(
                            "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                        )
                    }
                )
            data = {**data, "message_reference": None}
        message = self._create_message(cid, data, rec.files, flags=data.get("flags", 0))
        await self._echo_message("MESSAGE_CREATE", message)
        return _ok(message)

    async def _h_channel_message(
        self, rec: RecordedRequest, channel_id: str, message_id: str
    ) -> _Reply:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["channel_id"] != channel_id:
            return _error(404, 10008, "Unknown Message")
        if rec.method == "GET":
            return _ok(msg)
        if rec.method == "DELETE":
            self.messages.pop(int(message_id))
            await self._echo_delete(msg)
            return _no_content()
        if msg["author"]["id"] != str(self.bot_user.id):
            return _error(403, 50005, "Cannot edit a message authored by another user")
        data = rec.json if isinstance(rec.json, dict) else {}
        if err := self._validate_message(data, rec.files, creating=False):
            return err
        message = self._edit_message(int(message_id), data, rec.files)
        await self._echo_message("MESSAGE_UPDATE", message)
        return _ok(message)

    def _h_reaction(
        self, rec: RecordedRequest, channel_id: str, message_id: str, emoji: str
    ) -> _Reply:
        if int(message_id) not in self.messages:
            return _error(404, 10008, "Unknown Message")
        return _no_content()

    def _guild(self, guild_id: str) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == int(guild_id)), None)

    def _h_guild(self, rec: RecordedRequest, guild_id: str) -> _Reply:
        guild = self._guild(guild_id)
        return _ok(guild.to_payload()) if guild else _error(404, 10004, "Unknown Guild")

    def _h_guild_channels(self, rec: RecordedRequest, guild_id: str) -> _Reply:
        guild = self._guild(guild_id)
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        return _ok([c.to_payload(guild.id, i) for i, c in enumerate(guild.channels)])

    def _h_guild_roles(self, rec: RecordedRequest, guild_id: str) -> _Reply:
        guild = self._guild(guild_id)
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        return _ok([r.to_payload() for r in (guild.everyone_role, *guild.roles)])

    def _h_member(self, rec: RecordedRequest, guild_id: str, user_id: str) -> _Reply:
        guild = self._guild(guild_id)
        member = guild.member(int(user_id)) if guild else None
        if member is None:
            return _error(404, 10007, "Unknown Member")
        return _ok(member.to_payload())

    # ---- messages --------------------------------------------------------------------------

    def _validate_message(
        self, data: Mapping[str, Any], files: Sequence[RecordedFile], *, creating: bool
    ) -> _Reply | None:
        if not self.validate_payloads:
            return None
        errors: dict[str, Any] = {}
        content = data.get("content")
        if content is not None and len(str(content)) > 2000:
            errors["content"] = _field_error(
                "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        embeds = data.get("embeds") or []
        if len(embeds) > 10:
            errors["embeds"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer.")
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, embed in enumerate(embeds[:10]):
            e: dict[str, Any] = {}
            for key, limit in limits.items():
                value = embed.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    e[key] = _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer.")
            fields = embed.get("fields") or []
            if len(fields) > 25:
                e["fields"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
            for j, fld in enumerate(fields):
                name, value = str(fld.get("name", "")), str(fld.get("value", ""))
                total += len(name) + len(value)
                fe: dict[str, Any] = {}
                if not 1 <= len(name) <= 256:
                    fe["name"] = _field_error("BASE_TYPE_BAD_LENGTH", "1 to 256 characters.")
                if not 1 <= len(value) <= 1024:
                    fe["value"] = _field_error("BASE_TYPE_BAD_LENGTH", "1 to 1024 characters.")
                if fe:
                    e.setdefault("fields", {})[str(j)] = fe
            footer = (embed.get("footer") or {}).get("text") or ""
            author = (embed.get("author") or {}).get("name") or ""
            total += len(footer) + len(author)
            if len(footer) > 2048:
                e["footer"] = {"text": _field_error("BASE_TYPE_MAX_LENGTH", "2048 or fewer.")}
            if len(author) > 256:
                e["author"] = {"name": _field_error("BASE_TYPE_MAX_LENGTH", "256 or fewer.")}
            if e:
                errors.setdefault("embeds", {})[str(i)] = e
        if total > 6000:
            errors.setdefault("embeds", {}).update(
                _field_error("BASE_TYPE_MAX_LENGTH", "Embed size exceeds maximum size of 6000")
            )
        components = data.get("components") or []
        if not data.get("flags", 0) & FLAG_COMPONENTS_V2:
            if len(components) > 5:
                errors["components"] = _field_error("BASE_TYPE_MAX_LENGTH", "5 or fewer.")
            for i, row in enumerate(components):
                children = row.get("components") or []
                if row.get("type") != 1 or not 1 <= len(children) <= 5:
                    errors.setdefault("components", {})[str(i)] = _field_error(
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "Invalid action row"
                    )
        for comp in _walk_components(components):
            if len(str(comp.get("custom_id", ""))) > 100 or len(str(comp.get("label", ""))) > 80:
                errors.setdefault("components", {}).update(
                    _field_error("BASE_TYPE_MAX_LENGTH", "custom_id <= 100, label <= 80")
                )
        allowed = data.get("allowed_mentions") or {}
        for kind in ("users", "roles"):
            if kind in (allowed.get("parse") or []) and allowed.get(kind):
                errors["allowed_mentions"] = _field_error(
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                )
        if len(files) > 10:
            errors["files"] = _field_error("BASE_TYPE_MAX_LENGTH", "10 or fewer.")
        if any(len(f.data) > ATTACHMENT_SIZE_LIMIT for f in files):
            return _error(413, 40005, "Request entity too large")
        if errors:
            return _form_error(errors)
        if creating and not (
            content or embeds or components or files or data.get("sticker_ids") or data.get("poll")
        ):
            return _error(400, 50006, "Cannot send an empty message")
        return None

    def _attachments(self, data: Mapping[str, Any], files: Sequence[RecordedFile]) -> list[Any]:
        meta = {str(a.get("id")): a for a in data.get("attachments") or []}
        out = []
        for i, f in enumerate(files):
            aid = self.new_id()
            extra = meta.get(str(i), {})
            filename = extra.get("filename") or f.filename or f"file{i}"
            out.append(
                {
                    "id": str(aid),
                    "filename": filename,
                    "description": extra.get("description"),
                    "size": len(f.data),
                    "url": f"{self.base_url}/attachments/{aid}/{filename}",
                    "proxy_url": f"{self.base_url}/attachments/{aid}/{filename}",
                    "content_type": f.content_type,
                }
            )
        return out

    def _mentions(
        self, content: str, allowed: Mapping[str, Any] | None, guild: FakeGuild | None
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        """(mentions, mention_roles, mention_everyone) honouring ``allowed_mentions``."""
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse", []))
        allowed_users = set(map(str, (allowed or {}).get("users") or []))
        allowed_roles = set(map(str, (allowed or {}).get("roles") or []))
        users = []
        for uid in dict.fromkeys(_USER_MENTION.findall(content)):
            if ("users" in parse or uid in allowed_users) and int(uid) in self._users:
                payload = self._users[int(uid)].to_payload()
                member = guild.member(int(uid)) if guild else None
                if member is not None:
                    payload["member"] = member.to_payload(with_user=False)
                users.append(payload)
        roles = [
            rid
            for rid in dict.fromkeys(_ROLE_MENTION.findall(content))
            if "roles" in parse or rid in allowed_roles
        ]
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        return users, roles, everyone

    def _create_message(
        self,
        channel_id: int,
        data: Mapping[str, Any],
        files: Sequence[RecordedFile],
        *,
        author: FakeUser | None = None,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
        followup: bool = False,
    ) -> dict[str, Any]:
        guild, _ = self._find_channel(channel_id)
        author = author or self.bot_user
        content = str(data.get("content") or "")
        mentions, roles, everyone = self._mentions(content, data.get("allowed_mentions"), guild)
        mid = self.new_id()
        msg_type = 0
        message: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": author.to_payload(),
            "content": content,
            "timestamp": _iso(_now()),
            "edited_timestamp": None,
            "tts": bool(data.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": roles,
            "attachments": self._attachments(data, files),
            "embeds": [{"type": "rich", **e} for e in data.get("embeds") or []],
            "reactions": [],
            "pinned": False,
            "type": 0,
            "flags": flags & (FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_LOADING | 1 << 12)
            | (data.get("flags", 0) & FLAG_COMPONENTS_V2),
            "components": list(data.get("components") or []),
            "sticker_items": [],
        }
        if data.get("nonce") is not None:
            message["nonce"] = data["nonce"]
        if data.get("poll"):
            message["poll"] = data["poll"]
        ref = data.get("message_reference")
        if ref and ref.get("message_id") and int(ref["message_id"]) in self.messages:
            msg_type = 19
            referenced = self.messages[int(ref["message_id"])]
            message["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                "guild_id": str(guild.id) if guild else None,
            }
            message["referenced_message"] = referenced
        if interaction is not None:
            invoker = self._users.get(interaction.user_id, FakeUser(interaction.user_id, "user"))
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": invoker.to_payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if interaction.type == 2:
                metadata["name"] = interaction.payload["data"]["name"]
                metadata["command_type"] = interaction.payload["data"].get("type", 1)
                if not followup:
                    msg_type = 20
            if followup and interaction.original_message_id:
                metadata["original_response_message_id"] = str(interaction.original_message_id)
            if interaction.type == 3:
                metadata["interacted_message_id"] = interaction.payload["message"]["id"]
            message["interaction_metadata"] = metadata
        message["type"] = msg_type
        self.messages[mid] = message
        return message

    def _edit_message(
        self,
        message_id: int,
        data: Mapping[str, Any],
        files: Sequence[RecordedFile],
        *,
        resolve: bool = False,
    ) -> dict[str, Any]:
        message = self.messages[message_id]
        guild, _ = self._find_channel(int(message["channel_id"]))
        if "content" in data:
            message["content"] = str(data["content"] or "")
            users, roles, everyone = self._mentions(
                message["content"], data.get("allowed_mentions"), guild
            )
            message.update(mentions=users, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in data:
            message["embeds"] = [{"type": "rich", **e} for e in data["embeds"] or []]
        if "components" in data:
            message["components"] = list(data["components"] or [])
        if "attachments" in data or files:
            kept_ids = {str(a.get("id")) for a in data.get("attachments") or []}
            kept = [a for a in message["attachments"] if a["id"] in kept_ids]
            message["attachments"] = kept + self._attachments(data, files)
        if "flags" in data and data["flags"] is not None:
            keep = message["flags"] & (FLAG_EPHEMERAL | FLAG_LOADING)
            message["flags"] = keep | (data["flags"] & (FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2))
        if resolve:
            message["flags"] &= ~FLAG_LOADING
        message["edited_timestamp"] = _iso(_now())
        return message

    async def _echo_message(self, event: str, message: dict[str, Any]) -> None:
        """MESSAGE_CREATE/UPDATE for a message the bot made (Discord echoes those too)."""
        if not self.echo_bot_messages or self._session is None:
            return
        guild, _ = self._find_channel(int(message["channel_id"]))
        data = dict(message)
        if guild is not None:
            data["guild_id"] = str(guild.id)
            member = guild.member(int(message["author"]["id"]))
            if member is not None:
                data["member"] = member.to_payload(with_user=False)
        if self._message_intent_ok(guild):
            await self.dispatch(event, data)
        else:
            self.dropped_events.append({"t": event, "d": data})

    async def _echo_delete(self, message: dict[str, Any]) -> None:
        if not self.echo_bot_messages or self._session is None:
            return
        guild, _ = self._find_channel(int(message["channel_id"]))
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if self._message_intent_ok(guild):
            await self.dispatch("MESSAGE_DELETE", data)

    def _message_intent_ok(self, guild: FakeGuild | None) -> bool:
        """Whether the session holding ``guild``'s shard (or the DMs) asked for its messages."""
        sess = self._session_for(guild.id if guild else None)
        intents = sess.intents if sess is not None else 0
        return bool(intents & (INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES))

    # ---- gateway ---------------------------------------------------------------------------

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _GatewayConnection(ws, request.path, request.query)
        if self.gateway_compression:
            conn.enable_compression(request.query.get("compress"))
        self._connections.add(conn)
        self.gateway_connections.append(conn)
        try:
            await conn.send(
                {"op": 10, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    payload = json.loads(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    payload = json.loads(msg.data.decode())
                else:
                    break
                await self._on_gateway_payload(conn, payload)
        finally:
            self._connections.discard(conn)
            sess = conn.session
            if sess is not None and sess.connection is conn:
                sess.connection = None
        return ws

    async def _on_gateway_payload(self, conn: _GatewayConnection, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if not isinstance(op, int):  # Discord closes with 4002 on a payload it cannot decode
            log.warning("fake discord: gateway payload without an integer op: %r", payload)
            await conn.ws.close(code=4002, message=b"Decode error.")
            return
        shard = conn.session.shard if conn.session else None
        self._gateway_in.add(GatewayMessage(op, d, time.monotonic(), shard=shard))
        if op == 1:  # HEARTBEAT
            await conn.send({"op": 11})
        elif op == 2:  # IDENTIFY
            await self._identify(conn, d or {})
        elif op == 3:  # PRESENCE_UPDATE
            self.presence = d
        elif op == 6:  # RESUME
            await self._resume(conn, d or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            await self._request_members(conn, d or {})
        elif op in (4, 31):  # voice state / soundboard request
            pass
        else:
            log.warning("fake discord: unhandled gateway op %s", op)

    async def _identify(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        token = d.get("token")
        if not token or (self.token is not None and token != self.token):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents", 0))
        if self.privileged_intents is not None and intents & PRIVILEGED_INTENTS & ~(
            self.privileged_intents
        ):
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = d.get("shard") or [0, 1]
        if not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(n, int) for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        sess = _GatewaySession(
            session_id=secrets.token_hex(16), intents=intents, identify=d, shard=list(shard)
        )
        self._sessions[sess.session_id] = sess
        self._session = sess
        self._shard_sessions[sess.shard_id] = sess
        conn.session = sess
        sess.connection = conn
        self._ready.clear()
        user = self.bot_user.to_payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None})
        guilds = [g for g in self.guilds if sess.holds(g.id)]
        await self._send_event(
            sess,
            "READY",
            {
                "v": 10,
                "user": user,
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": sess.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.resume_gateway_url,
                "shard": sess.shard,
                "application": {"id": str(self.application_id), "flags": self.application_flags},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["fake"],
                "_trace": ["fake-discord"],
            },
        )
        if intents & INTENT_GUILDS:  # without it Discord never sends GUILD_CREATE
            for guild in guilds:
                await self._send_event(sess, "GUILD_CREATE", guild.to_gateway_payload())
        self._ready.set()

    async def _resume(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        sess = self._sessions.get(str(d.get("session_id")))
        if sess is None or (self.token is not None and d.get("token") != self.token):
            await conn.send({"op": 9, "d": False})
            return
        seq = int(d.get("seq") or 0)
        async with sess.lock:
            for event in sess.events:
                if event["s"] > seq:
                    await conn.send(event)
            old = sess.connection
            sess.connection = conn
            conn.session = sess
        if old is not None and old is not conn and not old.closed:
            await old.ws.close(code=4000)
        self._session = sess
        await self._send_event(sess, "RESUMED", {"_trace": ["fake-discord"]})
        self._ready.set()

    async def _request_members(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        guild = self._guild(str(d.get("guild_id")))
        if guild is None or conn.session is None:
            return
        members = guild.members
        if d.get("user_ids"):
            wanted = {int(u) for u in d["user_ids"]}
            members = [m for m in members if m.user.id in wanted]
        elif d.get("query"):
            members = [m for m in members if m.user.username.startswith(d["query"])]
        if d.get("limit"):
            members = members[: int(d["limit"])]
        data: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce"):
            data["nonce"] = d["nonce"]
        await self._send_event(conn.session, "GUILD_MEMBERS_CHUNK", data)

    def _session_for(self, guild_id: int | None) -> _GatewaySession | None:
        """The latest session holding ``guild_id``'s shard (the DMs' for None), if any."""
        if self._session is None:
            return None
        target = shard_for(guild_id, self._session.shard_count)
        return self._shard_sessions.get(target)

    async def dispatch(self, event: str, data: Any, *, shard_id: int | None = None) -> int:
        """Send a DISPATCH (op 0) with the next sequence number; returns that number.

        It goes to the session of ``shard_id`` if given, else of the shard of the event's
        server (``guild_id``, or ``id`` for GUILD_* events; shard 0 without one), as Discord
        routes events. Events sent while that client is disconnected are kept and replayed on
        RESUME.
        """
        if shard_id is None:
            return await self._send_event(self._receiver(_event_guild_id(event, data)), event, data)
        sess = self._shard_sessions.get(shard_id)
        if sess is None:
            raise RuntimeError(f"no client identified as shard {shard_id}")
        return await self._send_event(sess, event, data)

    def _receiver(self, guild_id: int | None) -> _GatewaySession:
        """The session Discord would send ``guild_id``'s events to; an error when there is none."""
        if self._session is None:
            raise RuntimeError("no client has identified with the fake gateway yet")
        sess = self._session_for(guild_id)
        if sess is None:
            count = self._session.shard_count
            raise RuntimeError(
                f"no client holds shard {shard_for(guild_id, count)} of {count}, which server "
                f"{guild_id} is on (connected: {sorted(self._shard_sessions)})"
            )
        return sess

    async def _send_event(self, sess: _GatewaySession, event: str, data: Any) -> int:
        async with sess.lock:
            sess.seq += 1
            payload = {"op": 0, "t": event, "s": sess.seq, "d": data}
            sess.events.append(payload)
            self._gateway_out.add(
                GatewayMessage(0, data, time.monotonic(), event, sess.seq, shard=list(sess.shard))
            )
            if sess.connection is not None and not sess.connection.closed:
                await sess.connection.send(payload)
            return sess.seq

    async def send_reconnect(self) -> None:
        """Op 7 RECONNECT: discord.py closes and RESUMEs on ``resume_gateway_url``."""
        conn = self._current_connection()
        await conn.send({"op": 7, "d": None})

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION.

        Beware: discord.py sleeps 5 s before a non-initial IDENTIFY (``before_identify_hook``).
        """
        conn = self._current_connection()
        if not resumable and self._session is not None:
            self._sessions.pop(self._session.session_id, None)
        await conn.send({"op": 9, "d": resumable})

    async def disconnect(self, code: int = 4000) -> None:
        """Close the gateway socket server-side (the client reconnects and RESUMEs)."""
        conn = self._current_connection()
        self._ready.clear()
        await conn.ws.close(code=code, message=b"fake disconnect")

    def _current_connection(self) -> _GatewayConnection:
        if self._session is None or self._session.connection is None:
            raise RuntimeError("no client is connected to the fake gateway")
        return self._session.connection

    # ---- driving: interactions -------------------------------------------------------------

    def _resolve_guild(self, guild_id: int | None, dm: bool) -> FakeGuild | None:
        if dm:
            return None
        if guild_id is None:
            return self.guilds[0]
        guild = self._guild(str(guild_id))
        if guild is None:
            raise ValueError(f"unknown guild {guild_id}; configured: {[g.id for g in self.guilds]}")
        return guild

    def _invoker(self, user_id: int, user_name: str | None) -> FakeUser:
        user = self._users.get(user_id)
        if user is None:
            user = self.add_user(FakeUser(user_id, user_name or f"user{user_id % 10000}"))
        elif user_name is not None and user.username != user_name:
            user = self.add_user(FakeUser(user_id, user_name, user.bot, user.global_name))
        return user

    async def _send_interaction_payload(
        self,
        *,
        itype: int,
        data: dict[str, Any],
        guild: FakeGuild | None,
        channel_id: int | None,
        user: FakeUser,
        roles: Sequence[int] | None,
        permissions: str | int | discord.Permissions | None,
        app_permissions: str | int | discord.Permissions | None,
        locale: str,
        message: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        if self._session is None:
            await self.wait_until_ready()
        iid = self.new_id()
        token = f"fake-ix-{secrets.token_urlsafe(24)}"
        if guild is not None:
            cid = channel_id or next(c.id for c in guild.channels if c.type in (0, 5))
            ch = guild.channel(cid)
            if ch is None:
                raise ValueError(f"channel {cid} is not in guild {guild.id}")
            channel = ch.to_payload(guild.id, guild.channels.index(ch))
        else:
            cid = channel_id or self._dm_channel_for(user.id)
            self._dm_channels.setdefault(cid, user.id)
            channel = self._dm_channel_payload(cid)
        if app_permissions is None:
            app_perms = guild.permissions_for(self.bot_user.id) if guild else BOT_PERMISSIONS
        else:
            app_perms = _perm_value(app_permissions)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "channel": channel,
            "channel_id": str(cid),
            "token": token,
            "version": 1,
            "app_permissions": str(app_perms),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild is not None:
            member = guild.member(user.id)
            role_ids = list(roles) if roles is not None else (member.roles if member else [])
            if permissions is None:
                perms = guild.permissions_for(user.id, role_ids)
            else:
                perms = _perm_value(permissions)
            fm = FakeMember(user, role_ids, member.nick if member else None)
            if member is not None:
                fm.joined_at = member.joined_at
            member_payload = fm.to_payload()
            member_payload["permissions"] = str(perms)
            payload.update(
                {
                    "guild_id": str(guild.id),
                    "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                    "guild_locale": "en-US",
                    "member": member_payload,
                    "authorizing_integration_owners": {"0": str(guild.id)},
                    "context": 0,
                }
            )
        else:
            payload.update(
                {
                    "user": user.to_payload(),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = message
        ix = FakeInteraction(
            id=iid,
            token=token,
            type=itype,
            application_id=self.application_id,
            guild_id=guild.id if guild else None,
            channel_id=cid,
            user_id=user.id,
            payload=payload,
            dispatched_at=time.monotonic(),
        )
        self.interactions[iid] = ix
        self._interactions_by_token[token] = ix
        await self.dispatch("INTERACTION_CREATE", payload)
        return ix

    def _lookup_command(
        self, name: str, guild: FakeGuild | None, ctype: int
    ) -> tuple[dict[str, Any] | None, int | None]:
        """(command definition, guild id it was registered to) — guild commands win."""
        if guild is not None:
            for cmd in self.guild_commands.get(guild.id, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd, guild.id
        for cmd in self.global_commands:
            if cmd["name"] == name and cmd.get("type", 1) == ctype:
                return cmd, None
        return None, None

    def _command_id(self, cmd: Mapping[str, Any] | None, name: str, ctype: int) -> str:
        """The synced command's id; an unsynced one still gets a stable id (reused if it is
        synced later)."""
        if cmd is not None:
            return str(cmd["id"])
        key = (None, name, ctype)
        if key not in self._command_ids:
            self._command_ids[key] = self.new_id()
        return str(self._command_ids[key])

    def _command_data(
        self,
        command: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        guild: FakeGuild | None,
        *,
        focused: str | None,
        require_synced: bool | None,
        user_id: int,
        permissions: int | None,
        enforce_permissions: bool | None,
    ) -> dict[str, Any]:
        name, *path = command.split()
        cmd, registered_guild = self._lookup_command(name, guild, 1)
        if require_synced is None:
            require_synced = self.require_synced_commands
        if cmd is None and require_synced:
            synced = sorted(self.commands()) + sorted(
                self.commands(guild.id) if guild is not None else []
            )
            raise CommandNotAvailable(f"/{name} was never synced; synced commands: {synced}")
        if cmd is not None:
            enforce = (
                self.enforce_default_permissions
                if enforce_permissions is None
                else enforce_permissions
            )
            required = cmd.get("default_member_permissions")
            if (
                enforce
                and required is not None
                and permissions is not None
                and int(required) & ~permissions
                and not permissions & ADMINISTRATOR
            ):
                raise CommandNotAvailable(
                    f"user {user_id} lacks default_member_permissions={required} for /{name}"
                )
            if guild is None and cmd.get("contexts") is not None and 1 not in cmd["contexts"]:
                raise CommandNotAvailable(f"/{name} is not available in DMs")
        data: dict[str, Any] = {"id": self._command_id(cmd, name, 1), "name": name, "type": 1}
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        resolved: dict[str, dict[str, Any]] = {}
        leaf_defs = _option_defs(cmd, path)
        if options is None:
            leaf: list[dict[str, Any]] = []
        elif isinstance(options, Mapping):
            leaf = [
                self._make_option(k, v, leaf_defs, guild, resolved, focused == k)
                for k, v in options.items()
            ]
            if cmd is not None and focused is None:
                missing = [
                    d["name"]
                    for d in (leaf_defs or [])
                    if d.get("required") and d["name"] not in options
                ]
                if missing:
                    raise ValueError(f"/{command}: missing required option(s) {missing}")
        else:
            leaf = [dict(o) for o in options]
            for o in leaf:
                if focused == o.get("name"):
                    o["focused"] = True
        # Wrap the leaf options in their subcommand / subcommand group.
        opts = leaf
        if path:
            for depth, seg in reversed(list(enumerate(path))):
                kind = 1 if depth == len(path) - 1 else 2
                opts = [{"name": seg, "type": kind, "options": opts}]
        data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        return data

    def _make_option(
        self,
        name: str,
        value: Any,
        defs: list[dict[str, Any]] | None,
        guild: FakeGuild | None,
        resolved: dict[str, dict[str, Any]],
        focused: bool,
    ) -> dict[str, Any]:
        opt_def = next((d for d in defs or [] if d["name"] == name), None)
        if defs is not None and opt_def is None:
            known = [d["name"] for d in defs]
            raise ValueError(f"unknown option {name!r}; the synced command has {known}")
        if opt_def is not None:
            otype = opt_def["type"]
        elif isinstance(value, bool):
            otype = 5
        elif isinstance(value, int):
            otype = 4
        elif isinstance(value, float):
            otype = 10
        elif isinstance(value, FakeUser):
            otype = 6
        elif isinstance(value, FakeRole):
            otype = 8
        elif isinstance(value, FakeChannel):
            otype = 7
        else:
            otype = 3
        if otype in (6, 7, 8, 9, 11):
            sid = str(getattr(value, "id", value))
            self._resolve(otype, int(sid), guild, resolved)
            value = sid
        opt: dict[str, Any] = {"name": name, "type": otype, "value": value}
        if focused:
            opt["focused"] = True
            opt["value"] = str(value) if otype == 3 else value
        return opt

    def _resolve(
        self, otype: int, sid: int, guild: FakeGuild | None, resolved: dict[str, dict[str, Any]]
    ) -> None:
        if otype in (6, 9) and sid in self._users:
            resolved.setdefault("users", {})[str(sid)] = self._users[sid].to_payload()
            member = guild.member(sid) if guild else None
            if member is not None:
                mp = member.to_payload(with_user=False)
                mp["permissions"] = str(guild.permissions_for(sid)) if guild else "0"
                resolved.setdefault("members", {})[str(sid)] = mp
        if otype in (8, 9) and guild is not None and (role := guild.role(sid)) is not None:
            resolved.setdefault("roles", {})[str(sid)] = role.to_payload()
        if otype == 7 and guild is not None and (ch := guild.channel(sid)) is not None:
            cp = ch.to_payload(guild.id, guild.channels.index(ch))
            cp["permissions"] = str(guild.permissions_for(self.bot_user.id))
            resolved.setdefault("channels", {})[str(sid)] = cp

    async def send_interaction(
        self,
        command: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int = USER_ID,
        user_name: str | None = None,
        permissions: str | int | discord.Permissions | None = None,
        roles: Sequence[int] | None = None,
        app_permissions: str | int | discord.Permissions | None = None,
        locale: str = "en-US",
        dm: bool = False,
        require_synced: bool | None = None,
        enforce_permissions: bool | None = None,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE type 2 (slash command) as a user would trigger it.

        ``command`` is ``"name"`` or ``"name sub"`` / ``"name group sub"`` for subcommands.
        ``options`` is either ``{name: value}`` (types come from the synced command definition,
        else are inferred from the Python type; FakeUser/FakeRole/FakeChannel or ids for
        snowflake options get ``resolved`` data) or a raw list of ``{name, type, value}`` dicts.
        ``permissions`` is the member's permission bitfield in the channel (default: computed
        from the guild's roles; pass ``"0"`` or ``str(MANAGE_GUILD)`` to test gating).
        The data carries the synced command's ``id`` (and ``guild_id`` when it was synced to
        the guild, which is how discord.py's CommandTree finds guild commands).

        Raises CommandNotAvailable when Discord wouldn't offer the command: never synced (with
        ``require_synced``), lacking ``default_member_permissions`` (with
        ``enforce_permissions``), or DM-disabled in a DM.
        """
        guild = self._resolve_guild(guild_id, dm)
        user = self._invoker(user_id, user_name)
        perm_value = self._member_perms(guild, user.id, roles, permissions)
        data = self._command_data(
            command,
            options,
            guild,
            focused=None,
            require_synced=require_synced,
            user_id=user.id,
            permissions=perm_value,
            enforce_permissions=enforce_permissions,
        )
        return await self._send_interaction_payload(
            itype=2,
            data=data,
            guild=guild,
            channel_id=channel_id,
            user=user,
            roles=roles,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
        )

    async def send_message_command(
        self,
        name: str,
        message_id: int | str,
        *,
        user_id: int = USER_ID,
        user_name: str | None = None,
        permissions: str | int | discord.Permissions | None = None,
        roles: Sequence[int] | None = None,
        app_permissions: str | int | discord.Permissions | None = None,
        locale: str = "en-US",
        require_synced: bool | None = None,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE type 2 for a message context-menu command (Apps → name).

        The message must be one sent through the fake (``send_message_create`` or the bot's);
        like Discord, the interaction carries it whole in ``data.resolved.messages``, content
        included, whatever the bot's intents. With ``require_synced`` the command must have
        been synced as a message command (type 3).
        """
        mid = int(message_id)
        message = self.messages.get(mid)
        if message is None:
            raise KeyError(f"message {mid} was not sent through the fake")
        guild, _ = self._find_channel(int(message["channel_id"]))
        user = self._invoker(user_id, user_name)
        cmd, registered_guild = self._lookup_command(name, guild, 3)
        if require_synced is None:
            require_synced = self.require_synced_commands
        if cmd is None and require_synced:
            raise CommandNotAvailable(f"message command {name!r} was never synced")
        resolved_message = dict(message)
        if guild is not None:
            resolved_message["guild_id"] = str(guild.id)
        data: dict[str, Any] = {
            "id": self._command_id(cmd, name, 3),
            "name": name,
            "type": 3,
            "target_id": str(mid),
            "resolved": {"messages": {str(mid): resolved_message}},
        }
        if registered_guild is not None:
            data["guild_id"] = str(registered_guild)
        return await self._send_interaction_payload(
            itype=2,
            data=data,
            guild=guild,
            channel_id=int(message["channel_id"]),
            user=user,
            roles=roles,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
        )

    async def send_autocomplete(
        self,
        command: str,
        focused: str,
        value: Any = "",
        options: Mapping[str, Any] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user_id: int = USER_ID,
        user_name: str | None = None,
        permissions: str | int | discord.Permissions | None = None,
        roles: Sequence[int] | None = None,
        locale: str = "en-US",
        dm: bool = False,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE type 4: the user is typing ``value`` into ``focused``.

        The answer is a callback of type 8 with ``data.choices`` (Discord rejects > 25).
        """
        guild = self._resolve_guild(guild_id, dm)
        user = self._invoker(user_id, user_name)
        opts = dict(options or {})
        opts[focused] = value
        data = self._command_data(
            command,
            opts,
            guild,
            focused=focused,
            require_synced=False,
            user_id=user.id,
            permissions=None,
            enforce_permissions=False,
        )
        return await self._send_interaction_payload(
            itype=4,
            data=data,
            guild=guild,
            channel_id=channel_id,
            user=user,
            roles=roles,
            permissions=permissions,
            app_permissions=None,
            locale=locale,
        )

    async def send_component_interaction(
        self,
        message_id: int | str,
        custom_id: str,
        *,
        component_type: int | None = None,
        values: Sequence[str] | None = None,
        user_id: int = USER_ID,
        user_name: str | None = None,
        permissions: str | int | discord.Permissions | None = None,
        roles: Sequence[int] | None = None,
        app_permissions: str | int | discord.Permissions | None = None,
        locale: str = "en-US",
        check_component: bool = True,
    ) -> FakeInteraction:
        """Dispatch INTERACTION_CREATE type 3: a click on button ``custom_id`` (or a select).

        The message must be one the bot sent through the fake (it is attached to the
        interaction, which is how discord.py finds the View). With ``check_component`` the
        component must exist on the message and not be disabled, as in the Discord UI.
        """
        mid = int(message_id)
        message = self.messages.get(mid)
        if message is None:
            raise KeyError(f"message {mid} was not sent through the fake")
        comp = next(
            (c for c in _walk_components(message["components"]) if c.get("custom_id") == custom_id),
            None,
        )
        if check_component:
            if comp is None:
                ids = [c.get("custom_id") for c in _walk_components(message["components"])]
                raise CommandNotAvailable(f"no component {custom_id!r} on message {mid}: {ids}")
            if comp.get("disabled"):
                raise CommandNotAvailable(f"component {custom_id!r} is disabled")
        ctype = component_type or (comp or {}).get("type", 2)
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": ctype}
        if values is not None or ctype in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        guild, _ = self._find_channel(int(message["channel_id"]))
        user = self._invoker(user_id, user_name)
        msg_payload = dict(message)
        return await self._send_interaction_payload(
            itype=3,
            data=data,
            guild=guild,
            channel_id=int(message["channel_id"]),
            user=user,
            roles=roles,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
            message=msg_payload,
        )

    def _member_perms(
        self,
        guild: FakeGuild | None,
        user_id: int,
        roles: Sequence[int] | None,
        permissions: str | int | discord.Permissions | None,
    ) -> int | None:
        if permissions is not None:
            return _perm_value(permissions)
        if guild is None:
            return None
        return guild.permissions_for(user_id, roles)

    # ---- driving: messages -----------------------------------------------------------------

    async def send_message_create(
        self,
        content: str,
        *,
        channel_id: int | None = None,
        guild_id: int | None = None,
        author_id: int = USER_ID,
        author_name: str | None = None,
        author_bot: bool = False,
        mentions: Sequence[int | FakeUser] = (),
        dm: bool = False,
        reply_to: int | str | None = None,
        embeds: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE for a message a user posted; returns the message payload.

        ``<@id>`` in ``content`` becomes a mention (plus any ``mentions`` ids); use
        ``fake.bot_mention``. Like Discord: nothing is dispatched without the GUILD_MESSAGES
        (DIRECT_MESSAGES for ``dm``) intent (see ``dropped_events``), and without
        MESSAGE_CONTENT the content/embeds/attachments/components arrive empty unless it is a DM
        or mentions the bot.
        """
        if self._session is None:
            await self.wait_until_ready()
        author = self._invoker(author_id, author_name)
        if author_bot and not author.bot:
            author = self.add_user(FakeUser(author.id, author.username, True, author.global_name))
        guild = self._resolve_guild(guild_id, dm)
        if guild is not None:
            cid = channel_id or next(c.id for c in guild.channels if c.type in (0, 5))
            if guild.channel(cid) is None:
                raise ValueError(f"channel {cid} is not in guild {guild.id}")
        else:
            cid = channel_id or self._dm_channel_for(author.id)
            self._dm_channels.setdefault(cid, author.id)
        data: dict[str, Any] = {"content": content, "embeds": list(embeds)}
        if reply_to is not None:
            data["message_reference"] = {"message_id": str(reply_to)}
        message = self._create_message(cid, data, [], author=author)
        for m in mentions:  # extra mentions (e.g. a reply ping) not written into the content
            uid = m.id if isinstance(m, FakeUser) else int(m)
            if all(u["id"] != str(uid) for u in message["mentions"]) and uid in self._users:
                message["mentions"].append(self._users[uid].to_payload())
        event = dict(message)
        if guild is not None:
            event["guild_id"] = str(guild.id)
            member = guild.member(author.id)
            event["member"] = (member or FakeMember(author)).to_payload(with_user=False)
        receiver = self._receiver(guild.id if guild else None)
        if not self._message_intent_ok(guild):
            self.dropped_events.append({"t": "MESSAGE_CREATE", "d": event})
            log.info("fake discord: MESSAGE_CREATE dropped, client lacks the message intent")
            return message
        mentions_bot = any(u["id"] == str(self.bot_user.id) for u in message["mentions"])
        if (
            guild is not None
            and not receiver.intents & INTENT_MESSAGE_CONTENT
            and not mentions_bot
            and author.id != self.bot_user.id
        ):
            event.update(content="", embeds=[], attachments=[], components=[])
        await self.dispatch("MESSAGE_CREATE", event)
        return message


# --------------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------------


def _event_guild_id(event: str, data: Any) -> int | None:
    """The server an event belongs to, which decides its shard (None: a DM or no server)."""
    if not isinstance(data, Mapping):
        return None
    raw = data.get("id") if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE") else None
    raw = raw or data.get("guild_id")
    return int(raw) if raw else None


def _perm_value(value: str | int | discord.Permissions) -> int:
    if isinstance(value, discord.Permissions):
        return value.value
    return int(value)


def _walk_components(components: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for comp in components or []:
        if not isinstance(comp, dict):
            continue
        yield comp
        yield from _walk_components(comp.get("components") or [])
        if isinstance(comp.get("accessory"), dict):
            yield comp["accessory"]


def _option_defs(cmd: Mapping[str, Any] | None, path: Sequence[str]) -> list[dict[str, Any]] | None:
    """Option definitions of the (sub)command at ``path``, or None if unknown."""
    if cmd is None:
        return None
    defs: list[dict[str, Any]] = list(cmd.get("options") or [])
    for seg in path:
        node = next((d for d in defs if d["name"] == seg and d.get("type") in (1, 2)), None)
        if node is None:
            raise ValueError(f"/{cmd['name']} has no subcommand (group) {seg!r}")
        defs = list(node.get("options") or [])
    return defs


@contextlib.contextmanager
def patch_discord(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Point discord.py's ``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` at ``fake``."""
    with fake.patch():
        yield fake


@contextlib.asynccontextmanager
async def run_client(
    client: discord.Client,
    fake: FakeDiscord,
    *,
    token: str | None = None,
    ready_timeout: float = 10.0,
    guild_ready_timeout: float | None = 0.05,
) -> AsyncIterator[discord.Client]:
    """Run ``client.start()`` against ``fake`` until it is ready; close it cleanly on exit.

    discord.py holds ``on_ready`` back until no GUILD_CREATE arrived for
    ``guild_ready_timeout`` seconds (2 s by default); this sets the client's (private)
    ``_connection.guild_ready_timeout`` so tests don't pay that, unless passed ``None``.
    """
    if guild_ready_timeout is not None:
        client._connection.guild_ready_timeout = guild_ready_timeout
    task = asyncio.create_task(client.start(token or fake.token or "fake-token"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ready_timeout
    try:
        while not client.is_ready():
            if task.done():
                task.result()  # raises the client's error (LoginFailure, PrivilegedIntents...)
                raise RuntimeError("client.start() returned before the client became ready")
            if loop.time() > deadline:
                raise TimeoutError(
                    f"client not ready within {ready_timeout}s; requests:\n"
                    + fake.describe_requests()
                )
            await asyncio.sleep(0.01)
        yield client
    finally:
        await client.close()
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            log.warning("client.start() did not return after close()")
        except Exception:  # the error (if any) was already surfaced above
            if task.done() and not task.cancelled():
                log.debug("client task ended with %r", task.exception())


def label_client(client: discord.Client, name: str) -> None:
    """Mark every HTTP request of ``client`` (REST and interaction webhooks) with ``name``.

    With several clients against one fake (shards in different processes), a request's
    ``client`` then says which one sent it. Call it before the client logs in: it sets
    discord.py's own ``http_trace`` option, which the login reads.
    """

    async def mark(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        params.headers[CLIENT_LABEL_HEADER] = name

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(mark)
    client.http.http_trace = trace


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started, patched FakeDiscord with the default world (one guild, #general, alice)."""
    async with FakeDiscord() as fake:
        yield fake
        assert not fake.errors, f"fake discord internal errors: {fake.errors}"
