"""Fusion on hand-made rankings, and hybrid search with the real model on a small fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_jsonl

from assistant.corpus import read_corpus
from assistant.index import PaperIndex
from assistant.ingest import ingest
from assistant.retrieval import (
    Filters,
    convex_fusion,
    papers_from_chunks,
    reciprocal_rank_fusion,
    search,
)
from assistant.types import Paper


def test_chunks_collapse_to_papers_at_their_best_chunk() -> None:
    ranked = [("a#1", 0.9), ("b#0", 0.8), ("a#0", 0.7)]
    assert papers_from_chunks(ranked, {"a#1": "a", "a#0": "a", "b#0": "b"}) == [
        ("a", "a#1", 0.9),
        ("b", "b#0", 0.8),
    ]


def test_convex_fusion_keeps_score_gaps() -> None:
    dense = [("a", "a#0", 0.80), ("b", "b#0", 0.78)]  # barely prefers a
    bm25 = [("b", "b#1", 10.0), ("a", "a#0", 2.0)]  # is sure about b
    fused = convex_fusion([(1.0, dense), (1.0, bm25)])
    assert [p for p, _, _ in fused] == ["b", "a"]
    assert fused[0][2] == pytest.approx(0.5 * 0.78 / 0.80 + 0.5)
    assert fused[0][1] == "b#1"  # the snippet comes from the ranking that contributed most
    # Reciprocal rank fusion would call this a tie: rank 1 + rank 2 each.
    rrf = reciprocal_rank_fusion([(1.0, dense), (1.0, bm25)], k=60)
    assert rrf[0][2] == pytest.approx(rrf[1][2])


def test_convex_fusion_edge_cases() -> None:
    assert convex_fusion([(1.0, []), (1.0, [])]) == []
    # One empty retriever: the other's scores carry the whole weight.
    only = convex_fusion([(1.0, [("a", "a#0", 0.5)]), (1.0, [])])
    assert only == [("a", "a#0", pytest.approx(1.0))]
    # Negative cosines mean unrelated: floored at 0, never negative.
    negative = convex_fusion([(1.0, [("a", "a#0", -0.2)]), (1.0, [("b", "b#0", 3.0)])])
    assert [p for p, _, _ in negative] == ["b", "a"] and negative[1][2] == 0.0
    # All weights zero: no division by zero.
    assert [p for p, _, _ in convex_fusion([(0.0, [("a", "a#0", 1.0)])])] == ["a"]


def test_filters() -> None:
    paper = Paper(
        "x", "T", "A.", sources=["data/papers/003_x.txt"], date="2024-03-01", categories=["cs.CL"]
    )
    assert Filters(source="003_").allows(paper)
    assert not Filters(source="004_").allows(paper)
    assert Filters(date_from="2024-01-01", date_to="2024-03").allows(paper)
    assert not Filters(date_to="2024-02-28").allows(paper)
    assert not Filters(category="cs.LG").allows(paper)
    assert not Filters(date_from="2020-01-01").allows(Paper("y", "T", "A."))  # no date: excluded


FIXTURE = [
    (
        "gold",
        "Running language models on mobile phones",
        "We make inference of large language models cheap enough for mobile phones by quantizing "
        "weights to four bits and reusing cached activations.",
    ),
    # Close in meaning, few shared words: dense likes it.
    (
        "near",
        "On-device LLM deployment",
        "We port transformer LLMs to smartphones using low-bit weight formats, and measure latency "
        "and energy on handset chips.",
    ),
    # Many shared words, another subject: BM25 likes it.
    (
        "decoy",
        "Cheap phone plans and consumer inference",
        "Phones are cheap. We study how consumers draw inference about cheap phone plans from "
        "phone adverts and phone prices.",
    ),
    (
        "d3",
        "Speech recognition for low-resource languages",
        "Self-supervised speech models are adapted to transcribe audio in languages with little "
        "labelled data.",
    ),
    (
        "d4",
        "Protein structure prediction",
        "Protein language models predict three-dimensional structure from sequence.",
    ),
    (
        "d5",
        "Reward models for dialogue agents",
        "We train reward models on human preferences to improve dialogue agents.",
    ),
]


@pytest.mark.slow
def test_hybrid_finds_what_dense_alone_misses(settings, tmp_path: Path, real_embedder) -> None:
    path = write_jsonl(
        tmp_path / "fixture.jsonl",
        [{"id": i, "title": t, "abstract": a} for i, t, a in FIXTURE],
    )
    ingest(settings, read_corpus([path]), [path], real_embedder, progress=False)
    index = PaperIndex.open(settings)

    def top(mode: str) -> str:
        query = "running LLMs on phones cheaply"
        return search(index, real_embedder, query, k=3, mode=mode)[0].paper.paper_id

    assert top("dense") == "near"
    assert top("hybrid") == "gold"
