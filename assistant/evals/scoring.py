"""Scoring one item: free functions over what the system produced, a judge and the gold.

Each score is a (numerator, denominator) pair, so an item with nothing to score adds 0/0
and the aggregate stays exact. `judge` here is always a function from (claim, evidence)
pairs to their verdicts, judged as one batch (the harness passes its cached judge).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..grounding_check import check_grounding, claim_sentences
from ..text import claim_text, markers_in
from .metrics import (
    citation_validity,
    hit_at_k,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    set_coverage,
    set_precision,
)

RETRIEVAL_K = 10  # papers retrieved for the retrieval metrics (answers use settings.answer_k)

Pair = tuple[str, str]  # (claim, evidence)
PairJudge = Callable[[list[Pair]], dict[Pair, Any]]  # pairs -> their verdicts, one batch


# --- Retrieval ----------------------------------------------------------------------------------


def retrieval_scores(ranked: list[str], gold: list[str]) -> dict[str, list[float]]:
    """The retrieval metrics of a ranking of paper ids; none for an item without gold."""
    if not gold:
        return {}
    scores = {
        "hit@1": hit_at_k(ranked, gold, 1),
        "hit@5": hit_at_k(ranked, gold, 5),
        "recall@5": recall_at_k(ranked, gold, 5),
        "recall@10": recall_at_k(ranked, gold, 10),
        "mrr": reciprocal_rank(ranked, gold),
        "ndcg@10": ndcg_at_k(ranked, gold, 10),
    }
    return {name: [round(value, 6), 1] for name, value in scores.items()}


# --- Answers ------------------------------------------------------------------------------------


def score_answer(
    answer: Any,
    raw: str,
    *,
    ranked: list[str],
    gold: list[str],
    facts: list[str],
    expected_abstain: bool,
    judge: PairJudge,
) -> dict:
    """An answer's record fields and its `scores`: abstention, retrieval (of `ranked`, the
    papers retrieved for its standalone question), and unless it abstained its citations,
    faithfulness and facts. `raw` is the text the backend produced, before the citation
    check removed invalid markers."""
    abstained, how = abstention(answer)
    fields: dict[str, Any] = {
        "standalone": answer.standalone_question,
        "answer": answer.text,
        "abstained": abstained,
        "abstained_by": how,
        "expected_abstain": expected_abstain,
        "citations": [
            {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
            for s in answer.citations
        ],
        "sources": [s.to_json() for s in answer.sources],
        "invalid_markers": answer.check.invalid_markers,
        "prompt_versions": answer.prompt_versions,
        "retrieved": ranked,
    }
    scores: dict[str, list[float]] = {
        "abstention_accuracy": [int(abstained == expected_abstain), 1],
        ("abstained_unanswerable" if expected_abstain else "abstained_answerable"): [
            int(abstained),
            1,
        ],
    }
    scores |= retrieval_scores(ranked, gold)
    if abstained:
        fields["sentences"] = []
        fields["facts"] = [{"fact": f, "supported": False, "score": 0.0} for f in facts]
        fields["not_scored"] = "abstained: no sentences or citations to judge"
        if facts:
            scores["fact_recall"] = [0, len(facts)]
        if gold:
            scores["gold_cited"] = [0, len(gold)]
    else:
        scores |= judged_scores(answer, raw, fields, gold, facts, judge)
    fields["scores"] = scores
    return fields


def judged_scores(
    answer: Any, raw: str, fields: dict, gold: list[str], facts: list[str], judge: PairJudge
) -> dict[str, list[float]]:
    """The scores of an answer that did not abstain; adds its verdicts to `fields`."""
    by_marker = {s.marker: s.paper for s in answer.sources}
    valid = {s.marker for s in answer.sources}
    scores: dict[str, list[float]] = {
        "citation_validity": list(citation_validity(markers_in(raw), valid))
    }
    sentences, fact_rows, judged = judge_answer(answer.text, by_marker, facts, judge)
    fields["sentences"] = sentences
    fields["facts"] = fact_rows
    claims = len(sentences)
    scores["citation_recall"] = [sum(s["supported"] for s in sentences), claims]
    scores["citation_precision"] = [
        sum(len(s["precise"]) for s in sentences),
        sum(len(s["markers"]) for s in sentences),
    ]
    scores["cited_sentences"] = [sum(bool(s["markers"]) for s in sentences), claims]
    scores["faithfulness"] = [sum(s["faithful"] for s in sentences), claims]
    if facts:
        scores["fact_recall"] = [sum(f["supported"] for f in fact_rows), len(facts)]
    if gold:
        cited_ids = [c["paper_id"] for c in fields["citations"]]
        scores["gold_cited"] = list(set_coverage(cited_ids, gold))
    fields["judge_pairs"] = judged
    return scores


def judge_answer(
    text: str, papers: dict[int, Any], facts: list[str], judge: PairJudge
) -> tuple[list[dict], list[dict], int]:
    """Per-sentence verdicts (citation recall and precision, faithfulness, the evidence
    sentence) and per-fact ones, with the number of distinct pairs judged: the library's
    one grounding check (assistant/grounding_check.py), as the chat page runs it."""
    check = check_grounding(text, papers, judge, facts, exempt_headers())
    return [row.to_json() for row in check.sentences], check.facts, check.pairs_judged


def exempt_headers() -> tuple[str, ...]:
    """The backends' fixed lines ("Extractive answer: ..."), which claim nothing."""
    from ..answer import ABSTAIN_HEADER
    from ..extractive import EXTRACTIVE_HEADER

    return (EXTRACTIVE_HEADER, ABSTAIN_HEADER)


