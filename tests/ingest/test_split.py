"""Splitting paragraphs into passages that fit a Discord embed field."""

from __future__ import annotations

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
