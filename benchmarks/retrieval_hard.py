"""Retrieval on the hard seed-corpus sets, each candidate configuration beside today's hybrid.

    .venv/bin/python benchmarks/retrieval_hard.py [--split tune|test|both] [--index DIR]
        [--configs NAME,NAME,...] [--try NAME:key=value,key=value ...] [--json OUT]

Every configuration is a set of retrieval settings (`assistant/settings.py`) laid over
the defaults, run through `assistant.retrieval.search` in hybrid mode, so today's hybrid
is measured by the same code as the candidates. For each it prints:

- short queries (evals/datasets/retrieval_short.jsonl, 4-12 words, a researcher's words):
  recall@5 and MRR@5, per half (tune, test) and per style within each half;
- multi-paper questions (retrieval_multi.jsonl, 3-6 gold papers each): the share of each
  question's gold papers in the top 10, averaged over questions, per half;
- the 36 long questions of retrieval.jsonl (paraphrases of one abstract): MRR@10, which
  must stay at or above 0.98.

Tune on the tune halves (`--split tune` hides the test figures) and look at the test
halves once, for what is kept. `--reranker DIR` (a model from `python -m training.reranker
--out DIR`) adds the shipped settings with their top papers reranked, at each of
`--rerank` depth:weight pairs, and the reranker's seconds per search; that model trains on
the tune halves, so only the test figures say anything about it. `--try` adds an ad-hoc
configuration, e.g. `--try prf:prf_docs=5,prf_terms=10`. Builds (or reuses, incrementally)
the index of data/papers under benchmarks/out/seed-index unless --index names another.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    REPO,
    SEED_CORPUS,
    SEED_INDEX,
    CachedEmbedder,
    CachedReranker,
    open_index,
    reranked_search,
)
from retrieval_seed import load_questions

from assistant.embeddings import Embedder
from assistant.evals.metrics import mean, recall_at_k, reciprocal_rank
from assistant.index import PaperIndex
from assistant.retrieval import search
from assistant.settings import Settings

DATASETS = REPO / "evals" / "datasets"
SPLITS = ("tune", "test")
STYLES = ("paraphrase", "problem", "acronym", "misspelling", "implied")
LONG_MRR_TARGET = 0.98
TODAY_NAME = "today's hybrid (the settings before issue 12)"

# Today's hybrid, spelled out so that it stays measurable after the defaults change.
TODAY: dict[str, Any] = {
    "dense_weight": 1.0,
    "bm25_weight": 1.0,
    "short_dense_boost": 1.0,
    "prf_docs": 0,
    "title_weight": 0.0,
    "split_questions": False,
    "max_chunks_per_paper": 0,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "today": TODAY,
    "shipped": {},  # the current defaults
    # Each candidate alone, over today's hybrid.
    "short-dense": {**TODAY, "short_dense_boost": 1.5},
    "short-bm25": {**TODAY, "short_dense_boost": 0.7},
    "prf3": {**TODAY, "prf_docs": 3, "prf_terms": 10, "prf_weight": 0.5},
    "prf1": {**TODAY, "prf_docs": 1, "prf_terms": 10, "prf_weight": 0.3},
    "title": {**TODAY, "title_weight": 0.2},
    "split": {**TODAY, "split_questions": True, "part_weight": 0.5},
    "cap3": {**TODAY, "max_chunks_per_paper": 3},
    "cap1": {**TODAY, "max_chunks_per_paper": 1},
}
DEFAULT_CONFIGS = tuple(CONFIGS)


def load_sets(index: PaperIndex) -> dict[str, list[dict]]:
    old = load_questions(DATASETS / "retrieval.jsonl", index)
    return {
        "short": load_questions(DATASETS / "retrieval_short.jsonl", index),
        "multi": load_questions(DATASETS / "retrieval_multi.jsonl", index),
        "long": [q for q in old if q["kind"] == "long"],
    }


def measure(
    index: PaperIndex,
    embedder: Embedder,
    sets: dict[str, list[dict]],
    splits: tuple[str, ...],
    rerank: tuple[CachedReranker, int, float] | None = None,
) -> dict[str, float]:
    """{row name: figure} for the index's current settings; `rerank`: (reranker, depth,
    weight) to rerank each search's top papers."""

    def ranked(question: str) -> list[str]:
        if rerank is None:
            hits = search(index, embedder, question, k=10, mode="hybrid")
        else:
            hits = reranked_search(index, embedder, question, 10, *rerank)
        return [h.paper.paper_id for h in hits]

    rows: dict[str, float] = {}
    short = [(q, ranked(q["question"])) for q in sets["short"] if q["split"] in splits]
    multi = [(q, ranked(q["question"])) for q in sets["multi"] if q["split"] in splits]
    for split in splits:
        part = [(q, r) for q, r in short if q["split"] == split]
        rows[f"short {split} R@5"] = mean([recall_at_k(r, q["gold"], 5) for q, r in part])
        rows[f"short {split} MRR@5"] = mean([reciprocal_rank(r[:5], q["gold"]) for q, r in part])
    for split in splits:
        for style in STYLES:
            part = [(q, r) for q, r in short if q["split"] == split and q["style"] == style]
            r5 = mean([recall_at_k(r, q["gold"], 5) for q, r in part])
            mrr = mean([reciprocal_rank(r[:5], q["gold"]) for q, r in part])
            rows[f"  {split} {style} ({len(part)}) R@5 / MRR@5"] = (r5, mrr)  # type: ignore[assignment]
    for split in splits:
        part = [(q, r) for q, r in multi if q["split"] == split]
        rows[f"multi {split} gold in top 10"] = mean(
            [recall_at_k(r, q["gold"], 10) for q, r in part]
        )
    long = [ranked(q["question"]) for q in sets["long"]]
    rows["long MRR@10"] = mean(
        [reciprocal_rank(r, q["gold"]) for q, r in zip(sets["long"], long, strict=True)]
    )
    return rows


