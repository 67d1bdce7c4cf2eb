"""Does the grounding judge tell a near-miss question from an answerable one?

    .venv/bin/python benchmarks/answerability.py

On evals/datasets/answerability.jsonl (60 near-miss unanswerable questions that name a real
method but ask what its abstract doesn't report, and 55 answerable controls; tune and test
halves): today's abstention (similarity and term coverage thresholds) beside today's plus
the judge's view of the question against the top sources. The question, as a claim, is
judged against each of the top three retrieved abstracts; the best score is "does any source
answer this?". The cut is chosen on the tune half (most unanswerable abstained with at most
5% of answerable ones); the test half is reported with it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from common import REPO, SEED_CORPUS, SEED_INDEX, open_index

from assistant.answer import relevance_of
from assistant.grounding import LocalJudge
from assistant.retrieval import retrieve
from assistant.settings import Settings

DATASET = REPO / "evals" / "datasets" / "answerability.jsonl"
WH = re.compile(
    r"^(?:what|which|how|does|do|did|is|are|was|were|can|could|why|when|where|who|in|on|"
    r"for|according|to|per)\b[\w\s,-]*?\b(?:does|do|did|is|are|was|were)\b\s+",
    re.IGNORECASE,
)


def as_claim(question: str) -> str:
    """The question with its wh-opening and question mark dropped: what is left names what
    it asks about, which the judge can check a source for."""
    text = question.strip().rstrip("?").strip()
    stripped = WH.sub("", text, count=1)
    return stripped if len(stripped.split()) >= 3 else text


def rates(abstain: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float]:
    return float(abstain[unanswerable].mean()), float(abstain[~unanswerable].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=SEED_INDEX)
    args = parser.parse_args()
    settings = Settings(index_dir=args.index, llm="extractive")
    opened = open_index(SEED_CORPUS, settings)
    index, embedder = opened.index, opened.embedder
    judge = LocalJudge()
    items = [json.loads(line) for line in DATASET.read_text().splitlines() if line.strip()]
    today, best = [], []
    for item in items:
        retrieval = retrieve(index, embedder, item["question"], k=settings.answer_k)
        today.append(not retrieval.hits or relevance_of(index, retrieval).too_low(settings))
        top = [h.paper for h in retrieval.hits[:3]]
        pairs = [(as_claim(item["question"]), f"{p.title}. {p.abstract}") for p in top]
        best.append(max((v.score for v in judge.judge_many(pairs)), default=0.0))
    today_a, best_a = np.array(today), np.array(best)
    unanswerable = np.array([i["kind"] == "unanswerable" for i in items])
    tune = np.array([i["split"] == "tune" for i in items])
    cuts = [*sorted(set(best_a[tune])), 1.01]

    def on_tune(c: float) -> tuple[bool, float]:
        u, a = rates(((best_a < c) | today_a)[tune], unanswerable[tune])
        return a <= 0.05, u

    cut = max(cuts, key=on_tune)
    print(f"judge cut chosen on the tune half: {cut:.3f}\n")
    print("| half | rule | unanswerable abstained | answerable abstained |")
    print("|---|---|---|---|")
    for name, mask in (("tune", tune), ("test", ~tune)):
        for rule, abstain in (
            ("today (similarity, coverage)", today_a),
            ("today + judge", today_a | (best_a < cut)),
        ):
            u, a = rates(abstain[mask], unanswerable[mask])
            print(f"| {name} ({mask.sum()}) | {rule} | {u:.3f} | {a:.3f} |")


if __name__ == "__main__":
    main()
