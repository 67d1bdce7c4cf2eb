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

Around that core (benchmarks/retrieval_hard.py measures each piece against the plain
hybrid on the short-query and multi-paper sets):
- a short query (at most `short_query_words` words) can weigh dense more
  (`short_dense_boost`, 1.0 by default: 1.5 helps short queries a little and costs a
  multi-paper question, so it waits for a reranker to be measured beside it);
- each retriever's candidates hold at most `max_chunks_per_paper` (3) chunks of one
  paper, so a paper of many chunks can't crowd the others out of the candidates;
- off by default, because they did not help: searching each part of a multi-part
  question ("how do A compare with B", "X, Y or Z") too and fusing the parts' rankings
  with the whole question's (`split_questions`), pseudo-relevance feedback for short
  queries (RM3 over the top fused papers, `prf_docs`) and a BM25 ranking of the titles
  alone (`title_weight`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .embeddings import Embedder
from .index import PaperIndex
from .settings import Settings
from .text import bm25_tokenize, query_terms
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
    short_boost: bool = True,
) -> Retrieval:
    """The query's top k papers. `short_boost=False` weighs (and expands) a short query like
    any other: a summary's topic, whose relevance threshold was calibrated on equal weights."""
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
    short = len(query.split()) <= settings.short_query_words
    ranked, found = rank_papers(index, embedder, query, short and short_boost, n, mode, allowed)
    split = settings.split_questions and not short and mode == "hybrid"
    parts = question_parts(query) if split else []
    if parts:  # the whole question leads; its parts share part_weight between them
        share = settings.part_weight / len(parts)
        vectors = embedder.embed_documents(parts)  # one batch: what the parts cost is this
        rankings = [(1.0, ranked)] + [
            (share, rank_papers(index, embedder, part, False, n, mode, allowed, vector)[0])
            for part, vector in zip(parts, vectors, strict=True)
        ]
        ranked = fuse(rankings, settings)

    hits = [
        Hit(rank, snap.papers[pid], score, snippet_of(snap.text_of[chunk_id]), chunk_id)
        for rank, (pid, chunk_id, score) in enumerate(ranked[:k], start=1)
    ]
    return Retrieval(query, hits, found.vector, found.terms, found.nearest, found.similarity)


@dataclass
class Found:
    """What ranking one query learnt on the way, besides the ranking."""

    terms: list[str]
    vector: np.ndarray | None = None
    nearest: float = 0.0
    similarity: dict[str, float] = field(default_factory=dict)


def rank_papers(
    index: PaperIndex,
    embedder: Embedder,
    query: str,
    short: bool,
    n: int,
    mode: Mode,
    allowed: set[str] | None,
    vector: np.ndarray | None = None,
) -> tuple[list[tuple[str, str, float]], Found]:
    """One query's papers in rank order, (paper_id, best chunk, score), from n candidates.
    `short`: weigh the retrievers (and expand the query) as for a short query; `vector`:
    the query's embedding, when it was embedded already."""
    settings = index.settings
    snap = index.snapshot
    cap = settings.max_chunks_per_paper
    found = Found(query_terms(query))
    dense_weight, bm25_weight = settings.dense_weight, settings.bm25_weight
    if short:
        dense_weight *= settings.short_dense_boost

    rankings: list[tuple[float, list[tuple[str, str, float]]]] = []
    if mode in ("hybrid", "dense"):
        found.vector = embedder.embed_query(query) if vector is None else vector
        dense = index.dense(found.vector, n, allowed, cap)
        papers = papers_from_chunks(dense, snap.paper_of)
        rankings.append((dense_weight, papers))
        found.similarity = {pid: score for pid, _, score in papers}
        if allowed is None:
            found.nearest = dense[0][1] if dense else 0.0
        else:  # the closest chunk anywhere, not just among the papers the filters allow
            closest = index.dense(found.vector, 1)
            found.nearest = closest[0][1] if closest else 0.0
    if mode in ("hybrid", "bm25"):
        lexical = papers_from_chunks(index.lexical(found.terms, n, allowed, cap), snap.paper_of)
        rankings.append((bm25_weight, lexical))
        if mode == "hybrid" and settings.title_weight > 0:
            titles = [
                (pid, snap.first_chunk[pid], score)
                for pid, score in index.titles(found.terms, n, allowed)
            ]
            rankings.append((settings.title_weight, titles))
        if mode == "hybrid" and short and settings.prf_docs > 0:
            feedback = fuse(rankings, settings)[: settings.prf_docs]
            expanded = feedback_query(
                found.terms,
                [snap.text_of[chunk_id] for _, chunk_id, _ in feedback],
                [score for _, _, score in feedback],
                settings.prf_terms,
                settings.prf_weight,
            )
            rankings[1] = (
                bm25_weight,
                papers_from_chunks(index.lexical(expanded, n, allowed, cap), snap.paper_of),
            )
    ranked = fuse(rankings, settings) if mode == "hybrid" else rankings[0][1]
    return ranked, found


