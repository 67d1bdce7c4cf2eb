"""The local grounding judge (assistant/grounding.py): train it, and measure it on held-out pairs.

Data: SciFact's training claims with their cited abstracts (919 pairs; SUPPORT vs
CONTRADICT or NOT_ENOUGH_INFO) and HealthVer's dev set (1,917 pairs of a claim about
COVID-19 and a sentence or two from a paper; Supports vs Refutes or Neutral), both as
`{"id", "claim", "evidence", "label", "source_label"}` lines with label `supported` or
`not_supported`, read from `<repo>/../shared/benchmarks/grounding` unless --data says
otherwise.

Split, by claim: the SHA-256 of the lower-cased, stripped claim, read as a number, decides.
0-29 modulo 100 is held out (~30% of each dataset): never trained on, never tuned on, only
measured. Of the rest, fold 4 of 5 (the hash's next digit) is the calibration part; the
other folds are the training part. Every pair of one claim lies on one side, so no claim is
both learnt and tested.

    .venv/bin/python benchmarks/grounding.py --train      # ~15-30 min on 2 cores: writes
                                                          # assistant/grounding_model/
    .venv/bin/python benchmarks/grounding.py --calibrate  # refit all but the cross-encoder
    .venv/bin/python benchmarks/grounding.py              # measure the shipped model

Training, on the training part: MiniLM-L6 as a cross-encoder with LoRA updates (rank 16) of
every linear layer, trainable LayerNorms, segment embeddings and head; AdamW, linear
warm-up and decay, each (dataset, label) cell weighing the same; the loss is on the pair's
best window (the windows it reads at inference). Then, on the same part, a logistic
regression over the cheap cues (`assistant.grounding.CUES`). Then, on the calibration part
(which neither has seen), the logistic regression that combines the two logits, the
threshold that maximises balanced accuracy, and the number veto's cap. Seeded and
deterministic, so a re-run on the same machine writes the same weights.

Prints, per dataset and pooled: held-out pairs, balanced accuracy and AUC, and the judge's
speed in ms per pair (all held-out pairs in one `judge_many` call, model already loaded,
nothing cached), with published figures for context - on another benchmark
(LLM-AggreFact), so not comparable number for number. Embeddings for fitting are cached in
benchmarks/out/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.embeddings import Embedder, LocalEmbedder, minilm_tokenizer  # noqa: E402
from assistant.grounding import (  # noqa: E402
    CUES,
    MODEL_DIR,
    Linear,
    LocalJudge,
    cue_matrix,
    stack_inputs,
)
from assistant.grounding_model import (  # noqa: E402
    Shape,
    collate,
    pair_inputs,
)
from assistant.settings import Settings  # noqa: E402
from training.grounding_judge import delta_of, fit_idf, trainable_model  # noqa: E402

DATA = REPO.parent / "shared" / "benchmarks" / "grounding"
DATASETS = {"scifact": "scifact_train.jsonl", "healthver": "healthver_dev.jsonl"}
HELD_OUT_PERCENT = 30
FOLDS = 5
CALIBRATION_FOLD = 4
PARTS = ("train", "calibration", "held_out")
CACHE = REPO / "benchmarks" / "out" / "grounding-vectors"
L2 = 1.0  # on standardised weights: a handful of inputs, a few hundred to 1,500 pairs
VETO_CAP = 0.25  # a vetoed pair's score: below any threshold the calibration is likely to set
# For context only: these are on LLM-AggreFact, not on these datasets.
PUBLISHED = {"AlignScore": 0.705, "MiniCheck-FT5-L": 0.750}


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    epochs: int = 3
    batch_pairs: int = 16
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of the steps


@dataclass(frozen=True)
class Example:
    dataset: str
    id: str
    claim: str
    evidence: str
    supported: bool

    @property
    def claim_hash(self) -> int:
        return int(hashlib.sha256(self.claim.strip().lower().encode()).hexdigest(), 16)

    @property
    def held_out(self) -> bool:
        return self.claim_hash % 100 < HELD_OUT_PERCENT

    @property
    def fold(self) -> int:
        return (self.claim_hash // 100) % FOLDS

    @property
    def part(self) -> str:
        if self.held_out:
            return "held_out"
        return "calibration" if self.fold == CALIBRATION_FOLD else "train"


def load(data: Path) -> list[Example]:
    examples = []
    for dataset, name in DATASETS.items():
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            examples.append(
                Example(
                    dataset,
                    row["id"],
                    row["claim"].strip(),
                    row["evidence"].strip(),
                    row["label"] == "supported",
                )
            )
    return examples


# --- Metrics ------------------------------------------------------------------------------------


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    y, predicted = y.astype(bool), predicted.astype(bool)
    recalls = [np.mean(predicted[y == c] == c) for c in (True, False) if np.any(y == c)]
    return float(np.mean(recalls)) if recalls else float("nan")


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random supported pair outscores a random unsupported one."""
    ranks = np.empty(len(score))
    order = np.argsort(score, kind="stable")
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):  # ties share their mean rank
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    positives = y.astype(bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The cut on `score` that maximises balanced accuracy (midway between two scores)."""
    values = np.unique(score)
    cuts = np.concatenate([[values[0] - 1e-9], (values[1:] + values[:-1]) / 2])
    accuracies = [balanced_accuracy(y, score >= c) for c in cuts]
    return float(cuts[int(np.argmax(accuracies))])


def class_weights(examples: list[Example]) -> np.ndarray:
    """Each (dataset, label) cell weighs the same in total: both datasets count equally and
    neither label dominates, which is what balanced accuracy per dataset asks for."""
    cells = [(e.dataset, e.supported) for e in examples]
    counts = {cell: cells.count(cell) for cell in set(cells)}
    return np.array([len(cells) / (len(counts) * counts[c]) for c in cells])


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2) -> Linear:
    """Weighted logistic regression by Newton's method on standardised inputs (exact and
    deterministic; a few inputs need no more). The bias is not penalised."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (w * (p - y)) + penalty * beta
        hessian = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return Linear(mean, scale, beta[:-1], float(beta[-1]))


