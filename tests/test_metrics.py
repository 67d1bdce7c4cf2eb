"""Retrieval metrics on hand-computed cases, including the edge cases other harnesses get wrong."""

from __future__ import annotations

import math

import pytest

from assistant.metrics import hit_at_k, ndcg_at_k, recall_at_k, reciprocal_rank


def test_hand_computed_ndcg() -> None:
    # Relevant at ranks 1 and 3 of 2 relevant: DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3).
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0
    assert ndcg_at_k(["a"], {"a"}, 10) == 1.0


def test_graded_ndcg() -> None:
    # Gains 2 and 1 in the wrong order: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3).
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], {"a": 2.0, "b": 1.0}, 10) == pytest.approx(expected)


def test_duplicate_ids_count_once() -> None:
    ranked = ["a", "a", "a", "b"]
    assert recall_at_k(ranked, {"a", "b"}, 2) == 1.0  # de-duplicated, b is at rank 2
    assert ndcg_at_k(ranked, {"a"}, 10) == 1.0  # not 1 + 1/log2(3) + …
    assert reciprocal_rank(["x", "x", "a"], {"a"}) == 0.5


def test_fewer_than_k_results_are_not_padded() -> None:
    assert recall_at_k(["a"], {"a", "b"}, 100) == 0.5
    assert hit_at_k([], {"a"}, 5) == 0.0
    assert ndcg_at_k([], {"a"}, 10) == 0.0


def test_more_relevant_than_k() -> None:
    relevant = {str(i) for i in range(20)}
    assert ndcg_at_k([str(i) for i in range(10)], relevant, 10) == pytest.approx(1.0)
    assert recall_at_k([str(i) for i in range(10)], relevant, 10) == 0.5


def test_mrr_and_hit() -> None:
    assert reciprocal_rank(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], {"a"}) == 0.0
    assert hit_at_k(["x", "a"], {"a"}, 1) == 0.0 and hit_at_k(["x", "a"], {"a"}, 2) == 1.0


def test_no_relevant_ids_is_an_error_not_nan() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], set(), 5)
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], set(), 5)
