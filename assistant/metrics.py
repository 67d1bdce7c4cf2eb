"""Retrieval metrics against gold paper ids.

Every function takes the ranked ids as returned and the set of relevant ids.
A ranking is de-duplicated first (an id counts at its first position only),
so a system can't earn credit twice for one paper, and a ranking shorter than
k is scored as it is, never padded.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence


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
