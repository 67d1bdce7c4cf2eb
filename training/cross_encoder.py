"""The fine-tuning loop both local cross-encoders share (the grounding judge and the
reranker): MiniLM-L6 with a one-logit head, binary cross-entropy on (text, text, label)
rows, AdamW with linear warm-up and decay, bf16 on the CPU, seeded.

A plain loop rather than CrossEncoderTrainer, for one measured reason: the trainer pads
each batch to its longest row, so a mix of 30- and 220-piece rows costs the longest row's
time, and in bf16 oneDNN builds kernels for almost every batch shape. On the same 280-row
probe on this shared machine: the trainer 2.0 rows/s, this loop (length-grouped batches, a
few padded shapes) 2.5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Schedule:
    seed: int = 0
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 6e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    # Off: a third faster on 2 cores (dropout's random numbers are costly on a CPU), and a
    # few epochs over ~15,000 rows do not overfit a 22M model.
    dropout: float = 0.0


@dataclass
class Rows:
    """Labelled pairs; with `group` > 0, consecutive runs of `group` rows that share a
    query, its positive first, trained listwise (softmax over the run) instead of
    pairwise: a ranker learns the order of a query's passages, not each one's label."""

    first: list[str]  # the claim, or the query
    second: list[str]  # the evidence window, or the passage
    label: list[float]
    group: int = 0


def batches(lengths: list[int], size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of rows of similar length: rows are shuffled, sorted by length within
    windows of 50 batches, cut into batches, and the batches shuffled. Padding is then a few
    word pieces, not half of every batch."""
    order = rng.permutation(len(lengths))
    out = []
    for start in range(0, len(order), 50 * size):
        window = sorted(order[start : start + 50 * size], key=lambda i: lengths[i])
        out += [window[k : k + size] for k in range(0, len(window), size)]
    return [out[i] for i in rng.permutation(len(out))]


def fine_tune(
    rows: Rows, max_length: int, schedule: Schedule, frozen: frozenset[str], out: Path
) -> dict:
    """Fine-tune MiniLM as a cross-encoder on the rows, every tensor but `frozen`; write
    what changed to out/delta.safetensors."""
    import torch
    from safetensors.torch import save_file
    from tqdm import tqdm

    from assistant.grounding_model import base_cross_encoder, collate, delta_of

    torch.manual_seed(schedule.seed)
    encoder = base_cross_encoder(max_length)
    model = encoder[0].model
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name not in frozen
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = schedule.dropout
    # Eager attention computes what SDPA does, faster for these short rows on a CPU.
    model.set_attn_implementation("eager")
    encoded = encoder.tokenizer(rows.first, rows.second, truncation=True, max_length=max_length)
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    labels = torch.tensor(rows.label)
    rng = np.random.default_rng(schedule.seed)
    size = max(1, rows.group)  # rows per unit of batching: a pair, or a query's run
    units = [list(range(u * size, (u + 1) * size)) for u in range(len(ids) // size)]
    plan = [
        [row for unit in b for row in units[unit]]
        for _ in range(schedule.epochs)
        for b in batches(
            [max(len(ids[r]) for r in unit) for unit in units],
            max(1, schedule.batch_size // size),
            rng,
        )
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    warmup = max(1, int(schedule.warmup_ratio * len(plan)))
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, max(0.0, (len(plan) - s) / (len(plan) - warmup))),
    )
    started = time.perf_counter()
    model.train()
    progress = tqdm(plan, desc=f"training on {len(ids)} rows", unit="batch")
    running = 0.0
    for step, batch in enumerate(progress, 1):
        inputs = collate([ids[i] for i in batch], [types[i] for i in batch])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(**inputs).logits.float().squeeze(-1)[: len(batch)]
        if rows.group:
            runs = logits.view(-1, rows.group)
            loss = torch.nn.functional.cross_entropy(runs, torch.zeros(len(runs), dtype=torch.long))
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[batch])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        progress.set_postfix(loss=f"{running:.3f}")
    model.eval()
    model.set_attn_implementation("sdpa")
    out.mkdir(parents=True, exist_ok=True)
    save_file(delta_of(model, frozen), str(out / "delta.safetensors"))
    return {"rows": len(ids), "seconds": round(time.perf_counter() - started)}