def answer_claims(text: str) -> list[tuple[str, frozenset[int]]]:
    """Each claim sentence as the judge reads it, with its markers."""
    sentences = claim_sentences(text, exempt_headers())
    return [(claim_text(s), frozenset(markers_in(s))) for s in sentences]


DECLINES = re.compile(
    r"\b(?:(?:do|does|did)\s*n[o']t|cannot|can't|don't|doesn't)\s+(?:\w+\s+){0,3}?"
    r"(?:cover|answer|address|mention|discuss|contain|describe|provide|say|explain)\b"
    r"|\bnot (?:covered|addressed|mentioned|discussed)\b|\bno (?:information|mention)\b",
    re.IGNORECASE,
)


def abstention(answer: Any) -> tuple[bool, str | None]:
    """Did the answer abstain, and who decided: the pipeline (nothing relevant retrieved) or
    the model (an answer that cites nothing and says the sources don't cover the question)."""
    if answer.abstained:
        return True, "pipeline"
    if not answer.citations and DECLINES.search(answer.text):
        return True, "model"
    return False, None


# --- Summaries ----------------------------------------------------------------------------------


def score_summary(brief: Any, gold: list[str], judge: PairJudge) -> dict:
    """A brief's record fields and scores: the distinct papers it cites against the gold, and
    each of its sentences against the papers it cites, by the check answers get (a brief's
    quoted sentence with a wrong [n] is as misleading as an answer's)."""
    from ..brief_writing import EXEMPT

    data = brief.to_json()
    cited = list(dict.fromkeys(c["paper_id"] for c in data["citations"]))
    papers = {s.marker: s.paper for s in brief.citations}
    check = check_grounding(brief.prose(), papers, judge, exempt=EXEMPT)
    sentences = [row.to_json() for row in check.sentences]
    return {
        "answer": data["markdown"],
        "citations": data["citations"],
        "themes": data["themes"],
        "cited": cited,
        "prompt_versions": data["prompt_versions"],
        "sentences": sentences,
        "judge_pairs": check.pairs_judged,
        "scores": summary_scores(cited, gold) | brief_grounding_scores(sentences),
    }


def score_declined_summary(message: str, gold: list[str]) -> dict:
    """Declining a topic with gold papers is a miss, scored as one, not a crash."""
    return {"abstained": True, "answer": message, "cited": [], "scores": summary_scores([], gold)}


def summary_scores(cited: list[str], gold: list[str]) -> dict[str, list[float]]:
    return {
        "summary_coverage": list(set_coverage(cited, gold)),
        "summary_precision": list(set_precision(cited, gold)),
    }


def brief_grounding_scores(sentences: list[dict]) -> dict[str, list[float]]:
    """Faithfulness and ALCE citation recall and precision over a brief's claim sentences."""
    return {
        "summary_faithfulness": [sum(s["faithful"] for s in sentences), len(sentences)],
        "summary_citation_recall": [sum(s["supported"] for s in sentences), len(sentences)],
        "summary_citation_precision": [
            sum(len(s["precise"]) for s in sentences),
            sum(len(s["markers"]) for s in sentences),
        ],
    }


class CachedJudge:
    """A judge behind the harness's verdict cache, for a caller that takes any Judge (the
    summary's agreements): a re-run judges nothing again, and the pairs are counted."""

    def __init__(self, judge: Any, cached: Callable[[list[tuple[str, str]]], dict]) -> None:
        self.name = judge.name
        self.describe = judge.describe
        self.cached = cached

    def judge_many(self, pairs: list[tuple[str, str]]) -> list[Any]:
        verdicts = self.cached(pairs)
        return [verdicts[pair] for pair in pairs]
