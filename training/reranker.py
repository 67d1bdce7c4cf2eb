"""Train the reranker: MiniLM-L6 as a query/passage cross-encoder that reorders the fused
top candidates of a search. Not run by CI; its output (`assistant/reranker_model/`) is
committed.

    .venv/bin/python -m training.reranker

A bi-encoder and BM25 each see the query and the abstract apart; the reranker reads them
together, so "logit lens but for backprop updates" can meet an abstract that says "we
project gradient updates into vocabulary space" word by word.

Each query gives a run of rows: its positive passage, then `negatives` hard negatives,
passages written as the index's chunks are (title line, then the abstract). Trained
listwise (a softmax over the run), so what is learnt is the order of a query's candidates.
- SciFact's first 400 training claims against their judged abstracts (negatives: BM25's
  top 15): the claims `benchmarks/retrieval_scifact.py` reports as its tuning part. The
  rest are never seen, nor the abstracts judged against them.
- pairs made from the corpus itself, for `data/papers` (negatives: the hybrid search's own
  top 20, the mistakes to correct) and for SciFact's abstracts:
  - a title against abstracts without their titles;
  - one sentence of an abstract against the rest of it;
  - a short query: 4-8 of a sentence's content words, its rarest and commonest left out,
    because a researcher's words are rarely the paper's own coinages.
- the tune halves of `evals/datasets/retrieval_short.jsonl` and `retrieval_multi.jsonl`
  (each gold paper a run of its own), `tune_repeats` times with fresh negatives: the only
  queries written in a researcher's words. The test halves are what is reported.

Training (`training/cross_encoder.py`): every weight but the word embeddings, one epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.cross_encoder import Rows, Schedule, fine_tune
from training.seed_index import REPO, seed_index

if TYPE_CHECKING:
    from assistant.components import Components
    from assistant.types import Paper

MODEL_DIR = REPO / "assistant" / "reranker_model"
SCIFACT = REPO.parent / "shared" / "benchmarks" / "scifact"
TUNING_QUERIES = 400  # benchmarks/retrieval_scifact.py's tuning part; the rest is held out
VERSION = 1


@dataclass(frozen=True)
class Recipe(Schedule):
    epochs: int = 1
    batch_size: int = 32  # rows: four queries' runs
    learning_rate: float = 4e-5
    max_length: int = 192  # word pieces of query and passage together
    frozen_layers: int = 0
    negatives: int = 7
    scifact_abstracts: int = 400  # SciFact abstracts made into corpus pairs
    tune_repeats: int = 3  # each tune-half query, with fresh negatives each time


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    abstract: str

    @property
    def passage(self) -> str:
        return f"{self.title}\n{self.abstract}"


# --- Data -------------------------------------------------------------------------------------


def scifact_docs(data: Path = SCIFACT) -> list[Doc]:
    docs = []
    with (data / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            docs.append(Doc(row["_id"], row.get("title", ""), row["text"]))
    return docs


def scifact_claims(data: Path = SCIFACT) -> list[tuple[str, set[str]]]:
    """(claim, relevant ids) for claims with judgements, in file order, as the benchmark
    reads them."""
    relevant: dict[str, set[str]] = defaultdict(set)
    with (data / "qrels_train.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if float(row["score"]) > 0:
                relevant[row["query-id"]].add(row["corpus-id"])
    claims = []
    with (data / "queries_train.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["_id"] in relevant:
                claims.append((row["text"], relevant[row["_id"]]))
    return claims


class Negatives:
    """Hard negatives: BM25's top-ranked documents for a query that are not its positives."""

    def __init__(self, docs: list[Doc], rng: random.Random):
        from assistant.snapshot import build_bm25

        self.docs = docs
        self.bm25 = build_bm25([d.passage for d in docs])
        self.rng = rng

    def __call__(self, query: str, positives: set[str], n: int) -> list[Doc]:
        from assistant.index import weighted_scores
        from assistant.text import query_terms

        scores = weighted_scores(self.bm25, query_terms(query))
        if scores is None:
            pool = self.rng.sample(self.docs, n + len(positives))
        else:
            pool = [self.docs[i] for i in np.argsort(-scores, kind="stable")[: 15 + len(positives)]]
        pool = [d for d in pool if d.id not in positives]
        return self.rng.sample(pool, min(n, len(pool)))


def short_query(sentence: str, skip: set[str], rng: random.Random) -> str:
    """4-8 of the sentence's content words in order, none of the corpus's rarest or commonest."""
    from assistant.text import content_words

    words = [w for w in content_words(sentence) if w not in skip and len(w) > 2]
    if len(words) < 4:
        return ""
    keep = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(4, 8))))
    return " ".join(words[i] for i in keep)


def corpus_queries(docs: list[Doc], rng: random.Random) -> list[tuple[str, str, Doc]]:
    """(query, positive passage, its doc) made from each abstract alone."""
    from collections import Counter

    from assistant.text import content_words, split_sentences

    frequency = Counter(w for d in docs for w in set(content_words(d.abstract)))
    # The rarest are the paper's own coinages; the commonest ("also", "results") say nothing.
    skip = {w for w, c in frequency.items() if c <= 2 or c > len(docs) / 20}
    out = []
    for doc in docs:
        sentences = [s for s in split_sentences(doc.abstract) if len(s.split()) >= 6]
        if doc.title:
            out.append((doc.title, doc.abstract, doc))
        if len(sentences) >= 3:
            k = rng.randrange(len(sentences))
            rest = " ".join(sentences[:k] + sentences[k + 1 :])
            out.append((sentences[k], f"{doc.title}\n{rest}", doc))
            query = short_query(rng.choice(sentences), skip, rng)
            if query:
                out.append((query, doc.passage, doc))
    return out


