"""A bag-of-words stand-in for the model and two tiny articles, for tests of hybrid search."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from ingest.extract import RawArticle

DAY = timedelta(days=1)
NOW = datetime(2025, 6, 20, 12, tzinfo=UTC)


class WordEmbedder:
    """Hashed bag of words: texts sharing words are close, like a (very) small model."""

    name = "fake-words"
    dimension = 256

    def embed(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.casefold()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
            out[row] /= max(float(np.linalg.norm(out[row])), 1e-9)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def article(
    key: str, title: str, body: str, published: datetime | None, **extra: str
) -> RawArticle:
    return RawArticle(title=title, body=body, key=key, published_at=published, **extra)


TRAM = article(
    "tram",
    "Council approves tram line",
    "Harbor City Council approved the Eastshore tram line on Wednesday, nine votes to four.",
    NOW - 2 * DAY,
    outlet="Harbor City Ledger",
)
FIRE = article(
    "fire",
    "Wildfire contained",
    "Firefighters said the Sorrel Ridge wildfire was 65 percent contained on Tuesday.",
    NOW - 3 * DAY,
    outlet="Valley Wire",
)
