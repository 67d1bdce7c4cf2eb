"""Retrieval quality on SciFact (BEIR): nDCG@10 and recall@100 for bm25, dense and hybrid search.

SciFact pairs 809 training claims with the abstracts (out of 5,183) that support or refute
them. This script ingests the abstracts into its own index with the library's normal
pipeline (chunking, MiniLM embeddings, BM25), runs every training claim that has relevance
judgements through `assistant.retrieval.search` in each mode, and prints the figures beside
published baselines. The first run embeds the corpus (a few minutes on a CPU); ingest is
incremental, so later runs re-embed nothing.

Run it from the repository root:

    .venv/bin/python benchmarks/retrieval_scifact.py              # all 809 training claims
    .venv/bin/python benchmarks/retrieval_scifact.py --limit 100  # a quick look
    .venv/bin/python benchmarks/retrieval_scifact.py --json benchmarks/out/scifact.json

The data is read from `<repo>/../shared/benchmarks/scifact` (BEIR layout: corpus.jsonl,
queries_train.jsonl, qrels_train.tsv) unless --data says otherwise. Retrieval settings come
from the environment as usual (e.g. ASSISTANT_RRF_K=30), so variants can be compared without
editing code. The first 400 claims were used to tune retrieval; the figures are also reported
separately for them and for the held-out rest.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from common import CachedEmbedder, CachedReranker, open_index, reranked_search

from assistant.embeddings import Embedder, make_embedder
from assistant.evals.metrics import mean, ndcg_at_k, recall_at_k
from assistant.index import PaperIndex
from assistant.retrieval import Mode, search
from assistant.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "scifact"
INDEX_DIR = REPO / "benchmarks" / "out" / "scifact-index"
COLLECTION = "scifact"
DATA_FILES = ("corpus.jsonl", "queries_train.jsonl", "qrels_train.tsv")

MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
RERANKED = "hybrid + rerank"  # with --reranker: hybrid, its top RERANK_DEPTH reranked
DEPTH = 100  # papers retrieved per query: recall is measured at this depth
RERANK_DEPTH, RERANK_WEIGHT = 30, 0.5
TUNING_QUERIES = 400  # the first 400 claims were used for tuning; the rest are held out

# Published nDCG@10 on the SciFact *test* split (300 claims), for orientation only.
PUBLISHED: tuple[tuple[str, float], ...] = (
    ("BM25 (bm25s)", 0.662),
    ("MiniLM-L6 dense", 0.645),
    ("plain RRF (BM25 + MiniLM)", 0.690),
    ("BM25 + cross-encoder (BEIR paper)", 0.688),
    ("SPLADE", 0.699),
)
TARGET = ("target for hybrid", 0.72)


@dataclass
class Query:
    query_id: str
    text: str
    relevant: dict[str, float]  # corpus id -> graded relevance


@dataclass
class ModeResult:
    mode: str
    ndcg: list[float]  # nDCG@10 per query, in query order
    recall: list[float]  # recall@100 per query


def load_queries(data: Path) -> list[Query]:
    """Training claims that have at least one judged-relevant abstract, in file order."""
    qrels: dict[str, dict[str, float]] = defaultdict(dict)
    with (data / "qrels_train.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if float(row["score"]) > 0:
                qrels[row["query-id"]][row["corpus-id"]] = float(row["score"])
    queries = []
    with (data / "queries_train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            if obj["_id"] in qrels:
                queries.append(Query(obj["_id"], obj["text"], qrels[obj["_id"]]))
    return queries


def open_scifact(
    data: Path, index_dir: Path, collection: str = COLLECTION
) -> tuple[PaperIndex, Embedder]:
    settings = Settings(index_dir=index_dir, collection=collection)
    opened = open_index(data / "corpus.jsonl", settings, CachedEmbedder(make_embedder(settings)))
    return opened.index, opened.embedder


def evaluate(
    index: PaperIndex,
    embedder: Embedder,
    queries: list[Query],
    mode: Mode,
    reranker: CachedReranker | None = None,
) -> ModeResult:
    """With a `reranker` (trained on claims 1-400 only), hybrid search reranked."""
    result = ModeResult(RERANKED if reranker else mode, [], [])
    for query in queries:
        if reranker is None:
            hits = search(index, embedder, query.text, k=DEPTH, mode=mode)
        else:
            hits = reranked_search(
                index, embedder, query.text, DEPTH, reranker, RERANK_DEPTH, RERANK_WEIGHT
            )
        ranked = [hit.paper.paper_id for hit in hits]
        result.ndcg.append(ndcg_at_k(ranked, query.relevant, 10))
        result.recall.append(recall_at_k(ranked, query.relevant, DEPTH))
    return result


def splits(n: int) -> dict[str, slice]:
    """All queries, the tuning part and the held-out part (when the run reaches it)."""
    parts = {f"all ({n})": slice(0, n)}
    if n > TUNING_QUERIES:
        parts[f"tuning 1-{TUNING_QUERIES}"] = slice(0, TUNING_QUERIES)
        parts[f"held-out {TUNING_QUERIES + 1}-{n}"] = slice(TUNING_QUERIES, n)
    return parts


def summarize(results: list[ModeResult], n: int) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {mode: {"ndcg@10": …, "recall@100": …}}}"""
    return {
        name: {
            r.mode: {"ndcg@10": mean(r.ndcg[part]), "recall@100": mean(r.recall[part])}
            for r in results
        }
        for name, part in splits(n).items()
    }


