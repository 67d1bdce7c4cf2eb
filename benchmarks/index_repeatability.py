"""Do two builds of the same corpus answer the same? Builds data/papers twice from scratch,
then searches both with every question of evals/datasets/ and counts the top-10 rankings
that differ, and the vectors that differ: once with exact dense search (the default up to
ASSISTANT_EXACT_SEARCH_MAX_CHUNKS) and once through Chroma's HNSW.

    .venv/bin/python benchmarks/index_repeatability.py     # two cold ingests: 1-4 minutes

The vectors come out bit-identical; Chroma's approximate (HNSW) search over them is not
repeatable, because its graph is built in the background as writes arrive. Exact search
over the same vectors is.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, SEED_CORPUS, open_index

from assistant.retrieval import search
from assistant.settings import Settings

SETS = ("retrieval.jsonl", "answers.jsonl", "retrieval_short.jsonl", "retrieval_multi.jsonl")


def questions() -> list[str]:
    out = []
    for name in SETS:
        path = REPO / "evals" / "datasets" / name
        out += [json.loads(line)["question"] for line in path.read_text().splitlines() if line]
    return out


def main() -> None:
    asked = questions()
    rankings: dict[str, list[list[list[str]]]] = {"exact": [], "HNSW": []}
    vectors = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            opened = open_index(SEED_CORPUS, Settings(index_dir=Path(tmp) / f"build-{n}"))
            index, embedder = opened.index, opened.embedder
            ids = index.snapshot.chunk_ids
            vectors.append(index.vectors(ids))
            for way in ("exact", "HNSW"):
                if way == "HNSW":
                    index.snapshot.vectors = None  # dense search goes to Chroma
                rankings[way].append(
                    [[h.paper.paper_id for h in search(index, embedder, q, k=10)] for q in asked]
                )
    drift = float(np.abs(vectors[0] - vectors[1]).max())
    print(f"questions searched: {len(asked)}")
    for way, (first, second) in rankings.items():
        differ = sum(a != b for a, b in zip(first, second, strict=True))
        print(f"top-10 rankings that differ between the two builds, {way} dense search: {differ}")
    exact, hnsw = rankings["exact"][0], rankings["HNSW"][0]
    moved = sum(a != b for a, b in zip(exact, hnsw, strict=True))
    print(f"top-10 rankings where exact and HNSW search differ on the first build: {moved}")
    print(f"largest difference between the builds' stored vectors: {drift:g}")


if __name__ == "__main__":
    main()
