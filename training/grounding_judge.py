"""Train the local grounding judge: MiniLM-L6 as a claim/evidence cross-encoder, then its
calibration. Not run by CI; its output (`assistant/grounding_model/`) is committed.

    .venv/bin/python -m training.grounding_judge                      # the shipped judge
    .venv/bin/python -m training.grounding_judge --leave-out summedits \
        --out benchmarks/out/judge-no-summedits                        # a left-out row

Data (`training/grounding_data.py`): the training part of each human-labelled source plus
synthetic edits of the corpus's sentences; `--leave-out` drops a whole source, for the
benchmark's leave-one-dataset-out rows. Each claim sentence is read with its best-matching
evidence window, as at inference; a negative summary of several sentences is left out of
training (which of its sentences was edited is unknown).

Training: sentence-transformers' CrossEncoder fine-tuned by the loop in
`training/cross_encoder.py` (binary cross-entropy, every weight but the word embeddings,
three epochs, bf16 on the CPU, seeded). Calibration, on
the calibration part (never trained on): a one-input logistic regression that turns the
logit into a probability, the threshold that maximises the mean of the sources' balanced
accuracies, and whether the number veto (`assistant.grounding.veto`) helps there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.grounding import Linear
from assistant.grounding_model import FROZEN, Shape, pair_texts
from training.cross_encoder import Rows, Schedule, fine_tune
from training.grounding_data import (
    SCIFACT_SYNTHETIC,
    Example,
    capped,
    load,
    scifact_document,
    scifact_synthetic,
    synthetic,
)

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "assistant" / "grounding_model"
VERSION = 4  # the judge's design and recipe (3: one evidence window per claim sentence; 4:
# trained on SciFact-corpus edits too, up to 6,000 rows per source); the eval records it
# with the weights' hash
VETO_CAP = 0.01  # a vetoed pair's score: below any threshold


@dataclass(frozen=True)
class Recipe(Schedule):
    per_dataset: int = 6000  # training rows per source at most: no source dominates
    # Sentences of each SciFact corpus abstract edited (`grounding_data.scifact_synthetic`):
    # the biomedical register of the SciFact and HealthVer rows, which our corpus lacks.
    # Version 3 trained on 2,400 rows per source and none of these (--per-dataset 2400
    # --scifact-edits 0).
    scifact_edits_per_abstract: int = 2
    calibration_per_dataset: int = 400


# --- Metrics (shared with benchmarks/grounding.py) ------------------------------------------


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    y, predicted = y.astype(bool), predicted.astype(bool)
    recalls = [np.mean(predicted[y == c] == c) for c in (True, False) if np.any(y == c)]
    return float(np.mean(recalls)) if recalls else float("nan")


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Probability that a random supported pair outscores a random unsupported one."""
    y = y.astype(bool)
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):  # ties share their mean rank
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = y.sum(), (~y).sum()
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_balanced_accuracy(examples: list[Example], score: np.ndarray, cut: float) -> float:
    """The mean over sources of each one's balanced accuracy: what the threshold is for."""
    y = np.array([e.supported for e in examples])
    names = np.array([e.dataset for e in examples])
    return float(
        np.mean([balanced_accuracy(y[names == n], score[names == n] >= cut) for n in set(names)])
    )


def best_threshold(examples: list[Example], score: np.ndarray) -> float:
    cuts = np.quantile(score, np.linspace(0.02, 0.98, 193))
    return float(max(cuts, key=lambda c: mean_balanced_accuracy(examples, score, c)))


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0) -> Linear:
    """Weighted logistic regression on standardised inputs by damped Newton steps (halved
    until the loss falls): exact and deterministic; a handful of inputs need no more. The
    bias is not penalised."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0

    def loss(beta: np.ndarray) -> float:
        margin = np.clip(z @ beta, -30, 30)
        return float(np.sum(w * (np.logaddexp(0, margin) - y * margin)) + penalty @ beta**2 / 2)

    beta = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (w * (p - y)) + penalty * beta
        hessian = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        scale_step = 1.0
        while loss(beta - scale_step * step) > loss(beta) and scale_step > 1e-6:
            scale_step /= 2
        beta -= scale_step * step
        if np.max(np.abs(scale_step * step)) < 1e-10:
            break
    return Linear(mean, scale, beta[:-1], float(beta[-1]))


def cell_weights(examples: list[Example]) -> np.ndarray:
    """Each (source, label) cell weighs the same in total."""
    cells = [(e.dataset, e.supported) for e in examples]
    counts = {c: cells.count(c) for c in set(cells)}
    return np.array([len(cells) / (len(counts) * counts[c]) for c in cells])


# --- Training -------------------------------------------------------------------------------


def training_rows(examples: list[Example], shape: Shape, tokenizer: object, recipe: Recipe) -> Rows:
    """(claim sentence, best window, label) rows; at most `per_dataset` per source."""
    rng = random.Random(recipe.seed)
    by_source: dict[str, list[tuple[str, str, float]]] = {}
    for e in examples:
        parts = pair_texts(tokenizer, e.claim, e.evidence, shape, keep=1)
        if not e.supported and len(parts) > 1:
            continue
        rows = by_source.setdefault(e.dataset, [])
        rows += [(part[0][0], part[0][1], float(e.supported)) for part in parts]
    chosen: list[tuple[str, str, float]] = []
    for source, rows in sorted(by_source.items()):
        rng.shuffle(rows)
        # Half of each label where the source has them: SummEdits' supported summaries give
        # a row per sentence, and a source's skew would become the model's prior.
        positive = [r for r in rows if r[2] == 1.0]
        negative = [r for r in rows if r[2] == 0.0]
        half = recipe.per_dataset // 2
        n_pos = min(len(positive), max(half, recipe.per_dataset - len(negative)))
        n_neg = min(len(negative), recipe.per_dataset - n_pos)
        kept = positive[:n_pos] + negative[:n_neg]
        chosen += kept
        print(f"  {source}: {len(kept)} rows, {n_pos} supported")
    rng.shuffle(chosen)
    return Rows([r[0] for r in chosen], [r[1] for r in chosen], [r[2] for r in chosen])


def train(examples: list[Example], shape: Shape, recipe: Recipe, out: Path) -> dict:
    """Fine-tune the cross-encoder on the judge's rows (`training/cross_encoder.py`)."""
    from assistant.grounding_model import base_cross_encoder

    tokenizer = base_cross_encoder(shape.max_length).tokenizer
    rows = training_rows(examples, shape, tokenizer, recipe)
    return fine_tune(rows, shape.max_length, recipe, frozenset(FROZEN), out)


