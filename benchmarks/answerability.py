"""Which queries abstain: near misses, off-topic questions, answerable phrases and questions.

    .venv/bin/python benchmarks/answerability.py

Each row is one set of queries and the share of it that abstains (for an answerable set,
lower is better):
- `answerability.jsonl`: 60 near-miss questions that name a real method but ask what its
  abstract doesn't report, and 55 answerable controls; tune and test halves;
- `answers.jsonl`, the eval's: off-topic questions and answerable ones (follow-ups as their
  standalone question);
- the test halves of `retrieval_short.jsonl` (phrases in the reader's words) and
  `retrieval_multi.jsonl`, and the long questions of `retrieval.jsonl`: all answerable.

The columns:
- strict: similarity, term coverage and unknown names for every query, the rule before
  phrases were told from questions;
- shipped: a phrase needs only a close chunk (`Relevance.too_low` in assistant/answer.py);
- shipped + judge: also abstain when the grounding judge, reading the question (its
  wh-opening dropped) against each of the top three abstracts, scores none of them above a
  cut, chosen on the tune half of answerability.jsonl (most near misses abstained with at
  most 5% of its answerable controls). Measured, not shipped.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from common import REPO, SEED_CORPUS, SEED_INDEX, open_index

from assistant.answer import is_question, relevance_of
from assistant.grounding import LocalJudge
from assistant.retrieval import retrieve
from assistant.settings import Settings

DATASETS = REPO / "evals" / "datasets"
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


def read(name: str) -> list[dict]:
    lines = (DATASETS / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


Query = tuple[str, frozenset[str]]  # the text, and its gold papers' titles


def query_sets() -> list[tuple[str, bool, list[Query]]]:
    """(row name, should abstain, queries)."""
    near, answers = read("answerability.jsonl"), read("answers.jsonl")

    def pick(items: list[dict], unanswerable: bool | None = None, split: str = "") -> list[Query]:
        return [
            (i.get("standalone", i["question"]), frozenset(i.get("gold_titles", ())))
            for i in items
            if unanswerable in (None, i["kind"] == "unanswerable") and split in ("", i.get("split"))
        ]

    return [
        ("answerability.jsonl near misses, tune", True, pick(near, True, "tune")),
        ("answerability.jsonl near misses, test", True, pick(near, True, "test")),
        ("answerability.jsonl answerable, tune", False, pick(near, False, "tune")),
        ("answerability.jsonl answerable, test", False, pick(near, False, "test")),
        ("answers.jsonl off-topic (the eval's)", True, pick(answers, True)),
        ("answers.jsonl answerable (the eval's)", False, pick(answers, False)),
        (
            "retrieval_short.jsonl test half, phrases",
            False,
            pick(read("retrieval_short.jsonl"), split="test"),
        ),
        (
            "retrieval_multi.jsonl test half",
            False,
            pick(read("retrieval_multi.jsonl"), split="test"),
        ),
        ("retrieval.jsonl long questions", False, pick(read("retrieval.jsonl"))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=SEED_INDEX)
    args = parser.parse_args()
    settings = Settings(index_dir=args.index, llm="extractive")
    opened = open_index(SEED_CORPUS, settings)
    index, embedder = opened.index, opened.embedder
    judge = LocalJudge()

    sets = query_sets()
    rows = []  # per set and query: strict, shipped, best judge score, a gold paper in the top 3
    for _, _, queries in sets:
        strict, shipped, pairs, owner, found = [], [], [], [], []
        for n, (query, gold) in enumerate(queries):
            retrieval = retrieve(index, embedder, query, k=settings.answer_k)
            relevance = relevance_of(index, retrieval)
            empty = not retrieval.hits
            strict.append(empty or relevance.too_low(settings))
            shipped.append(empty or relevance.too_low(settings, phrase=not is_question(query)))
            found.append(bool(gold & {h.paper.title for h in retrieval.hits[:3]}))
            for hit in retrieval.hits[:3]:
                pairs.append((as_claim(query), f"{hit.paper.title}. {hit.paper.abstract}"))
                owner.append(n)
        best = np.zeros(len(queries))
        for n, verdict in zip(owner, judge.judge_many(pairs), strict=True):
            best[n] = max(best[n], verdict.score)
        rows.append((np.array(strict), np.array(shipped), best, np.array(found)))

    # The judge's cut: on the tune half, the most near misses for at most 5% of controls.
    (_, shipped_near, near, _), (_, shipped_ok, ok, _) = rows[0], rows[2]
    cuts = [*sorted(set(near) | set(ok)), 1.01]
    fine = [c for c in cuts if (shipped_ok | (ok < c)).mean() <= 0.05]
    cut = max(fine, key=lambda c: (shipped_near | (near < c)).mean())
    print(f"judge cut, chosen on answerability.jsonl's tune half: {cut:.3f}\n")
    print(
        "| queries | n | should abstain | abstained: strict | shipped | shipped + judge "
        "| answered with a gold paper in the top 3: strict | shipped |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (name, unanswerable, queries), (strict, shipped, best, found) in zip(
        sets, rows, strict=True
    ):
        judged = shipped | (best < cut)
        answered = (
            ("", "")
            if unanswerable
            else tuple(f"{(found & ~abstained).mean():.3f}" for abstained in (strict, shipped))
        )
        print(
            f"| {name} | {len(queries)} | {'yes' if unanswerable else 'no'} | "
            f"{strict.mean():.3f} | {shipped.mean():.3f} | {judged.mean():.3f} | "
            f"{answered[0]} | {answered[1]} |"
        )


if __name__ == "__main__":
    main()