class CachedEmbedder:
    """The local embedder behind a text -> vector cache on disk, so re-runs embed nothing."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner, self.path, self.name = inner, path, inner.name
        self.vectors: dict[str, np.ndarray] = {}
        meta = path.with_suffix(".json")
        if meta.exists():
            saved = json.loads(meta.read_text(encoding="utf-8"))
            if saved["model"] == self.name:
                matrix = np.load(path.with_suffix(".npy"))
                self.vectors = dict(zip(saved["texts"], matrix, strict=True))

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            print(f"embedding {len(missing)} texts ...", flush=True)
            self.vectors.update(zip(missing, self.inner.embed_documents(missing), strict=True))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.save(self.path.with_suffix(".npy"), np.stack(list(self.vectors.values())))
            meta = {"model": self.name, "texts": list(self.vectors)}
            self.path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
        return np.stack([self.vectors[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def figures(examples: list[Example], score: np.ndarray, threshold: float) -> dict[str, dict]:
    y = np.array([e.supported for e in examples])
    datasets = np.array([e.dataset for e in examples])
    out = {}
    for name in [*DATASETS, "pooled"]:
        mask = np.ones(len(y), bool) if name == "pooled" else datasets == name
        out[name] = {
            "pairs": int(mask.sum()),
            "balanced_accuracy": round(balanced_accuracy(y[mask], score[mask] >= threshold), 4),
            "auc": round(auc(y[mask], score[mask]), 4),
        }
    return out


# --- Training -----------------------------------------------------------------------------------


def train(examples: list[Example], shape: Shape, recipe: Recipe, out_dir: Path) -> None:
    """Fit the cross-encoder's delta on the training part; write it with its shape and recipe."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(recipe.seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = minilm_tokenizer()
    train_set = [e for e in examples if e.part == "train"]
    inputs = pair_inputs(tokenizer, [(e.claim, e.evidence) for e in train_set], shape)
    y = np.array([e.supported for e in train_set], dtype=np.float32)
    w = class_weights(train_set).astype(np.float32)
    model = trainable_model(shape, seed=recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    print(
        f"training on {len(train_set)} pairs ({sum(map(len, inputs))} windows), "
        f"{sum(p.numel() for p in params):,} trainable parameters",
        flush=True,
    )
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * math.ceil(len(train_set) / recipe.batch_pairs)
    warmup = max(1, int(recipe.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    shuffle = np.random.default_rng(recipe.seed)
    started = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        total = 0.0
        order = shuffle.permutation(len(train_set))
        for start in range(0, len(train_set), recipe.batch_pairs):
            pairs = order[start : start + recipe.batch_pairs]
            items = [item for k in pairs for item in inputs[k]]
            owner = torch.tensor([n for n, k in enumerate(pairs) for _ in inputs[k]])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                window_logits = model(*collate(items)).float()[: len(items)]
            # The pair's logit is its best window's, as at inference.
            logits = torch.full((len(pairs),), -1e4).scatter_reduce(
                0, owner, window_logits, reduce="amax"
            )
            target = torch.from_numpy(y[pairs])
            weight = torch.from_numpy(w[pairs])
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, target, weight=weight, reduction="sum"
                )
                / weight.sum()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(pairs)
            step = start // recipe.batch_pairs + 1
            if step % 25 == 0:
                print(f"  step {step}: {time.perf_counter() - started:.0f} s", flush=True)
        print(
            f"epoch {epoch + 1}/{recipe.epochs}: loss {total / len(train_set):.4f}, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(delta_of(model), str(out_dir / "adapter.safetensors"))
    config = {
        "about": "LoRA delta of all-MiniLM-L6-v2 as a claim/evidence cross-encoder, and its "
        "calibration; written by benchmarks/grounding.py --train.",
        "command": ".venv/bin/python benchmarks/grounding.py --train",
        "shape": shape.__dict__,
        "recipe": recipe.__dict__,
        "training_data": {
            "source": ", ".join(DATASETS.values()),
            "split": f"held out if sha256(claim.strip().lower()) % 100 < {HELD_OUT_PERCENT}; "
            f"calibration if (hash // 100) % {FOLDS} == {CALIBRATION_FOLD}; the rest trains",
            "pairs": {p: sum(e.part == p for e in examples) for p in ("train", "calibration")},
        },
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def fit_cues(examples: list[Example], embedder: Embedder, model_dir: Path) -> None:
    """The cues' logistic regression, on the training part (the cross-encoder's part: the
    calibration part stays unseen by both readers)."""
    train_set = [e for e in examples if e.part == "train"]
    idf = fit_idf([e.evidence for e in train_set])
    x, _ = cue_matrix([(e.claim, e.evidence) for e in train_set], embedder, idf)
    y = np.array([e.supported for e in train_set], dtype=float)
    model = fit_logistic(x, y, class_weights(train_set))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["cues"] = {
        "names": list(CUES),
        "model": model.to_dict(),
        "fitted_on": f"{len(train_set)} training pairs, L2 {L2}",
        "idf": {"min_df": 50, "unseen": idf.unseen, "table": idf.table},
    }
    # A placeholder calibration until `calibrate` has looked at the calibration part.
    config["calibration"] = {
        "model": Linear(np.zeros(5), np.ones(5), np.zeros(5), 0.0).to_dict(),
        "threshold": 0.5,
        "veto_cap": None,
    }
    (model_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def calibrate(examples: list[Example], embedder: Embedder, model_dir: Path) -> None:
    """The final logistic regression over both readers' logits, the threshold that maximises
    balanced accuracy and the number veto's cap, all on the calibration part."""
    calibration = [e for e in examples if e.part == "calibration"]
    judge = LocalJudge(embedder, model_dir)
    pairs = [(e.claim, e.evidence) for e in calibration]
    logits, cues = judge.encoder.logits(pairs), judge.cue_logits(pairs)
    y = np.array([e.supported for e in calibration], dtype=float)
    inputs = stack_inputs(logits, cues.logit, cues.abstract)
    judge.stack = fit_logistic(inputs, y, class_weights(calibration))
    raw = np.array(judge.scores(pairs, logits, cues, None))
    capped = np.array(judge.scores(pairs, logits, cues, VETO_CAP))
    threshold, cap = best_threshold(y, capped), VETO_CAP
    if threshold <= VETO_CAP:  # a cap that would not keep a vetoed pair below the threshold
        threshold, cap = best_threshold(y, raw), None
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["calibration"] = {
        "inputs": [
            "ce_logit",
            "cue_logit",
            "ce_logit x abstract",
            "cue_logit x abstract",
            "abstract (more than two sentences)",
        ],
        "model": judge.stack.to_dict(),
        "threshold": round(threshold, 6),
        "veto_cap": cap,
        "fitted_on": f"{len(calibration)} calibration pairs, L2 {L2}",
        "figures": figures(calibration, capped if cap else raw, threshold),
        "without_veto": figures(calibration, raw, best_threshold(y, raw)),
        "cross_encoder_alone": figures(calibration, logits, best_threshold(y, logits)),
        "cues_alone": figures(calibration, cues.logit, best_threshold(y, cues.logit)),
    }
    (model_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    for name in ("figures", "cross_encoder_alone", "cues_alone"):
        print_table(f"Calibration part, {name.replace('_', ' ')}:", config["calibration"][name])


# --- Measuring ----------------------------------------------------------------------------------


def evaluate(examples: list[Example], model_dir: Path) -> dict:
    judge = LocalJudge(model_dir=model_dir)  # as `make_judge` builds it: nothing cached
    held_out = [e for e in examples if e.part == "held_out"]
    judge.judge_many([(held_out[0].claim, held_out[0].evidence)])  # load the model first
    started = time.perf_counter()
    verdicts = judge.judge_many([(e.claim, e.evidence) for e in held_out])
    elapsed = time.perf_counter() - started
    scores = np.array([v.score for v in verdicts])
    result = figures(held_out, scores, judge.threshold)
    result["speed"] = {
        "ms_per_pair": round(1000 * elapsed / len(held_out), 1),
        "pairs": len(held_out),
        "precision": judge.describe()["precision"],
    }
    return result


def print_table(title: str, table: dict) -> None:
    print(f"\n{title}")
    print(f"{'dataset':10s} {'pairs':>6s} {'BA':>6s} {'AUC':>6s}")
    for name in [*DATASETS, "pooled"]:
        f = table[name]
        print(f"{name:10s} {f['pairs']:6d} {f['balanced_accuracy']:6.3f} {f['auc']:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="train and calibrate first")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the two .jsonl files")
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="the model folder")
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--lr", type=float, default=Recipe.learning_rate, help="peak rate")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="refit the cues and the calibration of the cross-encoder already there",
    )
    parser.add_argument(
        "--smoke", type=int, metavar="N", help="N pairs of each part only: check the pipeline"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)  # the target machine; also fixes the summation order
    started = time.perf_counter()
    examples = load(args.data)
    if args.smoke:
        examples = [e for p in PARTS for e in [e for e in examples if e.part == p][: args.smoke]]
    if args.train:
        train(examples, Shape(), Recipe(epochs=args.epochs, learning_rate=args.lr), args.model)
    if args.train or args.calibrate:
        # Cached vectors for fitting (re-runs embed nothing); the measured judge embeds afresh.
        cached = CachedEmbedder(LocalEmbedder(Settings(embeddings="local")), CACHE)
        fit_cues(examples, cached, args.model)
        calibrate(examples, cached, args.model)
    result = evaluate(examples, args.model)
    print_table("Held-out pairs (never trained or tuned on):", result)
    speed = result["speed"]
    print(f"speed: {speed['ms_per_pair']} ms/pair ({speed['pairs']} pairs, {speed['precision']})")
    print(
        "published, on LLM-AggreFact (another benchmark): "
        + ", ".join(f"{k} {v:.3f}" for k, v in PUBLISHED.items())
    )
    if args.train or args.calibrate:
        config = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
        config["held_out"] = result
        (args.model / "config.json").write_text(json.dumps(config, indent=1) + "\n", "utf-8")
        print(f"wrote {args.model}")
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