# --- Calibration ----------------------------------------------------------------------------


def calibrate(examples: list[Example], out: Path) -> dict:
    """Platt scaling of the logit and the threshold on the calibration part, veto on and
    off; the veto is kept only where it helps there."""
    from assistant.grounding import LocalJudge

    judge = LocalJudge(model_dir=out, calibrated=False)
    pairs = [(e.claim, e.evidence) for e in examples]
    x = judge.encoder.logits(pairs)[:, None]
    y = np.array([e.supported for e in examples], dtype=float)
    platt = fit_logistic(x, y, cell_weights(examples), l2=0.0)
    probability = 1 / (1 + np.exp(-np.clip(platt(x), -30, 30)))
    vetoed = np.array([judge.vetoed(e.claim, e.evidence) for e in examples])
    results = {}
    for use_veto in (False, True):
        score = (
            np.minimum(probability, np.where(vetoed, VETO_CAP, 1.0)) if use_veto else probability
        )
        cut = best_threshold(examples, score)
        results[use_veto] = (mean_balanced_accuracy(examples, score, cut), cut)
        print(
            f"  veto {'on' if use_veto else 'off'}: mean balanced accuracy "
            f"{results[use_veto][0]:.4f} at {cut:.3f}"
        )
    use_veto = results[True][0] > results[False][0] + 0.002
    return {
        "inputs": ["cross_encoder_logit"],
        "model": platt.to_dict(),
        "threshold": round(results[use_veto][1], 6),
        "veto_cap": VETO_CAP if use_veto else None,
        "pairs": len(examples),
        "mean_balanced_accuracy": round(results[use_veto][0], 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--leave-out", default="", help="a source to train without")
    parser.add_argument("--per-dataset", type=int, default=Recipe.per_dataset)
    parser.add_argument(
        "--scifact-edits", type=int, default=Recipe.scifact_edits_per_abstract, metavar="N"
    )
    parser.add_argument("--calibrate-only", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    recipe = Recipe(per_dataset=args.per_dataset, scifact_edits_per_abstract=args.scifact_edits)
    shape = Shape()
    human = load()
    held_back = {scifact_document(e) for e in human if e.dataset == "scifact" and e.part != "train"}
    per_abstract = recipe.scifact_edits_per_abstract
    edits = scifact_synthetic(held_back, per_abstract, recipe.seed) if per_abstract else []
    pool = [e for e in human + synthetic() + edits if e.dataset != args.leave_out]
    config_path = args.out / "config.json"
    config = (
        json.loads(config_path.read_text())
        if args.calibrate_only
        else {
            "about": "MiniLM-L6 cross-encoder delta and its calibration",
            "version": VERSION,
            "command": "python -m training.grounding_judge"
            + (f" --leave-out {args.leave_out} --out {args.out}" if args.leave_out else ""),
            "shape": asdict(shape),
            "recipe": asdict(recipe),
            "left_out": args.leave_out or None,
        }
    )
    if not args.calibrate_only:
        config["training"] = train([e for e in pool if e.part == "train"], shape, recipe, args.out)
        config_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    calibration = capped(
        [e for e in pool if e.part == "calibration" and e.dataset != SCIFACT_SYNTHETIC],
        recipe.calibration_per_dataset,
    )
    config["version"] = VERSION
    config.pop("idf", None)
    config["calibration"] = calibrate(calibration, args.out)
    config_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(config["calibration"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