def feedback_query(
    terms: list[str], texts: list[str], scores: list[float], n_terms: int, weight: float
) -> dict[str, float]:
    """RM3: the query's terms mixed with the terms the feedback texts are most about.

    Each feedback text votes for its terms by their share of its length, weighted by
    the text's score; the `n_terms` best (not already in the query) get `weight` of the
    query between them, in proportion to their votes.
    """
    original = Counter(terms)
    votes: Counter[str] = Counter()
    top = max(scores, default=0.0) or 1.0
    for tokens, score in zip(bm25_tokenize(texts), scores, strict=True):
        if not tokens:
            continue
        for term, count in Counter(tokens).items():
            votes[term] += (score / top) * count / len(tokens)
    expansion = [(t, v) for t, v in votes.most_common() if t not in original][:n_terms]
    total_votes = sum(v for _, v in expansion) or 1.0
    total_terms = sum(original.values()) or 1
    query = {t: (1 - weight) * c / total_terms for t, c in original.items()}
    for term, vote in expansion:
        query[term] = weight * vote / total_votes
    return query


def search(
    index: PaperIndex, embedder: Embedder, query: str, *args: Any, **kwargs: Any
) -> list[Hit]:
    """`retrieve`'s ranked papers only (same arguments), for callers that need nothing else."""
    return retrieve(index, embedder, query, *args, **kwargs).hits


def snippet_of(chunk_text: str) -> str:
    """The chunk without its title line, which the result shows anyway."""
    return chunk_text.split("\n", 1)[-1]


# --- multi-part questions --------------------------------------------------------------------

# Where a question turns from one side of a comparison to the other.
CONTRAST = re.compile(
    r"\s*\b(?:compared? (?:with|to|against)|compares (?:with|to|against)|differs? from"
    r"|versus|vs\.?)\b\s*",
    re.IGNORECASE,
)
# What follows these is what the question does not want: it is no part to search for.
EXCLUSION = re.compile(r"\s*\b(?:rather than|instead of|as opposed to)\b[^,;?]*", re.IGNORECASE)
# Between the items of an enumeration: a comma (with or without "and"/"or"), or a bare "or".
ENUMERATION = re.compile(r"\s*(?:[,;:]\s*(?:and\s+|or\s+)?|\s+or\s+)", re.IGNORECASE)
# A side is a list only if it has a conjunction; a lone comma sets off a clause.
LIST = re.compile(r"\s(?:or|and)\s", re.IGNORECASE)
# A leading clause that sets the scene for every part: "For machine translation, how …".
SETTING = re.compile(r"^(?:for|in|when|on|given)\s+([^,]{3,}),\s*", re.IGNORECASE)
MIN_PART_TERMS = 2
MAX_PARTS = 6  # each part is one more search; the datasets' questions have at most 5


def question_parts(question: str) -> list[str]:
    """The parts of a question about several things, each to be retrieved on its own.

    "How do methods that A compare with ones that B?" has the parts A and B; "Which
    papers apply X to Y, Z or W?" has "… X to Y", "… X to Y Z" and "… X to Y W": each
    item after the first keeps the words before the list, which say what it is an item
    of. A comma splits only where an "or"/"and" makes a list (otherwise it sets off a
    clause), what follows "rather than" or "instead of" is not wanted and is no part, a
    leading "For/In/When …," clause goes into every part, and a piece with fewer than
    two subject terms is glued to the next ("toxicity or bias" is one piece). A question
    with one part gives [].
    """
    setting = SETTING.match(question)
    context = setting.group(1) if setting else ""
    body = question[setting.end() :] if setting else question
    parts: list[str] = []
    for side in CONTRAST.split(EXCLUSION.sub("", body)):
        pieces = glue(ENUMERATION.split(side) if LIST.search(side) else [side])
        parts += pieces[:1] + [f"{pieces[0]} {piece}" for piece in pieces[1:]]
    parts = [f"{context} {part}".strip() for part in parts[:MAX_PARTS]]
    return parts if len(parts) > 1 else []


def glue(pieces: list[str]) -> list[str]:
    """Pieces joined until each has MIN_PART_TERMS subject terms; a short tail joins the last."""
    glued: list[str] = []
    pending = ""
    for piece in pieces:
        pending = f"{pending} {piece}".strip()
        if len(query_terms(pending)) >= MIN_PART_TERMS:
            glued.append(pending)
            pending = ""
    if pending and glued:
        glued[-1] = f"{glued[-1]} {pending}"
    return glued
