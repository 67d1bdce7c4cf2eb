"""ASSISTANT_EMBEDDINGS=openai: the same index code over an OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_jsonl
from openai_server import ScriptedOpenAI

from assistant.corpus import read_corpus
from assistant.embeddings import OpenAIEmbedder, make_embedder
from assistant.errors import AssistantError, ModelMismatchError
from assistant.index import PaperIndex
from assistant.ingest import ingest
from assistant.retrieval import search
from assistant.settings import Settings

ROWS = [
    {
        "id": "q",
        "title": "Quantization",
        "abstract": "Four-bit integer weights for language models.",
    },
    {"id": "s", "title": "Speech", "abstract": "Speech recognition for many spoken languages."},
]


def openai_settings(tmp_path: Path, server: ScriptedOpenAI) -> Settings:
    return Settings(
        index_dir=tmp_path / "index",
        embeddings="openai",
        openai_api_key="test-key",
        openai_base_url=server.base_url,
    )


def test_ingest_and_search_through_the_endpoint(tmp_path: Path, openai_server) -> None:
    settings = openai_settings(tmp_path, openai_server)
    embedder = make_embedder(settings)
    assert isinstance(embedder, OpenAIEmbedder)
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    ingest(settings, read_corpus([path]), [path], embedder, progress=False)
    assert len(openai_server.embedding_inputs) == 2  # one chunk per paper, sent over HTTP
    index = PaperIndex.open(settings)
    assert (index.collection.metadata or {})["embedding_model"] == "openai:text-embedding-3-small"
    assert search(index, embedder, "speech recognition languages", k=1)[0].paper.paper_id == "s"
    # The index remembers its model: the local one may not query it.
    with pytest.raises(ModelMismatchError, match="ASSISTANT_EMBEDDINGS=openai"):
        PaperIndex.open(settings.model_copy(update={"embeddings": "local"}))


def test_missing_key_says_how_to_fix_it(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index", embeddings="openai")
    with pytest.raises(AssistantError, match="needs OPENAI_API_KEY"):
        make_embedder(settings).embed_query("x")
