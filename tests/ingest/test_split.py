"""Splitting paragraphs into passages that fit a Discord embed field."""

from __future__ import annotations

from ingest.clean import normalize
from ingest.split import MAX_PASSAGE_CHARS, sentence_spans, split_passages, split_sentences


def test_short_paragraphs_merge_with_neighbours() -> None:
    """Several one-line paragraphs become one passage, joined by blank lines."""
    paragraphs = ["First short paragraph here.", "Second one.", "Third one."]
    assert split_passages(paragraphs) == ["\n\n".join(paragraphs)]


def test_long_paragraph_splits_at_sentence_boundaries() -> None:
    """A paragraph over the limit is cut between sentences, never inside one."""
    sentence = "The council met on Tuesday to discuss the new tram line and its cost. "
    paragraph = (sentence * 40).strip()
    passages = split_passages([paragraph])
    assert len(passages) > 1
    assert all(len(p) <= MAX_PASSAGE_CHARS for p in passages)
    assert all(p.endswith("cost.") for p in passages)
    assert " ".join(passages) == paragraph


def test_single_giant_sentence_splits_at_words() -> None:
    """Even one 3,000-character sentence yields passages within the limit."""
    passages = split_passages(["word " * 600])
    assert all(len(p) <= MAX_PASSAGE_CHARS for p in passages)
    assert sum(len(p.split()) for p in passages) == 600


def test_every_passage_fits_and_text_is_preserved() -> None:
    """Passages of mixed paragraphs stay within 1,000 characters and keep every paragraph."""
    paragraphs = [f"Sentence number {i} is here. " * (i % 9 + 1) for i in range(60)]
    paragraphs = [p.strip() for p in paragraphs]
    passages = split_passages(paragraphs)
    assert all(len(p) <= MAX_PASSAGE_CHARS for p in passages)
    assert "\n\n".join(passages).split("\n\n") == paragraphs


def test_sentences_keep_abbreviations_whole() -> None:
    """ "U.S. President" does not end a sentence."""
    text = "The U.S. President spoke on Monday. He said “we will act.” Talks resume soon."
    assert split_sentences(text) == [
        "The U.S. President spoke on Monday.",
        "He said “we will act.”",
        "Talks resume soon.",
    ]


ARTICLE = "The council met on Monday. Residents packed the hall.\n\nThe mayor spoke first."


def test_sentences_are_verbatim_slices() -> None:
    """Each span slices one sentence; paragraph breaks end sentences too."""
    spans = sentence_spans(ARTICLE)
    assert [ARTICLE[a:b] for a, b in spans] == [
        "The council met on Monday.",
        "Residents packed the hall.",
        "The mayor spoke first.",
    ]


CHINESE = (
    "市议会周二批准了新的有轨电车线路。工程将于明年春天开始，预计耗时两年！"
    "市长说：“这是好消息。”居民们怎么看？"
)


def test_chinese_sentences_end_at_full_width_stops() -> None:
    """。！？ end sentences without a space after them; closing quotes stay with theirs."""
    assert split_sentences(CHINESE) == [
        "市议会周二批准了新的有轨电车线路。",
        "工程将于明年春天开始，预计耗时两年！",
        "市长说：“这是好消息。”",
        "居民们怎么看？",
    ]


def test_long_chinese_paragraph_splits_between_sentences_verbatim() -> None:
    """A Chinese paragraph over the limit is cut between sentences, with no spaces added."""
    assert len(split_sentences(normalize(CHINESE))) == 4  # as cleaning gives it: "!" not "！"
    paragraph = CHINESE * 30
    passages = split_passages([paragraph])
    assert len(passages) > 1 and all(len(p) <= MAX_PASSAGE_CHARS for p in passages)
    assert "".join(passages) == paragraph


def test_a_megabyte_without_spaces_is_cut_at_the_limit_not_dropped() -> None:
    """A 1 MB run with no space or stop is kept whole, in passages of the maximum size."""
    run = "abcdefghij" * 100_000
    passages = split_passages([run])
    assert "".join(passages) == run
    assert {len(p) for p in passages} == {MAX_PASSAGE_CHARS}


def test_hindi_and_russian_sentences_are_split() -> None:
    """The danda ends a Hindi sentence; Cyrillic sentences split like Latin ones."""
    assert split_sentences("परिषद ने मतदान किया। काम जल्द शुरू होगा।") == [
        "परिषद ने मतदान किया।",
        "काम जल्द शुरू होगा।",
    ]
    assert split_sentences("Совет проголосовал. Работы начнутся весной.") == [
        "Совет проголосовал.",
        "Работы начнутся весной.",
    ]
