"""What every benchmark script does first: bring an index up to date and open it."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.components import Components
from assistant.corpus import read_corpus
from assistant.embeddings import Embedder
from assistant.ingest import ingest
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "data" / "papers"
SEED_INDEX = REPO / "benchmarks" / "out" / "seed-index"


def open_index(corpus: Path, settings: Settings, embedder: Embedder | None = None) -> Components:
    """Ingest the corpus (incremental: a second run embeds nothing); the index and embedder
    come from the returned Components, as the CLI and the app get theirs."""
    components = Components(settings, embedder=embedder)
    read = read_corpus([corpus])
    if read.problems:
        print(f"{len(read.problems)} corpus problems, e.g. {read.problems[0]}", file=sys.stderr)
    report = ingest(settings, read, [corpus], components.embedder, progress=True)
    print(f"index: {report.summary()}", file=sys.stderr)
    return components


class CachedEmbedder:
    """Embeds each query once, however many modes or configurations search it."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.embed_query = lru_cache(maxsize=None)(embedder.embed_query)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)
