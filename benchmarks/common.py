"""What every benchmark script does first: bring an index up to date and open it."""

from __future__ import annotations

import json
import sys
import time
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from assistant.components import Components
from assistant.corpus import read_corpus
from assistant.embeddings import Embedder
from assistant.ingest import ingest
from assistant.rerank import Reranker, rerank
from assistant.retrieval import Mode, search
from assistant.settings import Settings
from assistant.types import Hit

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "data" / "papers"
SEED_INDEX = REPO / "benchmarks" / "out" / "seed-index"


def read_jsonl(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


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


class CachedReranker:
    """A reranker (`assistant/rerank.py`) that reads each (query, passage) pair once, however
    many configurations rerank it, and times its reads; the model loads on first use."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.read: dict[tuple[str, str], float] = {}
        self.seconds: list[float] = []  # per call that read anything

    @cached_property
    def inner(self) -> Reranker:
        return Reranker(self.model_dir)

    def probabilities(self, query: str, passages: list[str]) -> np.ndarray:
        new = [p for p in dict.fromkeys(passages) if (query, p) not in self.read]
        if new:
            started = time.perf_counter()
            read = self.inner.probabilities(query, new)
            self.seconds.append(time.perf_counter() - started)
            self.read.update(((query, p), float(r)) for p, r in zip(new, read, strict=True))
        return np.array([self.read[(query, p)] for p in passages])


def reranked_search(
    index,
    embedder: Embedder,
    query: str,
    k: int,
    reranker: CachedReranker,
    depth: int,
    weight: float,
    mode: Mode = "hybrid",
) -> list[Hit]:
    """`search`, its top `depth` papers' best chunks reordered by the reranker."""
    hits = search(index, embedder, query, k=max(k, depth), mode=mode)
    texts = [index.snapshot.text_of[h.chunk_id] for h in hits[:depth]]
    return rerank(hits, reranker.probabilities(query, texts), weight)[:k]


class CachedEmbedder:
    """Embeds each query once, however many modes or configurations search it."""

    def __init__(self, embedder: Embedder) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.embed_query = lru_cache(maxsize=None)(embedder.embed_query)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)
