"""Fit the brief's topic-relevance model (`assistant/relevance.py`) on the tune half of
evals/datasets/subtopics_strict.jsonl and write assistant/topic_relevance.json. Not run by
CI; seconds, deterministic.

    .venv/bin/python -m training.topic_relevance

For every tune topic, the top `POOL` papers of the brief's own retrieval are labelled gold
or not (borderline papers are left out, as the benchmark neither rewards nor penalises
them), a weighted logistic regression (each topic weighs the same) is fitted over their
features, and the threshold is the one that maximises the mean F1 of coverage and
precision over the tune topics. It also prints the mean F1 of each tune topic under a fit
without it (leave one topic out), the figure features were chosen by. The test half is
never read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from assistant.relevance import FEATURES, MODEL, TOPIC_WORDS, TopicModel, features
from training.grounding_judge import fit_logistic
from training.seed_index import REPO, seed_index

if TYPE_CHECKING:
    from assistant.components import Components

DATASET = REPO / "evals" / "datasets" / "subtopics_strict.jsonl"
OFF_TOPIC = REPO / "evals" / "datasets" / "subtopics_off.jsonl"
POOL = 40
Row = tuple[np.ndarray, list[str], set[str], set[str]]  # features, ids, gold, borderline
CUTS = [round(c, 2) for c in np.arange(0.1, 0.91, 0.05)]


def pool_features(parts: Components, topic: str) -> tuple[np.ndarray, list[str]] | None:
    """The topic's pool's features and paper ids; None when its words are not the corpus's."""
    from assistant.errors import TopicError
    from assistant.summarize import retrieve_on_topic

    settings, index, embedder = parts.settings, parts.index, parts.embedder
    try:
        hits = retrieve_on_topic(settings, topic, index, embedder, POOL)[:POOL]
    except TopicError:
        return None
    x = features(topic, hits, embedder, index.vectors([h.chunk_id for h in hits]))
    return x, [h.paper.paper_id for h in hits]


def topic_rows(parts: Components, items: list[dict]) -> list[Row]:
    """Per topic: its pool's features, paper ids, gold ids and borderline ids."""
    index = parts.index
    by_title = {t: pid for pid, p in index.papers.items() for t in (p.title, *p.aliases)}
    out = []
    for item in items:
        pool = pool_features(parts, item["topic"])
        assert pool is not None, f"{item['topic']!r}: a gold topic the corpus lacks the words of"
        x, ids = pool
        gold = {by_title[t] for t in item["gold_titles"]}
        borderline = {by_title[t] for t in item.get("borderline_titles", [])}
        out.append((x, ids, gold, borderline))
    return out


def coverage_precision(kept: set[str], gold: set[str], borderline: set[str]) -> tuple[float, float]:
    counted = kept - borderline
    hit = len(counted & gold)
    return hit / len(gold), (hit / len(counted) if counted else 0.0)


def fit(rows: list[Row]) -> tuple[TopicModel, dict[float, float]]:
    """The model fitted on these topics, at the threshold of best mean F1 over them, and the
    mean F1 at every threshold tried."""
    x, y, w = [], [], []
    for feats, ids, gold, borderline in rows:
        keep = [k for k, pid in enumerate(ids) if pid not in borderline]
        x.append(feats[keep])
        y += [float(ids[k] in gold) for k in keep]
        w += [1.0 / len(keep)] * len(keep)
    weights = np.array(w) * len(w) / sum(w)
    linear = fit_logistic(np.vstack(x), np.array(y), weights, l2=1.0)
    model = TopicModel(linear, 0.5, POOL)
    f1 = {cut: float(np.mean([topic_f1(model, row, cut) for row in rows])) for cut in CUTS}
    return TopicModel(linear, max(CUTS, key=f1.__getitem__), POOL), f1


def topic_f1(model: TopicModel, row: Row, cut: float) -> float:
    feats, ids, gold, borderline = row
    p = model.probabilities(feats)
    kept = {pid for pid, q in zip(ids, p, strict=True) if q >= cut}
    c, pr = coverage_precision(kept, gold, borderline)
    return 2 * c * pr / (c + pr) if c + pr else 0.0


def main() -> int:
    items = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines() if line]
    tune = [i for i in items if i.get("split") == "tune"]
    parts, _ = seed_index()  # one index and model for every topic
    rows = topic_rows(parts, tune)
    model, f1 = fit(rows)
    for cut in CUTS:
        print(f"  threshold {cut:.2f}: tune mean F1 {f1[cut]:.3f}")
    # What a feature earns is judged here, on topics the fit didn't see: with 21 topics the
    # in-sample F1 above flatters every added feature.
    held = []
    for k, row in enumerate(rows):
        alone, _ = fit(rows[:k] + rows[k + 1 :])
        held.append(topic_f1(alone, row, alone.threshold))
    print(f"leave-one-topic-out mean F1 on the tune half: {np.mean(held):.3f}")
    # The topic-level gate (relevance.TOPIC_WORDS) is a constant, not fitted: it must lie
    # between what the off-topic topics reach and what every gold topic does.
    words = FEATURES.index("abstract_terms")
    gold_least = min(float(feats[:, words].max()) for feats, *_ in rows)
    off = [json.loads(line) for line in OFF_TOPIC.read_text(encoding="utf-8").splitlines() if line]
    pools = [pool_features(parts, i["topic"]) for i in off if i.get("split") == "tune"]
    off_most = max((float(p[0][:, words].max()) for p in pools if p is not None), default=0.0)
    print(
        f"most of a topic's words in one paper of the pool, tune halves: every gold topic "
        f">= {gold_least:.2f}, off-topic topics <= {off_most:.2f}; the gate is {TOPIC_WORDS}"
    )
    threshold, linear = model.threshold, model.linear
    MODEL.write_text(
        json.dumps(
            {
                "about": "which retrieved papers a brief is about (assistant/relevance.py)",
                "command": "python -m training.topic_relevance",
                "fitted_on": f"{DATASET.name}, tune half ({len(tune)} topics)",
                "features": list(FEATURES),
                "model": linear.to_dict(),
                "threshold": threshold,
                "pool": POOL,
                "tune_mean_f1": round(f1[threshold], 4),
                "leave_one_topic_out_f1": round(float(np.mean(held)), 4),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"threshold {threshold} -> {MODEL}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
