"""Making the grounding judge's adapter: LoRA layers around the runtime model, and the delta
they learn. Only `benchmarks/grounding.py --train` uses this; the app and the eval load the
delta with `assistant.grounding_model.merge_into` and never import this file.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from assistant.grounding import Idf
from assistant.grounding_model import Shape, build_model
from assistant.text import terms

if TYPE_CHECKING:
    import torch
    from torch import nn

# The linear layers of each BERT layer that get a low-rank update.
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def trainable_model(shape: Shape, seed: int = 0) -> nn.Module:
    """The runtime model with LoRA layers wrapping the targets; LayerNorms, segment
    embeddings and the head train too, everything else is frozen."""
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        """y = W x + (alpha / r) B A x, with W frozen; B starts at zero, so training starts
        from the base model exactly."""

        def __init__(self, base: nn.Linear, generator: torch.Generator) -> None:
            super().__init__()
            self.base = base
            self.scale = shape.alpha / shape.rank
            bound = 1 / math.sqrt(base.in_features)
            a = torch.empty(shape.rank, base.in_features).uniform_(
                -bound, bound, generator=generator
            )
            self.A = nn.Parameter(a)
            self.B = nn.Parameter(torch.zeros(base.out_features, shape.rank))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    model = build_model(shape)
    generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad = False
    for layer in model.bert.encoder.layer:
        for target in TARGETS:
            *path, last = target.split(".")
            parent = layer
            for part in path:
                parent = getattr(parent, part)
            setattr(parent, last, LoRALinear(getattr(parent, last), generator))
    for name, p in model.bert.named_parameters():
        if "LayerNorm" in name or "token_type" in name:
            p.requires_grad = True
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.02, generator=generator)
        model.head.bias.zero_()
    for p in model.head.parameters():
        p.requires_grad = True
    return model


def delta_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """What training changed, by name, as fp16: what adapter.safetensors holds."""
    import torch

    return {
        name: p.detach().to(torch.float16).contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def fit_idf(documents: list[str], min_df: int = 50) -> Idf:
    """`log((N + 1) / (df + 0.5))` over the training evidence; terms in fewer than min_df
    documents are left out of the table (they weigh as a term seen once): a small table, and
    no rare word learnt."""
    n = len(documents)
    df: dict[str, int] = {}
    for document in documents:
        for term in terms(document):
            df[term] = df.get(term, 0) + 1
    table = {t: round(math.log((n + 1) / (d + 0.5)), 2) for t, d in df.items() if d >= min_df}
    return Idf(dict(sorted(table.items())), round(math.log((n + 1) / 1.5), 2))
