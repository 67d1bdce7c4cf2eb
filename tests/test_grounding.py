"""The grounding judge: its contract (empty inputs, determinism, one embedding call, the
weights file) with the fake embedder, and its verdicts on clear cases with the real MiniLM."""

from __future__ import annotations

import json
import math

import pytest

from assistant.grounding import (
    FEATURES,
    MODEL_PATH,
    LocalJudge,
    Verdict,
    content_words,
    negated_claim,
    numbers_in,
    terms,
)
from assistant.index import bm25_tokenize

EVIDENCE = (
    "In a randomised trial of 2,400 adults over 60, daily low-dose aspirin reduced the risk of "
    "ischaemic stroke by 22% compared with placebo over five years. Major bleeding was more "
    "common in the aspirin group."
)
PAIRS = [
    ("Daily low-dose aspirin reduced the risk of ischaemic stroke by 22%.", EVIDENCE),
    ("Vitamin D supplements prevent hip fractures in elderly women.", EVIDENCE),
    ("Bleeding was more common with aspirin.", EVIDENCE),
]


def finite_probability(v: Verdict) -> bool:
    return not math.isnan(v.score) and 0.0 <= v.score <= 1.0


def test_empty_claim_or_evidence_is_not_supported_without_embedding(fake_embedder):
    judge = LocalJudge(fake_embedder)
    for claim, evidence in [("", EVIDENCE), ("A claim.", ""), ("   ", "\n\t"), ("", "")]:
        assert judge.judge(claim, evidence) == Verdict(0.0, "not_supported")
    assert judge.judge_many([]) == []
    assert fake_embedder.calls == []


def test_judge_many_embeds_once_and_keeps_order(fake_embedder):
    judge = LocalJudge(fake_embedder)
    verdicts = judge.judge_many([PAIRS[0], ("", EVIDENCE), PAIRS[1]])
    assert len(fake_embedder.calls) == 1
    assert verdicts[1] == Verdict(0.0, "not_supported")
    for verdict, pair in [(verdicts[0], PAIRS[0]), (verdicts[2], PAIRS[1])]:
        alone = judge.judge(*pair)  # the same up to float rounding of a batched product
        assert (verdict.label, verdict.score) == (alone.label, pytest.approx(alone.score))


def test_deterministic_and_never_nan(fake_embedder):
    judge = LocalJudge(fake_embedder)
    odd = [("???", "..."), ("42", "42"), ("No.", "Not at all, never."), ("x " * 400, "y")]
    first = judge.judge_many(PAIRS + odd)
    assert first == judge.judge_many(PAIRS + odd)
    assert all(finite_probability(v) for v in first)
    for v in first:
        assert v.label == ("supported" if v.score >= judge.threshold else "not_supported")


def test_an_ungrounded_number_caps_the_score(fake_embedder):
    judge = LocalJudge(fake_embedder)
    faithful, changed = judge.judge_many(
        [(PAIRS[0][0], EVIDENCE), (PAIRS[0][0].replace("22%", "45%"), EVIDENCE)]
    )
    assert changed.label == "not_supported"
    assert changed.score <= judge.veto_cap < faithful.score


def test_weights_file_has_the_documented_keys():
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    for key in [
        "features", "weights", "bias", "mean", "scale", "threshold", "veto_cap", "idf",
        "training_data", "held_out", "cross_validation", "command", "embedding_model",
    ]:  # fmt: skip
        assert key in model, key
    n = len(model["features"])
    assert set(model["features"]) <= FEATURES.keys()
    assert len(model["weights"]) == len(model["mean"]) == len(model["scale"]) == n
    assert 0 < model["threshold"] < 1
    assert model["idf"]["table"] and model["idf"]["unseen"] > 0
    assert "benchmarks/grounding.py --train" in model["command"]
    assert 0 < model["held_out"]["pooled"]["balanced_accuracy"] <= 1


def test_terms_are_bm25_terms():
    text = "COVID-19 patients' ICU admissions were reduced, and the patients recovered faster."
    assert terms(text) == set(bm25_tokenize([text])[0])
    assert content_words(text).count("patients") == 1


def test_negated_claim():
    assert negated_claim("Aspirin reduces the risk of stroke.") == (
        "Aspirin increases the risk of stroke."
    )
    assert negated_claim("Vitamin C does not cure COVID-19.") == "Vitamin C does cure COVID-19."
    assert negated_claim("The vaccine is safe.") == "The vaccine is unsafe."
    assert negated_claim("Masks work.") == "It is not true that masks work."


def test_numbers_skip_the_digits_of_names():
    assert numbers_in("COVID-19, SARS-CoV-2, IL-6, OCT3/4 and 5G; 2,400 adults, 22%, 1.5 mg") == {
        "2400",
        "22",
        "1.5",
    }


@pytest.mark.slow
def test_clear_cases_with_the_real_model(real_embedder):
    judge = LocalJudge(real_embedder)
    restated, number, unrelated, opposite = judge.judge_many(
        [
            ("Daily low-dose aspirin lowered the risk of ischaemic stroke by 22%.", EVIDENCE),
            ("Daily low-dose aspirin lowered the risk of ischaemic stroke by 45%.", EVIDENCE),
            ("Vitamin D supplements prevent hip fractures in elderly women.", EVIDENCE),
            ("Daily low-dose aspirin increased the risk of ischaemic stroke.", EVIDENCE),
        ]
    )
    assert restated.label == "supported", restated
    assert number.label == "not_supported", number
    assert unrelated.label == "not_supported", unrelated
    assert opposite.label == "not_supported", opposite
    assert unrelated.score < restated.score
