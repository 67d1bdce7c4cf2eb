"""Cited answers from the offline extractive backend, on evals/datasets/answers.jsonl.

    .venv/bin/python benchmarks/answers.py [--dataset PATH] [--calibrate]

Prints, side by side with the targets:
- the share of answers whose markers all point to a source;
- the share of answer sentences that carry a citation;
- the abstention rate on answerable and on unanswerable questions;
- p50 latency of a warm `ask` (model loaded; first and second pass over the
  questions, since sentence vectors are cached per paper after first use).

With --calibrate it also prints how each abstention threshold would split the
questions (the IDF-weighted share of the question's terms found in the top
three papers, at the configured similarity floor), which is how
`abstain_coverage` in assistant/settings.py was chosen.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import REPO, SEED_CORPUS, SEED_INDEX, open_index, read_jsonl

from assistant.answer import Answer, ask, relevance_of
from assistant.extractive import ExtractiveBackend
from assistant.retrieval import retrieve
from assistant.settings import Settings
from assistant.types import Conversation


def run_item(item: dict, index, embedder, backend, settings) -> Answer:
    conversation = Conversation()
    for turn in item.get("turns", [])[:-1]:  # follow-ups: earlier turns first
        ask(turn, conversation, index, embedder, backend, settings)
    return ask(item["question"], conversation, index, embedder, backend, settings)


def cited_share(answers: list[Answer]) -> float:
    """Claim sentences with a citation, over all answers that didn't abstain."""
    claims = sum(a.check.claims for a in answers if not a.abstained)
    uncited = sum(len(a.check.uncited_sentences) for a in answers if not a.abstained)
    return 1 - uncited / claims if claims else 1.0


def calibrate(items: list[dict], index, embedder, settings) -> None:
    """How each coverage threshold (at the configured similarity floor) splits the questions."""
    rows = []
    for item in items:
        question = item.get("standalone", item["question"])
        relevance = relevance_of(index, retrieve(index, embedder, question, k=settings.answer_k))
        low = relevance.similarity < settings.abstain_similarity
        rows.append((relevance.coverage, low, item["kind"]))
    print(
        f"\ncoverage threshold (similarity floor {settings.abstain_similarity})"
        "  answerable abstained  unanswerable abstained"
    )
    for t in [x / 100 for x in range(35, 61, 2)]:
        ans = [c < t or low for c, low, kind in rows if kind != "unanswerable"]
        una = [c < t or low for c, low, kind in rows if kind == "unanswerable"]
        print(f"{t:>10.2f}  {sum(ans) / len(ans):>20.3f}  {sum(una) / len(una):>22.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", type=Path, default=REPO / "evals" / "datasets" / "answers.jsonl"
    )
    parser.add_argument("--index", type=Path, default=SEED_INDEX)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()

    settings = Settings(index_dir=args.index, llm="extractive")
    opened = open_index(SEED_CORPUS, settings)
    index, embedder = opened.index, opened.embedder
    backend = ExtractiveBackend(embedder)
    items = read_jsonl(args.dataset)

    ask("warm up the models", Conversation(), index, embedder, backend, settings)
    passes: list[list[float]] = []
    answers: list[tuple[dict, Answer]] = []
    for _ in range(2):
        latencies = []
        answers = []
        for item in items:
            started = time.perf_counter()
            answers.append((item, run_item(item, index, embedder, backend, settings)))
            latencies.append(time.perf_counter() - started)
        passes.append(latencies)

    answerable = [a for i, a in answers if i["kind"] != "unanswerable"]
    unanswerable = [a for i, a in answers if i["kind"] == "unanswerable"]
    valid = sum(1 for _, a in answers if not a.check.invalid_markers) / len(answers)
    rows = [
        ("answers with every marker valid", f"{valid:.1%}", ">= 100%"),
        ("answer sentences with a citation", f"{cited_share(answerable):.1%}", ">= 95%"),
        (
            "unanswerable questions abstained",
            f"{sum(a.abstained for a in unanswerable) / len(unanswerable):.1%}",
            ">= 90%",
        ),
        (
            "answerable questions abstained",
            f"{sum(a.abstained for a in answerable) / len(answerable):.1%}",
            "<= 5%",
        ),
        ("warm ask p50, first pass", f"{statistics.median(passes[0]) * 1000:.0f} ms", "<= 300 ms"),
        ("warm ask p50, second pass", f"{statistics.median(passes[1]) * 1000:.0f} ms", ""),
    ]
    counts: dict[str, int] = {}
    for i, _ in answers:
        counts[i["kind"]] = counts.get(i["kind"], 0) + 1
    print(
        f"Extractive answers on {len(items)} questions ({counts}); abstain below "
        f"similarity {settings.abstain_similarity} or coverage {settings.abstain_coverage}"
    )
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>9}  {target}")
    wrongly = [
        (i["id"], round(a.relevance.similarity, 2), round(a.relevance.coverage, 2))
        for i, a in answers
        if a.abstained != (i["kind"] == "unanswerable")
    ]
    print(f"misjudged abstentions: {wrongly}")
    if args.calibrate:
        calibrate(items, index, embedder, settings)


if __name__ == "__main__":
    main()
