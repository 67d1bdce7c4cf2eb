"""Reorder a search's top papers with a cross-encoder that reads query and passage together.

Measured, not shipped: no reranker model ships with the package, and search does not
rerank. `training/reranker.py` trains one (MiniLM-L6, listwise, on SciFact's tuning
claims, pairs made from the corpora and the tune halves of the hard retrieval sets), and
the benchmarks' `--reranker DIR` measures it beside the hybrid. On the test halves it
moved short-query recall@5 from 0.815 to 0.826 and cost multi-paper recall (0.756 to
0.731) and about 0.3 s a search on 2 cores, so it stays out of the product until a model
earns its place; the README's Benchmarks section has the table.

The reranker reads `[CLS] query [SEP] title, chunk [SEP]` for the top `depth` papers' best
chunks; a paper's new score mixes the reranker's probability with its fused score
(`weight` of the first), and papers below the depth keep their order after the others.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .types import Hit


class Reranker:
    def __init__(self, model_dir: Path, bf16: bool | None = None) -> None:
        from .grounding_model import CrossEncoder

        delta, config = model_dir / "delta.safetensors", model_dir / "config.json"
        if not delta.is_file():
            raise FileNotFoundError(f"{model_dir}: no reranker; `python -m training.reranker`")
        self.encoder = CrossEncoder(delta, config, bf16)

    def probabilities(self, query: str, passages: list[str]) -> np.ndarray:
        logits = self.encoder.read([(query, passage) for passage in passages])
        return 1 / (1 + np.exp(-np.clip(logits, -30, 30)))


def rerank(hits: list[Hit], probability: np.ndarray, weight: float) -> list[Hit]:
    """The first len(probability) hits reordered by weight * probability + (1 - weight) *
    score / best score; the rest after them, in their order. Ranks are renumbered."""
    head = hits[: len(probability)]
    depth = len(head)
    top = max((h.score for h in head), default=0.0) or 1.0
    mixed = [
        weight * float(p) + (1 - weight) * h.score / top
        for h, p in zip(head, probability[:depth], strict=True)
    ]
    order = sorted(range(depth), key=lambda i: -mixed[i])  # stable: ties keep the fused order
    ranked = [hits[i] for i in order] + hits[depth:]
    return [replace(hit, rank=rank) for rank, hit in enumerate(ranked, start=1)]
