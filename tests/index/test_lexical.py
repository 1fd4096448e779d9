"""BM25 over passages: stemmed words, titles, segments with deletions, saved postings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from index.lexical import LexicalIndex, Postings, document_text, tokenize

DOCS = [
    (10, document_text("Council approves tram", "The Eastshore tram line was approved 9-4.")),
    (11, document_text("Wildfire contained", "Firefighters contained the Sorrel Ridge fire.")),
    (12, document_text("Port strike ends", "Dockworkers ratified a contract on Friday.")),
]


def best(index: LexicalIndex, query: str) -> int:
    return int(index.ids[int(np.argmax(index.scores(query)))])


def test_tokens_are_stemmed_and_stop_words_dropped() -> None:
    """ "Approves" and "approved" meet; "the" and one-letter words never count."""
    assert tokenize("The council approves") == tokenize("council approved")
    assert "the" not in tokenize("The a I tram")


def test_best_match_and_title_words_count() -> None:
    """The passage sharing the query's rare words scores highest, title words included."""
    index = LexicalIndex.build(DOCS)
    assert best(index, "Was the fire at Sorrel Ridge contained?") == 11
    assert best(index, "port strike") == 12  # only in the title


def test_coverage_counts_names_the_index_never_saw() -> None:
    """An unknown name lowers coverage; unknown question words ("what", "did") do not."""
    index = LexicalIndex.build(DOCS)
    rows = np.arange(len(DOCS))
    known = index.coverage("Was the Eastshore tram approved?", rows)
    assert known[0] == 1.0 and known[1] == 0.0
    asked = index.coverage("What did the council do about the Eastshore tram?", rows)
    assert asked[0] == 1.0
    missing = index.coverage("Was the Eastshore tram's Zephyrton depot approved?", rows)
    assert 0.0 < missing[0] < 0.7


def test_question_words_the_index_holds_do_not_lower_coverage() -> None:
    """ "What did X say about Y?" is covered by a passage naming X and Y, though few say "say"."""
    said = (13, document_text("Mayor on the tram", "What would you say about it, she asked."))
    index = LexicalIndex.build([*DOCS, said])
    coverage = index.coverage("What did the council say about the Eastshore tram?", np.arange(4))
    assert coverage[0] == 1.0


