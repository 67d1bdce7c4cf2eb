"""Query -> ranked papers: dense (Chroma) and BM25, fused into one ranking.

Each retriever's chunk ranking is first collapsed to a paper ranking (a paper
ranks where its best chunk does), then the paper rankings are fused. Fusing
papers rather than chunks keeps a paper with two matching chunks from counting
twice, and the best chunk becomes the snippet.

Fusion is by default a convex combination of scores (`fusion="convex"`): each
retriever's scores are divided by its best one, then averaged with the
weights. Unlike reciprocal rank fusion (`fusion="rrf"`) it keeps how far apart
the scores are, so a paper one retriever is sure about isn't levelled with one
it barely prefers. On SciFact's training claims, at the default settings, it
gives nDCG@10 0.739 against 0.717 for RRF with k=60
(benchmarks/retrieval_scifact.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .embeddings import Embedder
from .index import PaperIndex
from .settings import Settings
from .text import query_terms
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
        paper_id = chunk_papers.get(chunk_id)
        if paper_id is None:  # written after our snapshot was taken
            continue
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


def convex_fusion(
    rankings: list[tuple[float, list[tuple[str, str, float]]]],
) -> list[tuple[str, str, float]]:
    """Weighted mean of scores scaled to [0, 1]; a paper a retriever didn't return gets 0 there.

    Each ranking's scores are divided by its best score, with 0 as the floor: a
    BM25 score of 0 means no query term matched, and a cosine at or below 0 means
    unrelated. Anchoring at 0 rather than at the list's lowest score keeps a short
    candidate list (a small corpus, a narrow filter) from stretching small
    differences to the full range. The snippet comes from the ranking that
    contributed most.
    """
    total = sum(weight for weight, ranking in rankings if ranking) or 1.0
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, int, str]] = {}  # largest contribution, best rank, its chunk
    for weight, ranking in rankings:
        top = max((score for _, _, score in ranking), default=0.0)
        share = weight / total
        for rank, (paper_id, chunk_id, score) in enumerate(ranking, start=1):
            part = share * max(score, 0.0) / top if top > 0 else 0.0
            scores[paper_id] = scores.get(paper_id, 0.0) + part
            if paper_id not in best or (-part, rank) < (-best[paper_id][0], best[paper_id][1]):
                best[paper_id] = (part, rank, chunk_id)
    order = sorted(scores, key=lambda p: (-scores[p], best[p][1], p))
    return [(p, best[p][2], scores[p]) for p in order]


def fuse(
    rankings: list[tuple[float, list[tuple[str, str, float]]]], settings: Settings
) -> list[tuple[str, str, float]]:
    if settings.fusion == "rrf":
        return reciprocal_rank_fusion(rankings, settings.rrf_k)
    return convex_fusion(rankings)


@dataclass
class Retrieval:
    """A query's hits and what was learnt about the query on the way, so that the stages
    after retrieval (abstention, the summary's relevance check) read it instead of
    embedding or tokenising the query again."""

    query: str
    hits: list[Hit]
    vector: np.ndarray | None  # the query's embedding (None when only BM25 ran)
    terms: list[str]  # its BM25 subject terms, question-framing words left out
    nearest_similarity: float  # cosine of the closest chunk in the whole index
    similarity: dict[str, float] = field(default_factory=dict)  # paper_id -> best chunk's cosine


def retrieve(
    index: PaperIndex,
    embedder: Embedder,
    query: str,
    k: int | None = None,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
) -> Retrieval:
    settings = index.settings
    k = k or settings.top_k
    query = " ".join(query.split())
    if not query:
        return Retrieval(query, [], None, [], 0.0)
    index.ensure_fresh()
    snap = index.snapshot
    allowed = None
    if filters is not None and filters.active():
        allowed = {pid for pid, paper in snap.papers.items() if filters.allows(paper)}
    n = max(settings.candidates, k * 4)
    terms = query_terms(query)

    rankings: list[tuple[float, list[tuple[str, str, float]]]] = []
    vector, similarity, nearest = None, {}, 0.0
    if mode in ("hybrid", "dense"):
        vector = embedder.embed_query(query)
        dense = index.dense(vector, n, allowed)
        papers = papers_from_chunks(dense, snap.paper_of)
        rankings.append((settings.dense_weight, papers))
        similarity = {pid: score for pid, _, score in papers}
        if allowed is None:
            nearest = dense[0][1] if dense else 0.0
        else:  # the closest chunk anywhere, not just among the papers the filters allow
            closest = index.dense(vector, 1)
            nearest = closest[0][1] if closest else 0.0
    if mode in ("hybrid", "bm25"):
        lexical = index.lexical(terms, n, allowed)
        rankings.append((settings.bm25_weight, papers_from_chunks(lexical, snap.paper_of)))
    ranked = fuse(rankings, settings) if mode == "hybrid" else rankings[0][1]

    hits = [
        Hit(rank, snap.papers[pid], score, snippet_of(snap.text_of[chunk_id]), chunk_id)
        for rank, (pid, chunk_id, score) in enumerate(ranked[:k], start=1)
    ]
    return Retrieval(query, hits, vector, terms, nearest, similarity)


def search(
    index: PaperIndex, embedder: Embedder, query: str, *args: Any, **kwargs: Any
) -> list[Hit]:
    """`retrieve`'s ranked papers only (same arguments), for callers that need nothing else."""
    return retrieve(index, embedder, query, *args, **kwargs).hits


def snippet_of(chunk_text: str) -> str:
    """The chunk without its title line, which the result shows anyway."""
    return chunk_text.split("\n", 1)[-1]
