"""Which retrieved papers a brief is about: a small fitted model, not a ratio of scores.

A topic ("KV-cache eviction") is a few words; a paper is about it when one of its
sentences says so, even if the rest of the abstract is about something else. So besides
the fused retrieval score, the model reads how close the topic's MiniLM vector comes to
each sentence of the abstract and to the title: the best sentence, the second best (one
passing mention is not a paper about the topic), the title, and the paper's rank. A
logistic regression over those, fitted by `training/topic_relevance.py` on the tune half
of `evals/datasets/subtopics_strict.jsonl` (borderline papers left out), turns them into
the probability that the paper belongs in the brief; `benchmarks/summaries.py` reports the
test half.

The sentences are embedded when a brief is asked for (the top papers' few hundred, a
second or so on 2 cores), not at ingest: only briefs need them, and ingest stays as fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embeddings import Embedder
from .grounding import Linear
from .text import split_sentences
from .types import Hit, Paper

MODEL = Path(__file__).resolve().with_name("topic_relevance.json")
FEATURES = ("fused_ratio", "best_sentence", "second_sentence", "title", "log_rank")


@dataclass(frozen=True)
class TopicModel:
    linear: Linear
    threshold: float  # the probability a paper needs for the brief to use it
    pool: int  # the top retrieved papers it reads

    @classmethod
    def load(cls, path: Path = MODEL) -> TopicModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path}: fitted on {data['features']}, this code reads {FEATURES}")
        return cls(Linear.from_dict(data["model"]), float(data["threshold"]), int(data["pool"]))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip(self.linear(features), -30, 30)))


def paper_sentences(paper: Paper) -> list[str]:
    """The title, then the abstract's sentences."""
    return [paper.title, *(split_sentences(paper.abstract) or [paper.abstract])]


def features(topic: np.ndarray, hits: list[Hit], embedder: Embedder) -> np.ndarray:
    """One row of FEATURES per hit; `topic` is the topic's query vector."""
    texts = [paper_sentences(h.paper) for h in hits]
    flat = [s for sentences in texts for s in sentences]
    vectors = embedder.embed_documents(flat) if flat else np.zeros((0, len(topic)))
    similarity = vectors @ topic
    top = (hits[0].score if hits else 0.0) or 1.0
    rows = []
    start = 0
    for rank, (hit, sentences) in enumerate(zip(hits, texts, strict=True)):
        own = similarity[start : start + len(sentences)]
        start += len(sentences)
        ranked = np.sort(own[1:] if len(own) > 1 else own)[::-1]
        second = ranked[1] if len(ranked) > 1 else ranked[0]
        rows.append([hit.score / top, ranked[0], second, own[0], np.log1p(rank)])
    return np.array(rows, dtype=np.float64).reshape(len(hits), len(FEATURES))
