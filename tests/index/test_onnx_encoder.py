"""The int8 ONNX backend: vectors close to torch's, exported once, torch kept when it cannot run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from index.embedder import ONNX_SUFFIX, Embedder, resolve_model

pytestmark = pytest.mark.slow

PASSAGES = [
    "The council approved the tram line to the harbour on Tuesday after a four-hour debate.",
    "Firefighters contained the moorland blaze near Hollin Edge before it reached the farms.",
    "Brightloom Software will cut 1,150 jobs, about 18 percent of its workforce.",
    "Fares on the island ferry rise by 12 percent from March, the operator said.",
]


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    """The packaged model as loaded, on torch."""
    return Embedder(backend="torch")


def _saved_model(folder: Path, pooling: str, dense: bool = False) -> str:
    """The packaged transformer saved with another head, as a user's own model would be."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Pooling, Transformer

    modules = [Transformer(resolve_model("default")), Pooling(384, pooling)]
    if dense:
        modules.append(Dense(384, 128))
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return str(folder)


def test_default_backend_is_onnx_and_agrees_with_torch(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    """The default embedder runs on onnxruntime; its vectors are within 2% of torch's."""
    assert embedder.backend == "onnx" and embedder.name.endswith(ONNX_SUFFIX)
    assert torch_embedder.backend == "torch" and not torch_embedder.name.endswith(ONNX_SUFFIX)
    cosines = (embedder.embed(PASSAGES) * torch_embedder.embed(PASSAGES)).sum(axis=1)
    assert cosines.min() > 0.98


def test_the_backends_rank_passages_alike(embedder: Embedder, torch_embedder: Embedder) -> None:
    """Each question finds the same passage first with either backend."""
    questions = ["Was the tram approved?", "How many jobs go at Brightloom?", "Ferry fares?"]
    for model in (embedder, torch_embedder):
        passages = model.embed(PASSAGES)
        best = [int(np.argmax(passages @ model.embed_query(q))) for q in questions]
        assert best == [0, 2, 3]


def test_a_model_is_exported_once_then_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A CLS-pooling model is exported into the cache folder, and a second load reuses it."""
    model = _saved_model(tmp_path / "cls-model", "cls")
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="index.onnx_encoder"):
        first = Embedder(model, cache_dir=cache)
    exported = list(cache.glob("*.onnx"))
    assert first.backend == "onnx" and len(exported) == 1
    assert "exporting" in caplog.text
    stamp = exported[0].stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="index.onnx_encoder"):
        second = Embedder(model, cache_dir=cache)
    assert "exporting" not in caplog.text and exported[0].stat().st_mtime_ns == stamp
    assert np.array_equal(first.embed(PASSAGES), second.embed(PASSAGES))
    as_loaded = Embedder(model, backend="torch").embed(PASSAGES)
    assert (first.embed(PASSAGES) * as_loaded).sum(axis=1).min() > 0.98


def test_a_model_onnx_cannot_run_falls_back_to_torch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model with a dense head after pooling is embedded by torch, and the log says why."""
    model = _saved_model(tmp_path / "dense-model", "mean", dense=True)
    with caplog.at_level(logging.WARNING):
        embedder = Embedder(model, cache_dir=tmp_path / "cache")
    assert embedder.backend == "torch" and embedder.name == model
    assert embedder.dimension == 128 and embedder.embed(PASSAGES).shape == (4, 128)
    assert "cannot run on onnxruntime" in caplog.text
    assert not list((tmp_path / "cache").glob("*.onnx"))


def test_a_damaged_export_is_made_again(
    embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable file in the cache is exported anew, not a reason to leave onnxruntime."""
    cache = tmp_path / "cache"
    Embedder(cache_dir=cache)
    (exported,) = cache.glob("*.onnx")
    exported.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING):
        again = Embedder(cache_dir=cache)
    assert "exporting the embedding model again" in caplog.text
    assert again.backend == "onnx" and exported.stat().st_size > 1_000_000
    assert np.array_equal(again.embed(PASSAGES), embedder.embed(PASSAGES))
