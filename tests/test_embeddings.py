"""The real MiniLM, loaded offline from the wheel."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_documents_are_unit_vectors_and_similar_texts_are_close(real_embedder) -> None:
    vectors = real_embedder.embed_documents(
        [
            "Compressing the KV cache of transformers",
            "Shrinking key-value caches in LLMs",
            "Rainfall in Peru",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_query_encoder_matches_sentence_transformers(real_embedder) -> None:
    """The light query path must give the vector sentence-transformers gives (in fp32)."""
    text = "which papers compress the key-value cache?"
    reference = real_embedder.model.encode([text], normalize_embeddings=True)[0]
    assert float(real_embedder.embed_query(text) @ reference) > 0.9999
    # Documents may run in bf16; they still agree with fp32 to well under a rounding error of rank.
    assert float(real_embedder.embed_documents([text])[0] @ reference) > 0.999
