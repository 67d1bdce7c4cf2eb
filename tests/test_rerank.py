"""The reranker's mixing of its probabilities with fused scores (the model itself is trained
and measured by training/reranker.py and the benchmarks, not shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.rerank import Reranker, rerank
from assistant.types import Hit, Paper


def hits(scores: list[float]) -> list[Hit]:
    return [
        Hit(i + 1, Paper(f"p{i}", f"Paper {i}", "An abstract."), s, "snippet", f"p{i}#0")
        for i, s in enumerate(scores)
    ]


def test_rerank_reorders_the_head_and_keeps_the_tail_after_it() -> None:
    ranked = rerank(hits([1.0, 0.9, 0.8, 0.7]), np.array([0.1, 0.4, 0.95]), weight=0.5)
    assert [h.paper.paper_id for h in ranked] == ["p2", "p1", "p0", "p3"]
    assert [h.rank for h in ranked] == [1, 2, 3, 4]
    # With no weight on the reranker the fused order stands; with all of it, its own.
    same = rerank(hits([1.0, 0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.95]), weight=0.0)
    assert [h.paper.paper_id for h in same] == ["p0", "p1", "p2", "p3"]
    only = rerank(hits([1.0, 0.9]), np.array([0.3, 0.4]), weight=1.0)
    assert [h.paper.paper_id for h in only] == ["p1", "p0"]
    # A depth past the hits reads what there is.
    assert len(rerank(hits([1.0]), np.array([0.5, 0.5]), weight=0.5)) == 1


def test_a_missing_model_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"training\.reranker"):
        Reranker(tmp_path)
