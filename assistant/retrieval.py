"""Query -> ranked papers: dense (Chroma) and BM25, fused by reciprocal rank fusion.

Each retriever's chunk ranking is first collapsed to a paper ranking (a paper
ranks where its best chunk does), then the paper rankings are fused. Fusing
papers rather than chunks keeps a paper with two matching chunks from counting
twice, and the best chunk becomes the snippet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .embeddings import Embedder
from .index import PaperIndex
from .types import Hit, Paper

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")


@dataclass
class Filters:
    """Metadata filters; a paper must pass all that are set."""

    source: str | None = None  # a substring of one of the paper's source files
    date_from: str | None = None  # ISO dates compare correctly as strings
    date_to: str | None = None
    category: str | None = None

    def active(self) -> bool:
        return any((self.source, self.date_from, self.date_to, self.category))

    def allows(self, paper: Paper) -> bool:
        if self.source and not any(self.source in s for s in paper.sources):
            return False
        if (self.date_from or self.date_to) and not paper.date:
            return False
        if self.date_from and paper.date and paper.date < self.date_from:
            return False
        if self.date_to and paper.date and paper.date[: len(self.date_to)] > self.date_to:
            return False
        return not (self.category and self.category not in paper.categories)


def papers_from_chunks(
    ranked_chunks: list[tuple[str, float]], chunk_papers: dict[str, str]
) -> list[tuple[str, str, float]]:
    """(paper_id, best chunk id, score) in rank order, one row per paper."""
    seen: dict[str, tuple[str, str, float]] = {}
    for chunk_id, score in ranked_chunks:
        paper_id = chunk_papers[chunk_id]
        if paper_id not in seen:
            seen[paper_id] = (paper_id, chunk_id, score)
    return list(seen.values())


def reciprocal_rank_fusion(
    rankings: list[tuple[float, list[tuple[str, str, float]]]], k: int
) -> list[tuple[str, str, float]]:
    """Sum of weight / (k + rank) over the rankings; the snippet comes from the best-ranked one."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[int, str]] = {}
    for weight, ranking in rankings:
        for rank, (paper_id, chunk_id, _) in enumerate(ranking, start=1):
            scores[paper_id] = scores.get(paper_id, 0.0) + weight / (k + rank)
            if paper_id not in best or rank < best[paper_id][0]:
                best[paper_id] = (rank, chunk_id)
    order = sorted(scores, key=lambda p: (-scores[p], best[p][0], p))
    return [(p, best[p][1], scores[p]) for p in order]


def search(
    index: PaperIndex,
    embedder: Embedder,
    query: str,
    k: int | None = None,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
) -> list[Hit]:
    settings = index.settings
    k = k or settings.top_k
    query = " ".join(query.split())
    if not query:
        return []
    snap = index.snapshot
    allowed = None
    if filters is not None and filters.active():
        allowed = {pid for pid, paper in snap.papers.items() if filters.allows(paper)}
    n = max(settings.candidates, k * 4)

    rankings: list[tuple[float, list[tuple[str, str, float]]]] = []
    if mode in ("hybrid", "dense"):
        dense = index.dense(embedder.embed_query(query), n, allowed)
        rankings.append((settings.dense_weight, papers_from_chunks(dense, snap.paper_of)))
    if mode in ("hybrid", "bm25"):
        lexical = index.lexical(query, n, allowed)
        rankings.append((settings.bm25_weight, papers_from_chunks(lexical, snap.paper_of)))
    ranked = (
        reciprocal_rank_fusion(rankings, settings.rrf_k) if mode == "hybrid" else rankings[0][1]
    )

    return [
        Hit(rank, snap.papers[pid], score, snippet_of(snap.text_of[chunk_id]), chunk_id)
        for rank, (pid, chunk_id, score) in enumerate(ranked[:k], start=1)
    ]


def snippet_of(chunk_text: str) -> str:
    """The chunk without its title line, which the result shows anyway."""
    return chunk_text.split("\n", 1)[-1]
