"""The real MiniLM, loaded offline from the wheel, through both of its paths."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = [
    "which papers compress the key-value cache?",
    "Speech recognition for Fon and Igbo, two low-resource West African languages.",
    "Rainfall in Peru",
]


def test_documents_are_unit_vectors_and_similar_texts_are_close(real_embedder) -> None:
    vectors = real_embedder.embed_documents(
        ["Compressing the KV cache of transformers", "Shrinking key-value caches in LLMs", "Rain"]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_light_encoder_matches_sentence_transformers(real_embedder) -> None:
    """Queries and answer-time sentences skip sentence-transformers; the vectors must not change."""
    reference = real_embedder.model.encode(TEXTS, normalize_embeddings=True)
    light = real_embedder.embed_documents(TEXTS)  # a small batch: the light path, padded
    assert np.all(np.sum(light * reference, axis=1) > 0.9999)
    assert float(real_embedder.embed_query(TEXTS[0]) @ reference[0]) > 0.9999


def test_bulk_path_agrees_with_fp32(real_embedder) -> None:
    """Ingest-sized batches may run in bf16; they still agree with fp32 well within a rank."""
    from assistant.embeddings import BULK_BATCH

    texts = [f"{t} (variant {i})" for i in range(BULK_BATCH // 3 + 1) for t in TEXTS]
    bulk = real_embedder.embed_documents(texts)
    reference = real_embedder.light.encode_many(texts[:6])
    assert np.all(np.sum(bulk[:6] * reference, axis=1) > 0.999)
