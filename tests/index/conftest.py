"""The search tests' retriever: real SQLite and FAISS, the bag-of-words embedder."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Engine

from index.embedder import Embedder
from index.search import Retriever
from tests.index.words import WordEmbedder


@pytest.fixture
def retriever(sqlite_engine: Engine, tmp_path: Path) -> Retriever:
    return Retriever(sqlite_engine, cast(Embedder, WordEmbedder()), tmp_path / "index")
