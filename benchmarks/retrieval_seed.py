"""Retrieval quality on the seed corpus, with the hand-written questions in evals/datasets/.

    .venv/bin/python benchmarks/retrieval_seed.py [--dataset PATH] [--json OUT]

Builds (or reuses, incrementally) an index of data/papers with the local MiniLM
under benchmarks/out/seed-index, runs every question in the three modes and
prints, side by side with the targets:
- long questions (paraphrases of one abstract): MRR and recall@5;
- short queries (4-12 words, a researcher's words): recall@5 and MRR;
- multi-paper questions: the share of all their gold papers found in the top 10.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import REPO, SEED_CORPUS, SEED_INDEX, open_index

from assistant.corpus import normalize_title
from assistant.evals.metrics import mean, recall_at_k, reciprocal_rank
from assistant.index import PaperIndex
from assistant.retrieval import MODES, search
from assistant.settings import Settings

TARGETS = {
    "long MRR": 0.98,
    "short recall@5": 0.90,
    "multi gold in top 10": 0.95,
}


def load_questions(path: Path, index: PaperIndex) -> list[dict]:
    """Gold titles -> paper ids, through every title a paper is known by."""
    by_title = {
        normalize_title(t): p.paper_id for p in index.papers.values() for t in [p.title, *p.aliases]
    }
    questions = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        missing = [t for t in item["gold_titles"] if normalize_title(t) not in by_title]
        if missing:
            raise SystemExit(f"{path}:{line_no}: gold_titles: not in the corpus: {missing}")
        item["gold"] = {by_title[normalize_title(t)] for t in item["gold_titles"]}
        questions.append(item)
    return questions


def evaluate(index: PaperIndex, embedder, questions: list[dict]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for mode in MODES:
        per_kind: dict[str, list[tuple[float, float, float, int]]] = {}
        for q in questions:
            ranked = [
                h.paper.paper_id for h in search(index, embedder, q["question"], k=10, mode=mode)
            ]
            found_in_10 = len(set(ranked[:10]) & q["gold"])
            per_kind.setdefault(q["kind"], []).append(
                (
                    reciprocal_rank(ranked, q["gold"]),
                    recall_at_k(ranked, q["gold"], 5),
                    found_in_10,
                    len(q["gold"]),
                )
            )
        figures[mode] = {
            "long MRR": mean([r[0] for r in per_kind.get("long", [])]),
            "long recall@5": mean([r[1] for r in per_kind.get("long", [])]),
            "short recall@5": mean([r[1] for r in per_kind.get("short", [])]),
            "short MRR": mean([r[0] for r in per_kind.get("short", [])]),
            "multi gold in top 10": sum(r[2] for r in per_kind.get("multi", []))
            / max(sum(r[3] for r in per_kind.get("multi", [])), 1),
        }
    return figures


def print_table(figures: dict[str, dict[str, float]], counts: dict[str, int]) -> None:
    metrics = list(next(iter(figures.values())))
    print(f"Seed corpus retrieval ({', '.join(f'{n} {k}' for k, n in counts.items())} questions)")
    print(f"{'metric':<22}" + "".join(f"{m:>9}" for m in figures) + f"{'target':>9}")
    for metric in metrics:
        target = TARGETS.get(metric)
        row = "".join(f"{figures[m][metric]:>9.3f}" for m in figures)
        print(f"{metric:<22}{row}{(f'>= {target:.2f}' if target else ''):>9}")
    hybrid = figures["hybrid"]
    ahead = all(hybrid[m] >= max(figures["dense"][m], figures["bm25"][m]) for m in TARGETS)
    print(f"hybrid ahead of each mode alone on every target metric: {'yes' if ahead else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", type=Path, default=REPO / "evals" / "datasets" / "retrieval.jsonl"
    )
    parser.add_argument("--index", type=Path, default=SEED_INDEX)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    opened = open_index(SEED_CORPUS, Settings(index_dir=args.index))
    index, embedder = opened.index, opened.embedder
    questions = load_questions(args.dataset, index)
    counts: dict[str, int] = {}
    for q in questions:
        counts[q["kind"]] = counts.get(q["kind"], 0) + 1
    figures = evaluate(index, embedder, questions)
    print_table(figures, counts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"counts": counts, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
