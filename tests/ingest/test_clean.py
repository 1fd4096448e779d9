"""Cleaning scraped article text: page furniture out, real paragraphs in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.clean import boilerplate_hashes, candidate_paragraphs, normalize, paragraph_hash
from ingest.db import session_scope
from ingest.extract import parse_plain
from ingest.models import Passage
from ingest.store import get_or_create_source, store_articles

NOISY = Path(__file__).resolve().parent.parent / "fixtures" / "noisy"


def expectations() -> dict[str, dict[str, list[str]]]:
    """Keep/Remove lists per fixture file, parsed from EXPECTED.md."""
    text = (NOISY / "EXPECTED.md").read_text()
    result: dict[str, dict[str, list[str]]] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        name = block.splitlines()[0].strip()
        if not name.endswith(".txt"):
            continue
        sections = re.split(r"^### ", block, flags=re.M)
        lists = {
            s.splitlines()[0].strip(): re.findall(r"^- `(.*)`$", s, flags=re.M)
            for s in sections[1:]
        }
        result[name] = lists
    return result


EXPECTED = expectations()


def test_fixture_expectations_are_parsed() -> None:
    """Every noisy fixture has its keep and remove lists."""
    assert sorted(EXPECTED) == [f"kestrel_0{i}.txt" for i in range(1, 5)]
    assert all(lists["Keep"] and lists["Remove"] for lists in EXPECTED.values())


def _clean_all(engine) -> dict[str, list[str]]:
    articles = [parse_plain((NOISY / name).read_text(), NOISY / name) for name in sorted(EXPECTED)]
    with session_scope(engine) as session:
        source = get_or_create_source(session, "Kestrel Post", "local", "local:kestrel")
        store_articles(session, source, articles)
    with session_scope(engine) as session:
        passages = session.scalars(select(Passage).order_by(Passage.article_id, Passage.position))
        by_article: dict[int, list[str]] = {}
        for passage in passages:
            by_article.setdefault(passage.article_id, []).extend(passage.text.split("\n\n"))
    return dict(zip(sorted(EXPECTED), [by_article[i] for i in sorted(by_article)], strict=True))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_noisy_article_keeps_exactly_its_body_paragraphs(sqlite_engine, name: str) -> None:
    """Bylines, captions, teasers, bios and UI lines go; every real paragraph stays, in order."""
    paragraphs = _clean_all(sqlite_engine)[name]
    keep = EXPECTED[name]["Keep"]
    assert [" ".join(p.split()[:6]) for p in paragraphs] == keep
    body = "\n".join(paragraphs)
    for noise in EXPECTED[name]["Remove"]:
        assert noise not in body, noise


def test_title_skips_leading_furniture() -> None:
    """A "News Feed" line above the headline is not taken for the title."""
    article = parse_plain("News Feed\n\nMayor opens bridge\n\nThe mayor opened it.", Path("x.txt"))
    assert article.title == "Mayor opens bridge"


def test_short_real_sentence_survives() -> None:
    """A one-sentence paragraph of real news is not mistaken for a UI line."""
    body = "The Post could not independently verify these claims.\nShow More"
    assert candidate_paragraphs("Title", body) == [
        "The Post could not independently verify these claims."
    ]


def test_paragraph_repeated_across_independent_articles_is_boilerplate() -> None:
    """A bio shared by two stories is boilerplate; lines shared by two versions of one are not."""
    bio, a, b, c = (paragraph_hash(t) for t in ("bio", "story a", "story b", "story c"))
    independent = {1: {bio, a}, 2: {bio, b}}
    assert boilerplate_hashes(independent) == {bio}
    versions = {1: {a, b, c}, 2: {a, b, c, bio}}
    assert boilerplate_hashes(versions) == set()


def test_chinese_and_japanese_paragraphs_are_content() -> None:
    """Paragraphs without spaces that end in 。 are sentences, not page furniture."""
    chinese = "市议会周二批准了新的有轨电车线路。工程将于明年春天开始，预计耗时两年。"
    japanese = "市議会は火曜日、新しい路面電車の路線を承認した。工事は来年の春に始まる予定だ。"
    unpunctuated = "市议会周二批准了新的有轨电车线路工程将于明年春天开始预计耗时两年居民们表示欢迎"
    body = f"分享\n{chinese}\n{japanese}\n{unpunctuated}\n更多"
    expected = [normalize(p) for p in (chinese, japanese, unpunctuated)]  # NFKC: "，" is ","
    assert candidate_paragraphs("电车", body) == expected