def test_a_question_of_question_words_alone_covers_nothing() -> None:
    """ "When?" has no key word, so no passage holds any: coverage 0, not NaN."""
    index = LexicalIndex.build(DOCS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coverage = index.coverage("When?", np.arange(len(DOCS)))
    assert coverage.tolist() == [0.0] * len(DOCS)


def test_unknown_words_score_nothing() -> None:
    """A query of words the corpus never uses gives all-zero scores, not an error."""
    index = LexicalIndex.build(DOCS)
    assert not index.scores("zyzzyva quokka").any()
    assert not LexicalIndex.empty().scores("tram").any()


def test_segments_with_deletions_score_as_one_index_of_the_live_passages() -> None:
    """Two postings, one row deleted: every score and coverage equals a fresh build's."""
    older = Postings.build([text for _, text in DOCS[:2]])
    newer = Postings.build([DOCS[2][1], "tram tram strike fire"])
    # Live rows: 11 (older row 1), 12 and 13 (newer rows 0 and 1); 10 is deleted.
    split = LexicalIndex(
        np.array([11, 12, 13]), [(older, np.array([-1, 0])), (newer, np.array([1, 2]))]
    )
    fresh = LexicalIndex.build([DOCS[1], DOCS[2], (13, "tram tram strike fire")])
    for query in ("dockworkers contract fire", "tram tram council", "Eastshore tram approved"):
        assert split.scores(query).tobytes() == fresh.scores(query).tobytes()
        rows = np.arange(3)
        assert split.coverage(query, rows).tobytes() == fresh.coverage(query, rows).tobytes()
    assert "eastshor" not in split.vocab and "dockwork" in split.vocab  # only in row 10


def test_saved_postings_load_memory_mapped_with_the_same_scores(tmp_path: Path) -> None:
    """Postings saved in a segment folder reload memory-mapped and score exactly as before."""
    postings = Postings.build([text for _, text in DOCS])
    postings.save(tmp_path)
    loaded = Postings.load(tmp_path)
    assert isinstance(loaded.rows, np.memmap)
    ids = np.array([pid for pid, _ in DOCS])
    rows = np.arange(len(DOCS))
    built, reread = LexicalIndex(ids, [(postings, rows)]), LexicalIndex(ids, [(loaded, rows)])
    question = "Which tram line was approved?"
    assert reread.scores(question).tobytes() == built.scores(question).tobytes()
    assert np.array_equal(reread.coverage(question, rows), built.coverage(question, rows))


def test_merged_postings_equal_postings_built_from_the_live_texts() -> None:
    """A merge keeps live rows only, renumbered, with the same words and counts."""
    texts = [text for _, text in DOCS]
    merged = Postings.merged(
        [(Postings.build(texts[:2]), np.array([1, -1])), (Postings.build(texts[2:]), np.array([0]))]
    )
    fresh = LexicalIndex.build([DOCS[2], DOCS[0]])
    again = LexicalIndex(fresh.ids, [(merged, np.arange(2))])
    for query in ("tram approved", "contract dockworkers friday", "fire"):
        assert again.scores(query).tobytes() == fresh.scores(query).tobytes()


def test_scores_are_bit_for_bit_the_ones_bm25s_computes() -> None:
    """Query-time BM25, same floats as bm25s's score matrix: repeated and unknown words."""
    import bm25s

    rng = np.random.default_rng(3)
    rows = [rng.integers(0, 300, int(rng.integers(1, 60))).tolist() for _ in range(500)]
    texts = [" ".join(f"w{token}x" for token in row) for row in rows]
    ours = LexicalIndex.build(list(enumerate(texts)))
    reference = bm25s.BM25()
    corpus = [tokenize(text) for text in texts]
    vocab = {word: i for i, word in enumerate(dict.fromkeys(w for doc in corpus for w in doc))}
    ids = [[vocab[w] for w in doc] for doc in corpus]
    reference.index((ids, vocab), show_progress=False)
    for query in ("w5x w17x w17x w250x", "w1x", "w299x w0x w12x w999x"):
        known = [vocab[w] for w in tokenize(query) if w in vocab]
        expected = np.asarray(reference.get_scores_from_ids(known), dtype=np.float32)
        assert ours.scores(query).tobytes() == expected.tobytes()


def test_postings_built_in_chunks_are_those_of_tokenize_on_every_text() -> None:
    """Each word stemmed once and counted in numpy chunk by chunk: the postings ``tokenize``
    gives text by text, words numbered in order of first appearance."""
    from collections import Counter

    from index.lexical import PostingsBuilder

    texts = [text for _, text in DOCS] * 3 + [
        "",
        "The a of I",
        "Straße STRASSE strasse Ünïcödé naïve café cafés",
        "approves approved approving tram trams TRAM, 9-4 1 22",
    ]
    builder = PostingsBuilder()
    for start in range(0, len(texts), 4):
        builder.add(texts[start : start + 4])
    built = builder.finish()
    vocab: dict[str, int] = {}
    expected: dict[int, list[tuple[int, int]]] = {}
    for row, text in enumerate(texts):
        for word, count in Counter(tokenize(text)).items():
            expected.setdefault(vocab.setdefault(word, len(vocab)), []).append((row, count))
    assert built.words == list(vocab)
    assert built.lengths.tolist() == [len(tokenize(text)) for text in texts]
    for word, term in vocab.items():
        rows, counts = built.column(word)
        assert list(zip(rows.tolist(), counts.tolist(), strict=True)) == sorted(expected[term])
    whole = Postings.build(texts)
    assert whole.words == built.words and np.array_equal(whole.rows, built.rows)
