"""Every setting in one typed object, read from the environment and ``.env``.

Built by :func:`get_settings` rather than at import time, so tests and tools can make their own.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.answer import DEFAULT_MIN_COVERAGE, DEFAULT_MIN_SCORE
from index.embedder import DEFAULT_BACKEND, DEFAULT_MODEL, Backend
from index.vectors import IndexKind
from ingest.errors import InputError
from ingest.fetch import DEFAULT_SOURCE_DEADLINE_SECONDS, FetchPolicy

PREFIX = "NEWSBOT_"
ENV_FILE = ".env"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Read by the test suite, not by newsbot: not a misspelt setting.
NOT_SETTINGS = ("NEWSBOT_TEST_",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        # `cp .env.example .env` leaves "NEWSBOT_ADMIN_ROLE_ID=": empty means not set.
        env_ignore_empty=True,
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    model: str = DEFAULT_MODEL
    embedding_backend: Backend = DEFAULT_BACKEND
    # Vector search: "exact", "ivf" (approximate, trained on the corpus), or "auto" by size.
    index_type: IndexKind = "auto"
    # Days of the passage change log kept: an index (a replica) further behind than this
    # compares itself with the whole database once instead of reading the log.
    change_log_days: float = Field(default=30.0, gt=0)
    # The answerability model's probability that the index answers the question.
    min_score: float = Field(default=DEFAULT_MIN_SCORE, ge=0.0, le=1.0)
    min_coverage: float = Field(default=DEFAULT_MIN_COVERAGE, ge=0.0, le=1.0)
    answer_passages: int = Field(default=3, ge=1, le=10)
    # Quotes after the first only when relevant in their own right (index/answer.py's bars);
    # off: every answer fills its pages with the next best passages, related or not.
    related_quotes_only: bool = True
    log_level: str = "INFO"

    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN")
    )
    discord_test_guild: int | None = None
    moderator_role_id: int | None = None
    admin_role_id: int | None = None
    ask_cooldown_seconds: float = Field(default=10.0, ge=0)
    max_question_chars: int = Field(default=500, ge=10, le=500)
    # Answer follow-ups in threads without an @mention; needs the privileged Message Content
    # intent switched on in the developer portal (mentions and replies work without it).
    message_content_intent: bool = False
    # Several processes split the servers between them: each runs discord.py's AutoShardedBot
    # with this shard count and its own shard ids (all of them when no ids are given).
    shard_count: int | None = Field(default=None, ge=1)
    # Comma-separated ("0,1"), read as text rather than pydantic-settings' JSON for lists.
    shard_ids: Annotated[list[int] | None, NoDecode] = None

    # "inline": this process fetches and embeds (the default, any database). "queue": on
    # PostgreSQL, `newsbot worker` processes do that through a job queue, and `newsbot run`
    # only answers (README: Running on several machines).
    jobs: Literal["inline", "queue"] = "inline"
    # Jobs one worker process runs at once.
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    # A worker silent this long is taken for dead and its jobs are given to another.
    worker_stalled_seconds: float = Field(default=30.0, ge=2)
    # On SIGTERM a worker takes no new job and gives its running ones this long to finish;
    # the jobs still running then are stopped and queued again, for another worker.
    worker_shutdown_seconds: float = Field(default=60.0, ge=0)

    refresh_minutes: float = Field(default=30.0, gt=0)
    fetch_allow_hosts: str = ""
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    source_deadline_seconds: float = Field(default=DEFAULT_SOURCE_DEADLINE_SECONDS, gt=0)
    # Posts one /follow makes in an hour at most; past it, one "N more" message is updated.
    follow_hourly_cap: int = Field(default=6, ge=1, le=60)

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()] or None
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shard_ids_within_count(
        cls, ids: list[int] | None, info: ValidationInfo
    ) -> list[int] | None:
        if ids is None:
            return None
        if "shard_count" not in info.data:  # the count is malformed, and reported as such
            return ids
        count = info.data["shard_count"]
        if count is None:
            raise ValueError("shard ids need NEWSBOT_SHARD_COUNT (the total number of shards)")
        if any(not 0 <= i < count for i in ids):
            raise ValueError(
                f"shard ids run from 0 to {count - 1} with NEWSBOT_SHARD_COUNT={count}"
            )
        if len(set(ids)) != len(ids):
            raise ValueError("a shard id is listed twice")
        return sorted(ids)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def queued(self) -> bool:
        """Whether workers fetch and embed (``NEWSBOT_JOBS=queue``), not this process."""
        return self.jobs == "queue"

    @property
    def resolved_database_url(self) -> str:
        from ingest.db import default_database_url

        return self.database_url or default_database_url(self.data_dir)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def fetch_policy(self) -> FetchPolicy:
        """The fetch limits (``InputError`` when the allow-list is malformed)."""
        try:
            return FetchPolicy(
                timeout=self.fetch_timeout_seconds,
                max_bytes=self.fetch_max_bytes,
                allow_hosts=self.allow_hosts,
            )
        except ValueError as error:
            raise InputError(f"NEWSBOT_FETCH_ALLOW_HOSTS: {error}") from None

    @property
    def allow_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.fetch_allow_hosts.split(",") if h.strip())


def get_settings(**overrides: object) -> Settings:
    """The settings, or an ``InputError`` naming each bad variable and what it must be."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{_variable(problem['loc'])}={problem['input']!r}: "
            + problem["msg"].removeprefix("Value error, ")
            for problem in error.errors()
        )
        raise InputError(f"bad setting: {problems}") from None


def _variable(location: tuple[int | str, ...]) -> str:
    return f"NEWSBOT_{str(location[0]).upper()}" if location else "a setting"


def setting_names() -> list[str]:
    """Every variable newsbot reads, as it is spelt in the environment or ``.env``."""
    names = [PREFIX + name.upper() for name in Settings.model_fields]
    return [*names, "DISCORD_TOKEN"]


def misspelt_settings(
    env_file: Path | None = Path(ENV_FILE), environ: Mapping[str, str] | None = None
) -> list[str]:
    """A warning for each ``NEWSBOT_*`` variable that is no setting, naming the nearest one.

    pydantic-settings ignores unknown variables silently; a typo would then leave a setting at
    its default without a word.
    """
    found = list(os.environ if environ is None else environ)
    if env_file is not None and env_file.is_file():
        found += [key for key in dotenv_values(env_file) if key]
    known = setting_names()
    warnings = []
    for key in dict.fromkeys(found):
        upper = key.upper()
        if not upper.startswith(PREFIX) or upper in known or upper.startswith(NOT_SETTINGS):
            continue
        nearest = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {nearest[0]}?" if nearest else " (see .env.example)"
        warnings.append(f"{key} is not a newsbot setting and is ignored{hint}")
    return warnings
