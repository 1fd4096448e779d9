"""Reading a message's claim, and checking it against a server's news (real index)."""

from __future__ import annotations

import pytest

from bot.resources import Resources
from bot.services import Services
from bot.services.check import NO_TEXT, Claim, read_claim
from ingest.errors import InputError
from tests.bot.conftest import GUILD_A, GUILD_B


def test_links_mentions_and_emoji_are_stripped_and_links_kept() -> None:
    """The text loses Discord markup and links; the links are listed, in order, once."""
    claim = read_claim(
        "<@123> says @everyone the ferry is 12% dearer <:sad:456789> "
        "https://news.example/ferry. see <https://news.example/ferry> and <#789> <t:1700000000:R>"
    )
    assert claim == Claim("says the ferry is 12% dearer see and", ("https://news.example/ferry",))


def test_a_masked_link_keeps_its_words_and_gives_its_link() -> None:
    """ "[fares rise](url)", as webhooks and bots write links: the words stay, the link counts."""
    claim = read_claim("Told you: [ferry fares rise](https://news.example/ferry) in July")
    assert claim == Claim("Told you: ferry fares rise in July", ("https://news.example/ferry",))


def test_only_the_first_500_characters_are_read_cut_between_words() -> None:
    """A long message is cut to 500 characters at a word boundary."""
    claim = read_claim("harbour " * 100)
    assert len(claim.text) <= 500
    assert claim.text.endswith("harbour")


def test_a_post_of_embeds_only_is_read_from_its_embeds() -> None:
    """A feed bot's embed: its title and description are the text, its URL a link."""
    claim = read_claim("", [("Ferry fares to rise", "By 12 percent", "https://news.example/ferry")])
    assert claim == Claim("Ferry fares to rise By 12 percent", ("https://news.example/ferry",))


def test_no_text_and_no_link_is_refused() -> None:
    """Mentions alone are no claim."""
    with pytest.raises(InputError, match=NO_TEXT):
        read_claim("<@123> <@&456>   ")


@pytest.mark.slow
async def test_linked_article_is_found_only_among_the_servers_sources(news: Resources) -> None:
    """Server A's article is linked in A; in B the same link names nothing."""
    checks = Services.create(news).check
    claim = read_claim("the harbour wall was repaired https://NEWS.example/lanterns#top")

    in_a = await checks.check(claim, GUILD_A)
    in_b = await checks.check(claim, GUILD_B)

    assert in_a.linked is not None
    assert in_a.linked.title == "Lantern festival moves to the harbour"
    assert in_a.linked.highlight.startswith("Councillor Mira Okafor said the harbour wall")
    assert in_a.linked.passage_id not in [q.passage_id for q in in_a.answer.passages]
    assert in_b.linked is None
