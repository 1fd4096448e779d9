"""A sentence-transformers model run by onnxruntime with int8 weights: 3-4x torch's throughput.

The model is exported once (``torch.onnx``), its weights quantized to int8 per channel, and the
file kept in a cache folder under a name derived from the weights and library versions, so a
changed model or upgrade exports anew. Each text is encoded alone: dynamic quantization scales
activations per call, so a batch would make a passage's vector depend on its neighbours in the
batch. Alone it is deterministic, wastes nothing on padding, and with one worker thread per
core it is faster than torch's batches (``bench/bench_embedding.py``: 4.0x on two cores).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when the export or quantization recipe changes: old files are then not reused.
RECIPE = "onnx-int8-per-channel-v1"
POOLINGS = ("mean", "cls", "max")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# An export whose vectors stray this far from the torch model's is not used (cosine).
MIN_AGREEMENT = 0.95
PROBE = "The council approved the new tram line on Tuesday, officials said."


class NotExportable(RuntimeError):
    """This model cannot run on onnxruntime here; the torch model is used instead."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "newsbot" / "models"


class OnnxEncoder:
    """Unit-length vectors from an int8 ONNX export of a loaded SentenceTransformer."""

    def __init__(self, path: Path, tokenizer: Any, max_length: int, pooling: str) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per call: parallelism comes from encoding several texts at once.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._pooling = pooling
        self._workers = ThreadPoolExecutor(
            max(1, min(os.cpu_count() or 1, 8)), thread_name_prefix="onnx-encode"
        )

    @classmethod
    def load(cls, model: Any, cache_dir: Path) -> OnnxEncoder:
        """Export ``model`` (a SentenceTransformer) unless a matching file exists; check it."""
        transformer, pooling = _parts(model)
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"{_fingerprint(transformer.auto_model)}.onnx"
        if path.exists():
            try:
                encoder = cls(path, transformer.tokenizer, model.max_seq_length, pooling)
            except Exception as error:  # onnxruntime's own types: a damaged file
                log.warning(
                    "exporting the embedding model again: %s is unreadable (%s)", path, error
                )
                path.unlink()
        if not path.exists():
            log.info("exporting the embedding model to %s (once)", path)
            _export(transformer, path)
            encoder = cls(path, transformer.tokenizer, model.max_seq_length, pooling)
        expected = model.encode(
            [PROBE], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )[0]
        agreement = float(encoder.encode_one(PROBE) @ expected)
        if agreement < MIN_AGREEMENT:
            raise NotExportable(f"the export disagrees with the model (cosine {agreement:.3f})")
        return encoder

    def encode_one(self, text: str) -> np.ndarray:
        tokens = self._tokenizer(
            text, truncation=True, max_length=self._max_length, return_tensors="np"
        )
        hidden = self._hidden(tokens)
        if self._pooling == "cls":
            vector = hidden[0]
        elif self._pooling == "max":
            vector = hidden.max(axis=0)
        else:
            vector = hidden.mean(axis=0)
        vector = vector.astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack(list(self._workers.map(self.encode_one, texts)))

    def token_states_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The contextual vector of each word piece (before pooling) and its character span."""
        tokens = self._tokenizer(
            text,
            truncation=True,
            max_length=self._max_length,
            return_tensors="np",
            return_offsets_mapping=True,
        )
        return self._hidden(tokens).astype(np.float32), tokens["offset_mapping"][0]

    def token_states(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(self._workers.map(self.token_states_one, texts))

    def _hidden(self, tokens: Any) -> np.ndarray:
        feed = {name: tokens[name].astype(np.int64) for name in self._inputs}
        hidden: np.ndarray = self._session.run(None, feed)[0][0]
        return hidden


def _parts(model: Any) -> tuple[Any, str]:
    """The transformer module and pooling mode of a plain encoder, or ``NotExportable``."""
    modules = list(model)
    names = [type(module).__name__ for module in modules]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        raise NotExportable(f"modules {names} are not transformer → pooling → normalize")
    transformer, pooling = modules[0], modules[1]
    mode = pooling.pooling_mode
    mode = mode[0] if isinstance(mode, list | tuple) and len(mode) == 1 else mode
    if mode not in POOLINGS or not hasattr(transformer, "auto_model"):
        raise NotExportable(f"pooling {mode!r} is not one of {POOLINGS}")
    return transformer, mode


def _fingerprint(network: Any) -> str:
    """A name for the export of these exact weights by these library versions."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(RECIPE.encode())
    for package in ("torch", "transformers", "onnxruntime"):
        digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    digest.update(network.config.to_json_string().encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop the quantizer's notes on every tensor it skips, logged on the root logger."""
    root = logging.getLogger()
    quiet = logging.Filter("\0")  # lets no record through: none has that name
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def _export(transformer: Any, target: Path) -> None:
    """Export to ONNX, quantize the weights to int8, and move the result to ``target``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    sample = transformer.tokenizer(PROBE, return_tensors="pt")
    names = [name for name in TOKEN_INPUTS if name in sample]
    network = transformer.auto_model.eval()

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *tokens: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.network(**dict(zip(names, tokens, strict=True)))[0]
            return hidden

    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, warnings.catch_warnings():
        # The tracer's notes on Python control flow are about shapes we keep dynamic.
        warnings.simplefilter("ignore")
        exported, quantized = Path(scratch) / "model.onnx", Path(scratch) / "model.int8.onnx"
        try:
            with torch.no_grad():
                torch.onnx.export(
                    HiddenStates(),
                    tuple(sample[name] for name in names),
                    str(exported),
                    input_names=names,
                    output_names=["hidden"],
                    dynamic_axes=axes,
                    opset_version=17,
                    dynamo=False,
                )
            with _quiet_root_logger():
                quantize_dynamic(exported, quantized, weight_type=QuantType.QInt8, per_channel=True)
        except Exception as error:  # the exporter raises many unrelated types
            raise NotExportable(f"export failed: {error}") from error
        os.replace(quantized, target)