def training_rows(recipe: Recipe) -> Rows:
    """Runs of 1 + `negatives` rows per query, positive first (see `Rows`)."""
    rng = random.Random(recipe.seed)
    rows: list[tuple[str, str, float]] = []

    def add(query: str, positive: str, ids: set[str], negatives: list[Doc], title: bool) -> None:
        if len(negatives) < recipe.negatives:
            return
        shown = (lambda d: d.passage) if title else (lambda d: d.abstract)
        rows.append((query, positive, 1.0))
        rows.extend((query, shown(d), 0.0) for d in negatives[: recipe.negatives])

    scifact = scifact_docs()
    by_id = {d.id: d for d in scifact}
    claims = scifact_claims()
    held_out = {i for _, ids in claims[TUNING_QUERIES:] for i in ids}
    lexical = Negatives(scifact, rng)
    for claim, ids in claims[:TUNING_QUERIES]:
        for i in sorted(ids & set(by_id)):
            add(claim, by_id[i].passage, ids, lexical(claim, ids, recipe.negatives), True)
    print(f"  SciFact claims: {len(rows)} rows")
    # Abstracts a held-out claim is judged against are left out of the corpus pairs too.
    pool = [d for d in scifact if d.id not in held_out and d.title]
    for query, passage, doc in corpus_queries(rng.sample(pool, recipe.scifact_abstracts), rng):
        title = query != doc.title  # a title query reads abstracts without their titles
        add(query, passage, {doc.id}, lexical(query, {doc.id}, recipe.negatives), title)
    print(f"  + SciFact corpus pairs: {len(rows)} rows")
    components, read = seed_index()
    seed = [Doc(p.paper_id, p.title, p.abstract) for p in read.papers]
    confusers = HybridNegatives(seed, components, rng)
    for query, passage, doc in corpus_queries(seed, rng):
        title = query != doc.title
        add(query, passage, {doc.id}, confusers(query, {doc.id}, recipe.negatives), title)
    print(f"  + seed corpus pairs: {len(rows)} rows")
    for query, gold in tune_queries(read.papers):
        for _ in range(recipe.tune_repeats):
            for paper_id in sorted(gold):
                doc = confusers.by_id[paper_id]
                add(query, doc.passage, gold, confusers(query, gold, recipe.negatives), True)
    print(f"  + tune halves of the short and multi-paper sets: {len(rows)} rows")
    size = 1 + recipe.negatives
    runs = [rows[i : i + size] for i in range(0, len(rows), size)]
    rng.shuffle(runs)
    flat = [r for run in runs for r in run]
    return Rows([r[0] for r in flat], [r[1] for r in flat], [r[2] for r in flat], group=size)


def tune_queries(papers: list[Paper]) -> list[tuple[str, set[str]]]:
    """The tune halves' queries of evals/datasets/retrieval_{short,multi}.jsonl with their
    gold paper ids: the test halves are what benchmarks/retrieval_hard.py reports."""
    by_title = {t: p.paper_id for p in papers for t in (p.title, *p.aliases)}
    out = []
    for name in ("retrieval_short.jsonl", "retrieval_multi.jsonl"):
        for line in (REPO / "evals" / "datasets" / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line) if line.strip() else None
            if item and item.get("split") == "tune":
                titles = item.get("gold_titles") or [item["gold_title"]]
                out.append((item["question"], {by_title[t] for t in titles}))
    return out


class HybridNegatives:
    """The seed corpus's confusers: the hybrid search's own top papers for the query, the
    mistakes the reranker is there to correct."""

    def __init__(self, docs: list[Doc], components: Components, rng: random.Random):
        self.by_id = {d.id: d for d in docs}
        self.components = components
        self.rng = rng

    def __call__(self, query: str, positives: set[str], n: int) -> list[Doc]:
        from assistant.retrieval import search

        hits = search(self.components.index, self.components.embedder, query, k=20 + n)
        pool = [self.by_id[h.paper.paper_id] for h in hits if h.paper.paper_id not in positives]
        return self.rng.sample(pool[:20], min(n, len(pool[:20])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    recipe = Recipe(epochs=args.epochs)
    from assistant.grounding_model import base_cross_encoder, frozen_tensors

    frozen = frozen_tensors(base_cross_encoder(recipe.max_length)[0].model, recipe.frozen_layers)
    rows = training_rows(recipe)
    config = {
        "about": "MiniLM-L6 query/passage cross-encoder delta (the reranker)",
        "version": VERSION,
        "command": "python -m training.reranker"
        + (f" --out {args.out}" if args.out != MODEL_DIR else ""),
        "shape": {"max_length": recipe.max_length},
        "frozen_layers": recipe.frozen_layers,
        "recipe": asdict(recipe),
    }
    config["training"] = fine_tune(rows, recipe.max_length, recipe, frozen, args.out)
    (args.out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(config["training"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
