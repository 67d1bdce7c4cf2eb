"""The opened index that search reads: dense search in Chroma, the rest from the snapshot.

Opening checks that the collection was built with the configured embedding
model, and a long-running session follows ingests made by other processes
(or machines sharing a Chroma server) by watching the collection's
`generation`. Writing the index is `ingest.py`'s job; the Chroma helpers are
in `store.py`, the derived paper table and BM25 index in `snapshot.py`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexMissingError
from .settings import Settings
from .snapshot import Snapshot, current_snapshot
from .store import (
    check_model,
    find_collection,
    finish_rebuild,
    generation_of,
    open_client,
    server_errors,
    translates_server_errors,
    where_am_i,
)
from .types import Paper

if TYPE_CHECKING:
    import bm25s
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection


class PaperIndex:
    """An opened index: the collection for dense search, the snapshot for the rest."""

    FRESHNESS_SECONDS = 2.0  # how often a long-running session asks whether others ingested

    def __init__(
        self, settings: Settings, client: ClientAPI, collection: Collection, snapshot: Snapshot
    ) -> None:
        self.settings = settings
        self.client = client
        self.collection = collection
        self.snapshot = snapshot
        self._checked = time.monotonic()

    @classmethod
    @translates_server_errors
    def open(cls, settings: Settings, embedder_name: str | None = None) -> PaperIndex:
        client = open_client(settings, create=False)
        collection = find_collection(client, settings.collection) or finish_rebuild(
            client, settings
        )
        if collection is None:
            raise IndexMissingError(
                f"no index at {where_am_i(settings)}",
                "build it with `python -m assistant ingest` (reads data/papers by default)",
            )
        check_model(collection, settings, embedder_name or settings.embedding_model)
        return cls(settings, client, collection, current_snapshot(settings, collection))

    @property
    def complete(self) -> bool:
        """False when the last ingest into this collection was cut short."""
        return bool((self.collection.metadata or {}).get("complete", True))

    def ensure_fresh(self) -> None:
        """Another process (or machine) may have ingested since we opened: follow it."""
        now = time.monotonic()
        if now - self._checked < self.FRESHNESS_SECONDS:
            return
        self._checked = now
        with server_errors(self.settings):
            collection = find_collection(self.client, self.settings.collection)
            if collection is None or generation_of(collection) == self.snapshot.generation:
                return
            self.collection = collection
            self.snapshot = current_snapshot(self.settings, collection)

    @property
    def papers(self) -> Mapping[str, Paper]:
        return self.snapshot.papers

    def dense(
        self,
        vector: np.ndarray,
        n: int,
        allowed: set[str] | None = None,
        per_paper: int = 0,
    ) -> list[tuple[str, float]]:
        """Chunk ids with cosine similarity, best first; with `per_paper`, at most that many
        chunks of any one paper, so a paper of many chunks can't fill the candidates."""
        total = len(self.snapshot.chunk_ids)
        if total == 0 or (allowed is not None and not allowed):
            return []
        if self.snapshot.vectors is not None:
            return self.exact_dense(vector, n, allowed, per_paper)
        where = {"paper_id": {"$in": sorted(allowed)}} if allowed is not None else None

        def nearest(depth: int) -> list[tuple[str, float]]:
            with server_errors(self.settings):
                result = self.collection.query(
                    query_embeddings=[vector.tolist()],
                    n_results=depth,
                    where=where,  # type: ignore[arg-type]
                    include=["distances"],  # type: ignore[list-item]
                )
            ids, distances = result["ids"][0], result["distances"][0]  # type: ignore[index]
            return [(cid, 1.0 - dist) for cid, dist in zip(ids, distances, strict=True)]

        return capped_ranking(nearest, self.snapshot.paper_of, per_paper, n, total)

    def exact_dense(
        self, vector: np.ndarray, n: int, allowed: set[str] | None, per_paper: int
    ) -> list[tuple[str, float]]:
        """`dense` by brute force over the stored vectors: the same cosine Chroma computes,
        but exact and so the same on every build of the same corpus (HNSW's graph is not:
        benchmarks/index_repeatability.py), and within the search budget up to the exact-search
        limit (benchmarks/scale.py measures both). Ties go to the earlier chunk."""
        snap = self.snapshot
        assert snap.vectors is not None
        scores = snap.vectors @ np.asarray(vector, np.float32)
        if allowed is not None:
            mask = np.fromiter((p in allowed for p in snap.chunk_papers), bool, len(scores))
            scores = np.where(mask, scores, -np.inf)
        return self.best_chunks(scores, n, per_paper, floor=-np.inf)

    def best_chunks(
        self, scores: np.ndarray, n: int, per_paper: int, floor: float
    ) -> list[tuple[str, float]]:
        """The n best chunks by one score per chunk (above `floor`), at most `per_paper` of
        a paper."""
        snap = self.snapshot

        def best(depth: int) -> list[tuple[str, float]]:
            top = best_first(scores, depth)
            return [(snap.chunk_ids[i], float(scores[i])) for i in top if scores[i] > floor]

        return capped_ranking(best, snap.paper_of, per_paper, n, len(scores))

    def vectors(self, chunk_ids: list[str]) -> np.ndarray:
        """The stored embeddings of these chunks, in this order: nothing is re-embedded."""
        if not chunk_ids:
            return np.zeros((0, 0), np.float32)
        snap = self.snapshot
        if snap.vectors is not None and all(c in snap.row_of for c in chunk_ids):
            return np.asarray(snap.vectors[[snap.row_of[c] for c in chunk_ids]], np.float32)
        with server_errors(self.settings):
            result = self.collection.get(ids=chunk_ids, include=["embeddings"])  # type: ignore[list-item]
        by_id = dict(zip(result["ids"], result["embeddings"], strict=True))  # type: ignore[arg-type]
        return np.asarray([by_id[c] for c in chunk_ids], dtype=np.float32)

    def lexical(
        self,
        terms: list[str] | dict[str, float],
        n: int,
        allowed: set[str] | None = None,
        per_paper: int = 0,
    ) -> list[tuple[str, float]]:
        """Chunk ids with BM25 scores for the query's terms (`text.query_terms`), best first;
        chunks without a query term are left out. Terms given with weights (pseudo-relevance
        feedback) score as the weighted sum of each term's BM25 score."""
        snap = self.snapshot
        if snap.bm25 is None:
            return []
        scores = weighted_scores(snap.bm25, terms)
        if scores is None:
            return []
        if allowed is not None:
            mask = np.fromiter((p in allowed for p in snap.chunk_papers), bool, len(scores))
            scores = np.where(mask, scores, 0.0)
        return self.best_chunks(scores, n, per_paper, floor=0.0)

    def titles(
        self, terms: list[str], n: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Paper ids with the BM25 score of the query's terms against the titles alone."""
        ids, bm25 = self.snapshot.title_index
        scores = weighted_scores(bm25, terms) if bm25 is not None else None
        if scores is None:
            return []
        if allowed is not None:
            mask = np.fromiter((p in allowed for p in ids), bool, len(scores))
            scores = np.where(mask, scores, 0.0)
        return [(ids[i], float(scores[i])) for i in best_first(scores, n) if scores[i] > 0]


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k highest scores, best first, ties to the earlier position: the
    first k of a stable argsort of -scores, without sorting all of them."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    if k < len(scores):
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        candidates = np.flatnonzero(scores >= kth)  # every tie at the k-th score
    else:
        candidates = np.arange(len(scores))
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


def weighted_scores(bm25: bm25s.BM25, terms: list[str] | dict[str, float]) -> np.ndarray | None:
    """BM25 scores of every document; None when no term is in the vocabulary."""
    vocab = bm25.vocab_dict
    if isinstance(terms, dict):
        weights = {t: w for t, w in terms.items() if t in vocab and w > 0}
        if not weights:
            return None
        return sum(w * bm25.get_scores([t]) for t, w in weights.items())  # type: ignore[return-value]
    tokens = [t for t in terms if t in vocab]
    return bm25.get_scores(tokens) if tokens else None


def capped_ranking(
    ranking: Callable[[int], list[tuple[str, float]]],
    paper_of: dict[str, str],
    per_paper: int,
    n: int,
    total: int,
) -> list[tuple[str, float]]:
    """The first n of `ranking(depth)` (its best `depth` chunks) once each paper is capped at
    `per_paper`. It reads a few times n and deeper only when the cap left fewer than n:
    fetching every chunk a cap could drop made each search linear in the corpus (at 100,000
    abstracts, most of a 62 ms search; benchmarks/scale.py)."""
    depth = min(4 * n if per_paper else n, total)
    while True:
        ranked = ranking(depth)
        kept = cap_per_paper(ranked, paper_of, per_paper, n)
        if len(kept) >= n or len(ranked) < depth or depth >= total:
            return kept
        depth = min(4 * depth, total)


def cap_per_paper(
    ranked: list[tuple[str, float]], paper_of: dict[str, str], per_paper: int, n: int
) -> list[tuple[str, float]]:
    """The first n of the ranking, skipping a paper's chunks beyond its first `per_paper`."""
    if not per_paper:
        return ranked[:n]
    taken: Counter[str] = Counter()
    kept = []
    for chunk_id, score in ranked:
        paper_id = paper_of.get(chunk_id, chunk_id)
        if taken[paper_id] < per_paper:
            taken[paper_id] += 1
            kept.append((chunk_id, score))
            if len(kept) == n:
                break
    return kept
