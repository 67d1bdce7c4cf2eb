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
    # Equal weights: a short query like this one leans on dense by default
    # (short_dense_boost), which on six papers is enough to side with dense here.
    index = PaperIndex.open(settings.model_copy(update={"short_dense_boost": 1.0}))

    def top(mode: str) -> str:
        query = "running LLMs on phones cheaply"
        return search(index, real_embedder, query, k=3, mode=mode)[0].paper.paper_id

    assert top("dense") == "near"
    assert top("hybrid") == "gold"


def test_question_parts() -> None:
    from assistant.retrieval import question_parts

    assert question_parts(
        "How do methods that prune attention heads compare with methods that quantize weights?"
    ) == ["How do methods that prune attention heads", "methods that quantize weights?"]
    # Items after the first keep the words before the list; a leading setting goes in all.
    assert question_parts(
        "For machine translation, which papers use a pretrained encoder, a language-model prior "
        "or prompting of large models?"
    ) == [
        "machine translation which papers use a pretrained encoder",
        "machine translation which papers use a pretrained encoder a language-model prior",
        "machine translation which papers use a pretrained encoder prompting of large models?",
    ]
    # Single words are glued until a piece has two subject terms; one thing has no parts.
    assert question_parts("Which papers control the truthfulness, toxicity or bias?") == [
        "Which papers control the truthfulness",
        "Which papers control the truthfulness toxicity bias?",
    ]
    assert question_parts("Which papers build speech recognition for rare languages?") == []
    # A comma without "or"/"and" sets off a clause; what "rather than" names is not wanted.
    assert question_parts("Can a model skip layers, exiting early on easy tokens?") == []
    assert question_parts(
        "Which suites test LLMs in many languages rather than English, or across cultures?"
    ) == [
        "Which suites test LLMs in many languages",
        "Which suites test LLMs in many languages across cultures?",
    ]


def test_feedback_query_mixes_the_query_with_the_feedback_terms() -> None:
    from assistant.retrieval import feedback_query

    query = feedback_query(
        ["spike", "llm"],
        ["Spiking neurons convert networks. Spiking networks save energy.", "Energy use."],
        [2.0, 1.0],
        n_terms=2,
        weight=0.4,
    )
    assert query["spike"] == pytest.approx(0.3) and query["llm"] == pytest.approx(0.3)
    expansion = {t: w for t, w in query.items() if t not in ("spike", "llm")}
    assert len(expansion) == 2 and sum(expansion.values()) == pytest.approx(0.4)
    assert "energi" in expansion  # in both texts: the most votes


def test_a_comparison_question_retrieves_both_sides(settings, corpus, fake_embedder) -> None:
    from conftest import run_ingest

    from assistant.retrieval import question_parts

    run_ingest(settings, [corpus], fake_embedder)
    question = (
        "How do methods for protein structure folding with transformers compare with methods "
        "for reward preference models of dialogue agents?"
    )
    index = PaperIndex.open(settings.model_copy(update={"split_questions": True}))
    hits = search(index, fake_embedder, question, k=2)
    assert {h.paper.paper_id for h in hits} == {"b0", "b1"}
    assert fake_embedder.calls[-1] == len(question_parts(question)) == 2  # one batch


def test_short_queries_lean_on_dense_unless_told_not_to(settings, corpus, fake_embedder) -> None:
    from conftest import run_ingest

    run_ingest(settings, [corpus], fake_embedder)
    query = "cache attention quantization"
    leaning = PaperIndex.open(settings.model_copy(update={"short_dense_boost": 3.0}))
    level = PaperIndex.open(settings.model_copy(update={"short_dense_boost": 1.0}))

    def scores(index: PaperIndex, **kw) -> list[tuple[str, float]]:
        return [
            (h.paper.paper_id, round(h.score, 6)) for h in search(index, fake_embedder, query, **kw)
        ]

    assert scores(leaning) != scores(level)
    assert scores(leaning, short_boost=False) == scores(level)