def print_table(figures: dict[str, dict[str, dict[str, float]]]) -> None:
    names = list(figures)
    modes = list(figures[names[0]])
    header = f"{'mode':<36}" + "".join(f"{name:>22}" for name in names)
    print(header)
    print(f"{'':<36}" + "".join(f"{'nDCG@10  recall@100':>22}" for _ in names))
    print("-" * len(header))
    for mode in modes:
        cells = "".join(
            f"{figures[n][mode]['ndcg@10']:>12.3f}{figures[n][mode]['recall@100']:>10.3f}"
            for n in names
        )
        print(f"{mode:<36}{cells}")
    print("-" * len(header))
    print("published, SciFact test split (300 claims), nDCG@10:")
    for label, value in (*PUBLISHED, TARGET):
        print(f"  {label:<34}{value:>10.3f}")
    hybrid = figures[names[0]].get("hybrid", {}).get("ndcg@10")
    if hybrid is not None:
        verdict = "meets" if hybrid >= TARGET[1] else "misses"
        print(f"hybrid nDCG@10 {hybrid:.3f} {verdict} the target of {TARGET[1]:.2f}.")
    print("Our figures are on the training claims, so they compare with the test-split")
    print("numbers only roughly.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR SciFact folder")
    parser.add_argument("--limit", type=int, help="only the first N queries (a quick run)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    parser.add_argument("--index", type=Path, default=INDEX_DIR, help="where the index lives")
    parser.add_argument(
        "--collection", default=COLLECTION, help="its collection (scale.py's: 'scale')"
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"of: {', '.join(MODES)}")
    parser.add_argument(
        "--reranker", type=Path, metavar="DIR", help="also hybrid with this reranker's order"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [n for n in DATA_FILES if not (args.data / n).is_file()]
    if missing:
        print(f"{args.data}: missing {', '.join(missing)} (pass --data DIR)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    queries = load_queries(args.data)[: args.limit]
    index, embedder = open_scifact(args.data, args.index, args.collection)
    results = []
    runs: list[tuple[Mode, CachedReranker | None]] = [(m, None) for m in args.modes.split(",")]
    if args.reranker:
        runs.append(("hybrid", CachedReranker(args.reranker)))
    for mode, reranker in runs:
        mode_started = time.perf_counter()
        results.append(evaluate(index, embedder, queries, mode, reranker))
        print(f"{results[-1].mode}: {time.perf_counter() - mode_started:.1f}s", file=sys.stderr)
    figures = summarize(results, len(queries))
    seconds = time.perf_counter() - started
    used = retrieval_settings(index)
    pool = max(index.settings.candidates, 4 * DEPTH)
    print(f"\nSciFact train: {len(queries)} claims with qrels, {DEPTH} papers per search")
    print(f"({pool} chunk candidates per retriever); retrieval settings {used}\n")
    print_table(figures)
    print(f"\nwall time {seconds:.0f}s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "queries": len(queries),
            "split_note": "ours: SciFact train claims; published: SciFact test split",
            "figures": figures,
            "published_test_ndcg@10": dict(PUBLISHED),
            "target_hybrid_ndcg@10": TARGET[1],
            "retrieval_settings": used,
            "seconds": round(seconds, 1),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def retrieval_settings(index: PaperIndex) -> dict[str, object]:
    """The settings that shape a search, and the BM25 parameters the loaded index was built with."""
    fields = (
        "top_k",
        "candidates",
        "fusion",
        "rrf_k",
        "dense_weight",
        "bm25_weight",
        "short_query_words",
        "short_dense_boost",
        "split_questions",
        "part_weight",
        "max_chunks_per_paper",
        "prf_docs",
        "title_weight",
    )
    used = {name: getattr(index.settings, name) for name in fields if hasattr(index.settings, name)}
    bm25 = index.snapshot.bm25
    if bm25 is not None:
        used.update(bm25_method=bm25.method, bm25_k1=bm25.k1, bm25_b=bm25.b)
    return used


if __name__ == "__main__":
    sys.exit(main())
