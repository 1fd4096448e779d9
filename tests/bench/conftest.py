"""The bot tests' news in two servers, for scoring rankings against votes on it."""

from tests.bot.conftest import make_context, news  # noqa: F401 (fixtures)
