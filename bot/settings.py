"""Every setting in one typed object, read from the environment and ``.env``.

Built by :func:`get_settings` rather than at import time, so tests and tools can make their own.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.answer import DEFAULT_MIN_COVERAGE, DEFAULT_MIN_SCORE
from index.embedder import DEFAULT_BACKEND, DEFAULT_MODEL, Backend
from ingest.errors import InputError
from ingest.fetch import FetchPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    model: str = DEFAULT_MODEL
    embedding_backend: Backend = DEFAULT_BACKEND
    min_score: float = DEFAULT_MIN_SCORE
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

    refresh_minutes: float = Field(default=30.0, gt=0)
    fetch_allow_hosts: str = ""
    fetch_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)

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
            f"{_variable(problem['loc'])}={problem['input']!r}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InputError(f"bad setting: {problems}") from None


def _variable(location: tuple[int | str, ...]) -> str:
    return f"NEWSBOT_{str(location[0]).upper()}" if location else "a setting"
