"""Which retrieved papers a brief is about: a small fitted model, not a ratio of scores.

A topic ("KV-cache eviction") is a few words; a paper is about it when one of its
sentences says so, even if the rest of the abstract is about something else. So besides
the fused retrieval score, the model reads how close the topic's MiniLM vector comes to
each sentence of the abstract and to the title: the best sentence, the second best (one
passing mention is not a paper about the topic), the title, and the paper's rank; and,
since MiniLM blurs a rare term into its neighbours ("early exit" near "pruning"), how many of
the topic's own stemmed words the title and the abstract contain; and how close the paper
comes to the pool's most topical others (pseudo-relevance feedback: a paper on the topic
in other words than the topic's still resembles the papers that use them).

A coordinated topic ("attention sinks and massive activations") is read as each of its
conjuncts too, since a paper on either one is on the topic: its best sentence, title and
word shares are the best over the whole topic and its parts (on the test half this took
precision from 0.813 to 0.871 at the same coverage). A logistic regression over those,
fitted by `training/topic_relevance.py` on the tune half of
`evals/datasets/subtopics_strict.jsonl` (borderline papers left out), turns them into
the probability that the paper belongs in the brief; `benchmarks/summaries.py` reports the
test half.

The sentences are embedded when a brief is asked for (the top papers' few hundred, a
second or so on 2 cores), not at ingest: only briefs need them, and ingest stays as fast.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embeddings import Embedder
from .grounding import Linear
from .text import content_words, english_stemmer, split_sentences, terms
from .types import Hit, Paper

MODEL = Path(__file__).resolve().with_name("topic_relevance.json")
FEATURES = (
    "fused_ratio",
    "best_sentence",
    "second_sentence",
    "title",
    "log_rank",
    "title_terms",
    "abstract_terms",
    "near_topical",
)
TOPICAL = 5  # the papers whose mean vector `near_topical` compares each paper with
# A topic some paper is about has a paper using most of its words (or of one conjunct's):
# all but one of four. On the tune halves every topic of subtopics_strict.jsonl has a paper
# with all of them, and no topic of subtopics_off.jsonl one with more than 0.67
# (`python -m training.topic_relevance` prints both).
TOPIC_WORDS = 0.75


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


def features(
    topic: str, hits: list[Hit], embedder: Embedder, chunk_vectors: np.ndarray
) -> np.ndarray:
    """One row of FEATURES per hit; `chunk_vectors` are the hits' chunks' stored vectors."""
    parts = topic_parts(topic)
    queries = np.array([embedder.embed_query(q) for q in (topic, *parts)])
    texts = [paper_sentences(h.paper) for h in hits]
    flat = [s for sentences in texts for s in sentences]
    vectors = embedder.embed_documents(flat) if flat else np.zeros((0, queries.shape[1]))
    similarity = vectors @ queries.T  # sentence by query: the whole topic first, then its parts
    wanted = [terms(q) for q in (topic, *parts)]
    top = (hits[0].score if hits else 0.0) or 1.0
    rows = []
    start = 0
    for rank, (hit, sentences) in enumerate(zip(hits, texts, strict=True)):
        own = similarity[start : start + len(sentences)]
        start += len(sentences)
        body = own[1:] if len(own) > 1 else own
        # "More than one passing mention" is of the topic as a whole.
        whole = np.sort(body[:, 0])[::-1]
        second = whole[1] if len(whole) > 1 else whole[0]
        title_terms = max(share(w, terms(hit.paper.title)) for w in wanted)
        abstract = terms(f"{hit.paper.title} {hit.paper.abstract}")
        abstract_terms = max(share(w, abstract) for w in wanted)
        row = [hit.score / top, body.max(), second, own[0].max(), np.log1p(rank)]
        rows.append([*row, title_terms, abstract_terms])
    x = np.array(rows, dtype=np.float64).reshape(len(hits), len(FEATURES) - 1)
    topical = x[:, FEATURES.index("best_sentence")] + x[:, FEATURES.index("abstract_terms")]
    return np.hstack([x, near_topical(chunk_vectors, topical)[:, None]])


def lacking_words(topic: str, hits: list[Hit], x: np.ndarray) -> tuple[Hit, list[str]] | None:
    """None when some paper of the pool uses TOPIC_WORDS of the topic's words (or of one
    conjunct's); otherwise the paper that uses most and the topic's words it lacks. The
    topic model ranks papers against each other and can't say that none is on the topic:
    "grammatical error correction with transformers" finds papers on transformers and on
    errors, none that says "grammatical" or "correction"."""
    shares = x[:, FEATURES.index("abstract_terms")] if len(x) else np.zeros(1)
    if not hits or shares.max() >= TOPIC_WORDS:
        return None
    closest = hits[int(np.argmax(shares))]
    found = terms(f"{closest.paper.title} {closest.paper.abstract}")
    stem = english_stemmer().stemWord
    return closest, [w for w in content_words(topic) if stem(w) not in found]


# "X and Y", "X, Y or Z", "X/Y"; a coordination inside a prepositional phrase
# ("hallucination in language and vision-language models") is left whole.
CONJUNCTION = re.compile(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+|/")
PREPOSITION = re.compile(r"\b(?:in|of|for|on|with|beyond|from|to)\b")


def topic_parts(topic: str) -> list[str]:
    """The conjuncts of a coordinated topic, each made a phrase of its own: a lone
    modifier takes the words the next conjunct's first word leads ("speech and audio
    language models": "speech language models"), a lone last noun the words the first
    conjunct's last word ends ("KV-cache offloading and retrieval": "KV-cache
    retrieval"), and a lone name stands alone ("state space models and Mamba")."""
    first = CONJUNCTION.search(topic)
    if not first or PREPOSITION.search(topic[: first.start()]):
        return []
    raw = [p.strip() for p in CONJUNCTION.split(topic) if p and p.strip()]
    if len(raw) < 2:
        return []
    parts = []
    for i, part in enumerate(raw):
        if " " not in part and part.islower():
            after = raw[i + 1].split() if i + 1 < len(raw) else []
            before = raw[0].split()
            if len(after) > 1:
                part = " ".join([part, *after[1:]])
            elif i > 0 and len(before) > 1:
                part = " ".join([*before[:-1], part])
        parts.append(part)
    return parts


def near_topical(vectors: np.ndarray, topical: np.ndarray) -> np.ndarray:
    """Each row's cosine with the mean of the TOPICAL most topical other rows."""
    if len(vectors) < 2:
        return np.zeros(len(vectors))
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-topical, kind="stable")
    out = np.empty(len(unit))
    for i in range(len(unit)):
        others = [j for j in order[: TOPICAL + 1] if j != i][:TOPICAL]
        centre = unit[others].mean(axis=0)
        out[i] = unit[i] @ centre / max(float(np.linalg.norm(centre)), 1e-12)
    return out


def share(wanted: frozenset[str], found: frozenset[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0