def print_table(figures: dict[str, dict[str, Any]]) -> None:
    names = list(figures)
    width = max(len(n) for n in names) + 2
    label = max(len(r) for r in next(iter(figures.values()))) + 2
    print(f"{'':<{label}}" + "".join(f"{n:>{max(width, 13)}}" for n in names))
    for row in next(iter(figures.values())):
        cells = ""
        for name in names:
            value = figures[name][row]
            text = f"{value[0]:.2f} {value[1]:.2f}" if isinstance(value, tuple) else f"{value:.3f}"
            cells += f"{text:>{max(width, 13)}}"
        print(f"{row:<{label}}{cells}")
    long = {n: f["long MRR@10"] for n, f in figures.items()}
    failing = [n for n, v in long.items() if v < LONG_MRR_TARGET]
    print(
        f"long MRR@10 >= {LONG_MRR_TARGET}: "
        + ("all configurations" if not failing else f"fails for {', '.join(failing)}")
    )


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word, e.g. fusion=rrf


def parse_try(spec: str) -> tuple[str, dict[str, Any]]:
    """'name:key=value,key=value' -> (name, settings over today's hybrid)."""
    name, _, assignments = spec.partition(":")
    update = dict(TODAY)
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        if key.strip() not in Settings.model_fields:
            raise SystemExit(f"--try {spec}: no setting {key.strip()!r}")
        update[key.strip()] = parse_value(value.strip())
    return name, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=SEED_INDEX)
    parser.add_argument("--split", choices=("tune", "test", "both"), default="both")
    parser.add_argument(
        "--configs",
        default=",".join(DEFAULT_CONFIGS),
        help=f"comma-separated, of: {', '.join(CONFIGS)}, or 'all'",
    )
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="SPEC")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--reranker", type=Path, metavar="DIR", help="a trained reranker")
    parser.add_argument(
        "--rerank", default="30:0.5,16:0.5", help="depth:weight pairs to rerank with"
    )
    args = parser.parse_args(argv)

    names = list(CONFIGS) if args.configs == "all" else [c for c in args.configs.split(",") if c]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    configs = {n: CONFIGS[n] for n in names} | dict(parse_try(t) for t in args.tries)

    base = Settings(index_dir=args.index)
    opened = open_index(SEED_CORPUS, base, CachedEmbedder(opened_embedder(base)))
    index, embedder = opened.index, opened.embedder
    sets = load_sets(index)
    splits = SPLITS if args.split == "both" else (args.split,)
    figures: dict[str, dict[str, Any]] = {}
    for name, update in configs.items():
        started = time.perf_counter()
        index.settings = base.model_copy(update=update)
        figures[name] = measure(index, embedder, sets, splits)
        print(f"{name}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    reranker = CachedReranker(args.reranker) if args.reranker else None
    for pair in args.rerank.split(",") if reranker else []:
        depth, weight = int(pair.split(":")[0]), float(pair.split(":")[1])
        name = f"rerank {depth}:{weight}"
        started = time.perf_counter()
        configs[name] = {}  # the shipped settings
        index.settings = base
        figures[name] = measure(index, embedder, sets, splits, (reranker, depth, weight))
        print(f"{name}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    counts = ", ".join(f"{len(v)} {k}" for k, v in sets.items())
    print(f"\nHard retrieval sets on the seed corpus ({counts}), hybrid search")
    print_table(figures)
    today = base.model_copy(update=TODAY)
    for name, update in configs.items():
        used = base.model_copy(update=update)
        changed = {
            key: getattr(used, key)
            for key in Settings.model_fields
            if getattr(used, key) != getattr(today, key)
        }
        print(f"  {name}: {changed or TODAY_NAME}")
    if reranker is not None and reranker.seconds:
        seconds = sorted(reranker.seconds)
        print(
            f"  reranker: {seconds[len(seconds) // 2] * 1000:.0f} ms p50 per search "
            f"(its reads alone, {len(seconds)} searches that read anything new)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"configs": configs, "figures": figures}, indent=2))
    return 0


def opened_embedder(settings: Settings) -> Embedder:
    from assistant.embeddings import make_embedder

    return make_embedder(settings)


if __name__ == "__main__":
    sys.exit(main())
