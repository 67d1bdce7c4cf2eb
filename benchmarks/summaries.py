"""Subtopic briefs from the offline extractive backend, on evals/datasets/subtopics.jsonl.

    .venv/bin/python benchmarks/summaries.py [--dataset PATH] [--calibrate]

For every subtopic (each lists the papers that belong to it), prints side by side
with the targets and with a plain top-10 search as the baseline:
- coverage: the share of the belonging papers that the brief cites;
- precision: the share of the cited papers that belong
  (both averaged over topics, then pooled over all topics as the eval report does);
- marker validity: the share of markers in the brief that point to a listed paper;
- wall time of a warm brief (model loaded, the topic's abstracts not seen before).

With --calibrate it also prints how each `summary_min_score` would trade
precision for coverage, which is how the default in assistant/settings.py was chosen.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import REPO, SEED_CORPUS, SEED_INDEX, open_index

from assistant.extractive import ExtractiveBackend
from assistant.retrieval import search
from assistant.settings import Settings
from assistant.summarize import Brief, summarize
from assistant.text import markers_in

TARGETS = {"coverage": 0.7, "precision": 0.9, "valid markers": 1.0, "p50 s": 10.0}


def gold_ids(topic: dict, index) -> set[str]:
    by_title = {t: pid for pid, p in index.papers.items() for t in [p.title, *p.aliases]}
    return {by_title[t] for t in topic["gold_titles"]}


def score(cited: set[str], gold: set[str]) -> tuple[float, float]:
    coverage = len(cited & gold) / len(gold)
    precision = len(cited & gold) / len(cited) if cited else 0.0
    return coverage, precision


def validity(brief: Brief) -> float:
    """Markers in the final text that point to a listed paper (the check removed the rest)."""
    shown = markers_in(brief.check.text)
    valid = {s.marker for s in brief.relevant}
    total = len(shown) + len(brief.check.invalid_markers)
    return sum(1 for m in shown if m in valid) / total if total else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "evals/datasets/subtopics.jsonl")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()

    settings = Settings(index_dir=SEED_INDEX)
    opened = open_index(SEED_CORPUS, settings)
    index, embedder = opened.index, opened.embedder
    backend = ExtractiveBackend(embedder)
    topics = [json.loads(line) for line in args.dataset.read_text().splitlines() if line.strip()]

    if args.calibrate:
        calibrate(topics, index, embedder, settings)

    # Warm: the model loaded by one brief on a topic outside the set; no topic's own
    # sentence vectors are cached before it is timed.
    summarize(settings, "attention heads", index=index, embedder=embedder, backend=backend)
    rows = []
    for topic in topics:
        started = time.perf_counter()
        brief = summarize(settings, topic["topic"], index=index, embedder=embedder, backend=backend)
        seconds = time.perf_counter() - started
        cited = {s.paper.paper_id for s in brief.citations}
        gold = gold_ids(topic, index)
        coverage, precision = score(cited, gold)
        top10 = {h.paper.paper_id for h in search(index, embedder, topic["topic"], k=10)}
        rows.append(
            {
                "id": topic["id"],
                "coverage": coverage,
                "precision": precision,
                "valid": validity(brief),
                "seconds": seconds,
                "themes": len(brief.themes),
                "cited": len(cited),
                "gold": len(gold),
                "top10": score(top10, gold),
            }
        )

    print(f"{'topic':10} {'gold':>4} {'cited':>5} {'themes':>6} {'cover':>6} {'prec':>6} {'s':>5}")
    for r in rows:
        print(
            f"{r['id']:10} {r['gold']:4d} {r['cited']:5d} {r['themes']:6d} "
            f"{r['coverage']:6.2f} {r['precision']:6.2f} {r['seconds']:5.1f}"
        )
    mean = lambda key: statistics.fmean(r[key] for r in rows)  # noqa: E731
    print(f"\n{len(rows)} subtopics, extractive backend, warm")
    print(f"{'metric':16} {'ours':>8} {'top-10 search':>14} {'target':>8}")
    print(
        f"{'coverage':16} {mean('coverage'):8.3f} "
        f"{statistics.fmean(r['top10'][0] for r in rows):14.3f} {'>= 0.70':>8}"
    )
    print(
        f"{'precision':16} {mean('precision'):8.3f} "
        f"{statistics.fmean(r['top10'][1] for r in rows):14.3f} {'>= 0.90':>8}"
    )
    hits = sum(round(r["coverage"] * r["gold"]) for r in rows)
    print(
        f"{'pooled cover/prec':16} {hits / sum(r['gold'] for r in rows):.3f}/"
        f"{hits / max(sum(r['cited'] for r in rows), 1):.3f}   (as the eval report counts them)"
    )
    print(f"{'valid markers':16} {mean('valid'):8.3f} {'':>14} {'1.000':>8}")
    times = [r["seconds"] for r in rows]
    print(f"{'p50 s / brief':16} {statistics.median(times):8.2f} {'':>14} {'<= 10':>8}")
    print(f"{'max s / brief':16} {max(times):8.2f}")


def calibrate(topics: list[dict], index, embedder, settings: Settings) -> None:
    """Precision and coverage of the retrieved set at each relative-score threshold."""
    runs = []
    for topic in topics:
        hits = search(index, embedder, topic["topic"], k=25)
        runs.append(
            ([(h.paper.paper_id, h.score / hits[0].score) for h in hits], gold_ids(topic, index))
        )
    print("summary_min_score: mean coverage / precision / F1 of the papers kept (top 25)")
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        pairs = [score({p for p, s in hits if s >= threshold}, gold) for hits, gold in runs]
        coverage = statistics.fmean(c for c, _ in pairs)
        precision = statistics.fmean(p for _, p in pairs)
        f1 = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
        print(f"  {threshold:.2f}  {coverage:.3f}  {precision:.3f}  {f1:.3f}")
    print()


if __name__ == "__main__":
    main()
