"""/reindex through the real client: moderators only, one progress message, one run at a time."""

from __future__ import annotations

import pytest

from bot.app import NewsBot
from bot.resources import Resources
from tests.bot.conftest import EPHEMERAL, MODERATOR_ROLE
from tests.bot.services.test_reindex import Gate
from tests.fakes.discord_server import MANAGE_GUILD, OWNER_ID, FakeDiscord

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_members_without_permission_are_refused(fake: FakeDiscord, newsbot: NewsBot) -> None:
    """A member with neither Manage Server nor the moderator role gets a private refusal."""
    interaction = await fake.send_interaction("reindex", permissions="0")
    refusal = await fake.wait_for_callback(interaction)
    assert refusal.json["data"]["flags"] == EPHEMERAL
    assert refusal.json["data"]["content"] == (
        "Only members with the Manage Server permission or the server's moderator role "
        "can use this command."
    )
    assert not newsbot.services.reindex.running
    assert newsbot.services.reindex.current is None


async def test_a_moderator_sees_progress_then_the_report(
    fake: FakeDiscord, newsbot: NewsBot, news: Resources
) -> None:
    """One message shows progress, then counts and duration; a second request is told to wait."""
    cog = newsbot.get_cog("ReindexCog")
    assert cog is not None
    cog.edit_every = 0.05  # type: ignore[attr-defined]
    gate = Gate(news)
    try:
        started = await fake.send_interaction("reindex", roles=[MODERATOR_ROLE])
        first = await fake.wait_for_callback(started)
        assert first.json["type"] == 4
        assert not first.json["data"].get("flags")
        await gate.wait_entered()
        progress = await fake.wait_for_edit(started)
        assert progress.json["content"].startswith("Reindexing: 10 / 40 passages embedded (25%)")
        assert progress.json["allowed_mentions"] == {"parse": []}

        again = await fake.send_interaction(
            "reindex", permissions=str(MANAGE_GUILD), user_id=OWNER_ID
        )
        busy = await fake.wait_for_callback(again)
        assert busy.json["data"]["content"] == "A reindex is already running, 25% done."
        assert busy.json["data"]["flags"] == EPHEMERAL
    finally:
        gate.opened.set()
    done = await fake.wait_for(
        lambda r: (
            r.interaction is started
            and r.method == "PATCH"
            and r.json["content"].startswith("Reindex done")
        ),
        timeout=20,
    )
    assert done.json["content"].startswith("Reindex done: 7 passages in the index")
    edits = [r for r in fake.interaction_requests(started) if r.method == "PATCH"]
    assert len({r.json["content"] for r in edits}) == len(edits), "no edit repeats the last"
