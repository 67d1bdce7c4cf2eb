"""Retrieval metrics on hand-computed cases, including the edge cases other harnesses get wrong."""

from __future__ import annotations

import math

import pytest

from assistant.evals.metrics import (
    citation_validity,
    hit_at_k,
    ndcg_at_k,
    ratio,
    recall_at_k,
    reciprocal_rank,
    set_coverage,
    set_precision,
)
from assistant.grounding_check import alce_pairs_needed, alce_sentence


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


# --- Answer metrics -----------------------------------------------------------------------------


def oracle(*supporting: set[int]):
    """supports(S) is True when S contains one of the given supporting sets."""
    return lambda cited: any(s <= cited for s in supporting)


def test_alce_single_citation_precise_iff_it_supports() -> None:
    good = alce_sentence({1}, oracle({1}))
    assert (good.recall, good.precise, good.imprecise) == (1, {1}, frozenset())
    bad = alce_sentence({2}, oracle({1}))
    assert (bad.recall, bad.precise, bad.imprecise) == (0, frozenset(), {2})


def test_alce_redundant_citation_is_imprecise() -> None:
    # [1] supports alone; [2] doesn't, and [1] without it still supports: [2] adds nothing.
    result = alce_sentence({1, 2}, oracle({1}))
    assert result.recall == 1 and result.precise == {1} and result.imprecise == {2}


def test_alce_citations_needed_together_are_both_precise() -> None:
    # Neither supports alone, both together do: removing either breaks support.
    result = alce_sentence({1, 2}, oracle({1, 2}))
    assert result.recall == 1 and result.precise == {1, 2} and not result.imprecise


def test_alce_two_sufficient_citations_are_both_precise() -> None:
    # Each supports alone: neither fails condition (a), so both count as precise.
    result = alce_sentence({1, 2}, oracle({1}, {2}))
    assert result.recall == 1 and result.precise == {1, 2}


def test_alce_unsupported_sentence_makes_every_citation_imprecise() -> None:
    result = alce_sentence({1, 2, 3}, oracle({4}))
    assert result.recall == 0 and result.imprecise == {1, 2, 3} and not result.precise


def test_alce_uncited_sentence_has_recall_zero_and_no_citations() -> None:
    result = alce_sentence(set(), oracle(set()))  # even an oracle that supports anything
    assert result.recall == 0 and not result.precise and not result.imprecise


def test_alce_three_citations_one_redundant() -> None:
    # {1,2} together support; 3 is irrelevant; 1 and 2 are each needed.
    result = alce_sentence({1, 2, 3}, oracle({1, 2}))
    assert result.recall == 1 and result.precise == {1, 2} and result.imprecise == {3}


def test_alce_pairs_needed_cover_every_question_alce_asks() -> None:
    asked: list[frozenset[int]] = []

    def recording(cited: frozenset[int]) -> bool:
        asked.append(cited)
        return 1 in cited

    alce_sentence({1, 2, 3}, recording)
    assert set(asked) <= set(alce_pairs_needed({1, 2, 3}))
    assert alce_pairs_needed([]) == []
    assert alce_pairs_needed([5]) == [frozenset({5})]


def test_citation_validity_counts_every_marker() -> None:
    assert citation_validity([1, 2, 9, 1], {1, 2, 3}) == (3, 4)
    assert citation_validity([], {1}) == (0, 0)
    assert ratio(0, 0) is None  # n/a, never NaN
    assert ratio(3, 4) == 0.75


def test_set_coverage_and_precision() -> None:
    gold = {"a", "b", "c", "d"}
    assert set_coverage(["a", "b", "x", "a"], gold) == (2, 4)
    assert set_precision(["a", "b", "x", "a"], gold) == (2, 3)  # distinct cited ids
    assert set_precision([], gold) == (0, 0)


def test_hand_computed_ndcg_at_small_k_and_duplicates() -> None:
    # k=2 cuts the ranking before the second relevant id; the ideal has both in the top 2.
    expected = 1.0 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, 2) == pytest.approx(expected)
    # A duplicate must not push "b" out of the top 2 nor count twice.
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)
    assert hit_at_k(["x", "x", "a"], {"a"}, 2) == 1.0
