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


def test_onnx_query_encoder_returns_the_torch_encoders_vectors(tmp_path) -> None:
    """Queries and answer sentences go through ONNX Runtime (no torch import at query time);
    its export of the real model must give the torch encoder's vectors to 1e-4, also for a
    padded batch of texts of very different lengths and a chunk at the model's full window."""
    from conftest import SEED_CORPUS

    from assistant.corpus import read_corpus
    from assistant.embeddings import LightEncoder, LocalEmbedder, load_onnx_encoder
    from assistant.onnx_encoder import OnnxEncoder
    from assistant.settings import Settings

    settings = Settings(index_dir=tmp_path / "index")
    encoder = load_onnx_encoder(settings)
    assert isinstance(encoder, OnnxEncoder), "the export failed; is the onnx package installed?"
    assert isinstance(LocalEmbedder(settings).light, OnnxEncoder)  # the file is reused

    longest = max(read_corpus([SEED_CORPUS]).papers, key=lambda p: len(p.abstract))
    texts = [*TEXTS, "KV", longest.title + "\n" + longest.abstract]  # the last one is cut at 256
    torch_vectors = LightEncoder().encode_many(texts)
    onnx_vectors = encoder.encode_many(texts)
    assert float(np.abs(onnx_vectors - torch_vectors).max()) < 1e-4
    one_by_one = np.stack([encoder.encode_many([t])[0] for t in texts])
    assert float(np.abs(one_by_one - torch_vectors).max()) < 1e-4
