"""What the harness measures: every metric's definition (`METRICS`) and the formulas.

The retrieval functions take the ranked ids as returned and the set of relevant ids.
A ranking is de-duplicated first (an id counts at its first position only),
so a system can't earn credit twice for one paper, and a ranking shorter than
k is scored as it is, never padded.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# --- What is measured (each also in evals/README.md) ---------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    group: str  # retrieval | citations | answers | summaries
    description: str
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("hit@1", "retrieval", "a gold paper is ranked first (mean over items with gold)"),
        Metric("hit@5", "retrieval", "a gold paper is in the top 5"),
        Metric("recall@5", "retrieval", "share of the gold papers in the top 5, per item"),
        Metric("recall@10", "retrieval", "share of the gold papers in the top 10, per item"),
        Metric("mrr", "retrieval", "1 / rank of the first gold paper (0 if none in the top 10)"),
        Metric("ndcg@10", "retrieval", "binary-gain nDCG@10 against the gold papers"),
        Metric(
            "citation_validity",
            "citations",
            "markers in the raw answer that resolve to a retrieved source / all markers",
        ),
        Metric(
            "citation_recall",
            "citations",
            "claim sentences that have citations which together support them / claim sentences",
        ),
        Metric(
            "citation_precision",
            "citations",
            "precise citations / citations (ALCE: a citation is imprecise when its sentence's "
            "citations don't support it, or it alone doesn't while the others already do)",
        ),
        Metric(
            "cited_sentences",
            "citations",
            "claim sentences that carry a citation / claim sentences",
        ),
        Metric(
            "faithfulness",
            "answers",
            "claim sentences supported by the sources the answer cites / claim sentences; "
            "not supported (including 'the sources don't say') is a failure",
        ),
        Metric("fact_recall", "answers", "gold facts the answer supports / gold facts"),
        Metric("gold_cited", "answers", "gold papers the answer cites / gold papers"),
        Metric(
            "abstention_accuracy",
            "answers",
            "unanswerable questions abstained and answerable ones answered / questions",
        ),
        Metric("abstained_unanswerable", "answers", "unanswerable questions abstained"),
        Metric(
            "abstained_answerable",
            "answers",
            "answerable questions abstained (lower is better)",
            higher_is_better=False,
        ),
        Metric("summary_coverage", "summaries", "gold papers the summary cites / gold papers"),
        Metric("summary_precision", "summaries", "cited papers in the gold set / cited papers"),
        Metric(
            "summary_faithfulness",
            "summaries",
            "brief sentences supported by the papers the brief cites / brief sentences",
        ),
        Metric(
            "summary_citation_recall",
            "summaries",
            "brief sentences whose own citations support them / brief sentences",
        ),
        Metric(
            "summary_citation_precision",
            "summaries",
            "precise citations / citations in the brief's sentences (ALCE, as for answers)",
        ),
    )
}


# --- Retrieval metrics ------------------------------------------------------------------------


def dedupe(ranked: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in ranked if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 when any relevant id is in the top k."""
    return float(any(x in relevant for x in dedupe(ranked)[:k]))


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top k."""
    if not relevant:
        raise ValueError("recall is undefined with no relevant ids")
    return len(set(dedupe(ranked)[:k]) & set(relevant)) / len(set(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """1 / rank of the first relevant id; 0 when none is retrieved. MRR is its mean."""
    for rank, x in enumerate(dedupe(ranked), start=1):
        if x in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str] | dict[str, float], k: int) -> float:
    """Normalised DCG with graded gains (binary when `relevant` is a set), log2 discount.

    The ideal ranking puts every relevant id first, so with more relevant ids
    than k the best achievable is still 1.0.
    """
    gains = relevant if isinstance(relevant, dict) else dict.fromkeys(relevant, 1.0)
    if not gains:
        raise ValueError("nDCG is undefined with no relevant ids")
    dcg = sum(
        gains.get(x, 0.0) / math.log2(rank + 1)
        for rank, x in enumerate(dedupe(ranked)[:k], start=1)
    )
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- Answer metrics ---------------------------------------------------------------------------
#
# Each returns counts, never a bare ratio: the harness stores (numerator, denominator) per item
# and divides only when it aggregates, so a metric over any subset of items (a gate run, the
# items two reports share) is exact, and an item with nothing to score (an abstention has no
# sentences) adds 0/0 instead of a NaN.


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None (reported as "n/a") when there is nothing to score."""
    return numerator / denominator if denominator else None


def citation_validity(markers: Sequence[int], valid: Collection[int]) -> tuple[int, int]:
    """(markers that resolve to a retrieved source, all markers), counted in the raw text the
    backend produced - before the citation check removes the invalid ones."""
    return sum(1 for m in markers if m in valid), len(markers)


def set_coverage(cited: Collection[str], gold: Collection[str]) -> tuple[int, int]:
    """(gold ids cited, gold ids): how much of the gold set an answer or summary cites."""
    gold_set = set(gold)
    return len(gold_set & set(cited)), len(gold_set)


def set_precision(cited: Collection[str], gold: Collection[str]) -> tuple[int, int]:
    """(cited ids in the gold set, distinct cited ids)."""
    cited_set = set(cited)
    return len(cited_set & set(gold)), len(cited_set)
