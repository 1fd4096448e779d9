"""BM25 over passages: stemmed words, titles, incremental updates, saved with the version."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from index.lexical import LexicalIndex, document_text, tokenize

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


def test_update_adds_and_removes_without_retokenizing() -> None:
    """An update keeps the other rows and equals an index built from scratch."""
    index = LexicalIndex.build(DOCS[:2])
    updated = index.updated(np.array([10]), [DOCS[2]])
    fresh = LexicalIndex.build(DOCS[1:])
    assert sorted(updated.ids.tolist()) == [11, 12]
    query = "dockworkers contract fire"
    by_id = dict(zip(updated.ids.tolist(), updated.scores(query).tolist(), strict=True))
    expected = dict(zip(fresh.ids.tolist(), fresh.scores(query).tolist(), strict=True))
    assert by_id == expected


def test_saved_index_loads_with_the_same_scores(tmp_path: Path) -> None:
    """The index saved in a version folder scores exactly as before."""
    index = LexicalIndex.build(DOCS)
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded is not None
    assert loaded.ids.tolist() == index.ids.tolist()
    assert np.allclose(loaded.scores("tram line approved"), index.scores("tram line approved"))
    assert LexicalIndex.load(tmp_path / "missing") is None


def test_rows_of_maps_passage_ids() -> None:
    """Row lookup by passage id, -1 for ids the index lacks."""
    index = LexicalIndex.build(DOCS)
    assert index.rows_of(np.array([12, 99, 10])).tolist() == [2, -1, 0]


def test_idf_of_a_loaded_index_counts_passages_holding_each_word(tmp_path: Path) -> None:
    """Idf is log(1 + N/df) with df the passages holding a word, after updates and a reload,
    and coverage of a reloaded, memory-mapped index is the same as in memory."""
    index = LexicalIndex.build(DOCS).updated(np.array([11]), [(13, "tram tram strike fire")])
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded is not None and isinstance(loaded.token_ids, np.memmap)
    bounds = zip(index.offsets[:-1], index.offsets[1:], strict=True)
    rows = [set(index.token_ids[a:b].tolist()) for a, b in bounds]
    df = np.array([sum(word in row for row in rows) for word in range(len(index.vocab))])
    expected = np.log1p(len(rows) / np.maximum(df, 1)).astype(np.float32)
    assert np.array_equal(loaded.idf(), expected) and np.array_equal(index.idf(), expected)
    question = "Which tram strike was approved?"
    assert np.array_equal(
        loaded.coverage(question, np.arange(3)), index.coverage(question, np.arange(3))
    )


def test_the_score_matrix_is_bit_for_bit_the_one_bm25s_builds() -> None:
    """Vectorized build, same floats: repeated words, empty passages, unused vocabulary."""
    import bm25s

    from index.lexical import bm25_matrix

    rng = np.random.default_rng(3)
    rows = [rng.integers(0, 300, int(rng.integers(0, 60))).tolist() for _ in range(500)]
    columns = 320  # ids 300-319 never occur
    reference = bm25s.BM25()
    vocab = {str(i): i for i in range(columns)}
    reference.index((rows, vocab), create_empty_token=False, show_progress=False)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    tokens = np.array([t for r in rows for t in r], dtype=np.int32)
    built = bm25_matrix(offsets, tokens, columns, reference.k1, reference.b)
    for name in ("data", "indices", "indptr"):
        ours, theirs = np.asarray(built[name]), reference.scores[name]
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), name
    assert built["num_docs"] == reference.scores["num_docs"]
