"""The local grounding judge, measured on held-out human-labelled pairs, side by side with a
word-overlap judge and the judge it replaced, in one run.

    .venv/bin/python benchmarks/grounding.py            # ~10 min on 2 cores

Rows: each source's held-out part (`training/grounding_data.py`: 30% of its claims,
documents or evidence groups, never trained or calibrated on), capped at --per-dataset pairs.
"claim-disjoint" rows are scored by the shipped judge, which trained on the other 70% of
every source; "left out" rows by a judge trained without that whole source
(`python -m training.grounding_judge --leave-out NAME --out benchmarks/out/judge-no-NAME`),
where one has been trained. SummEdits rows are the mean over its seven domains of each
domain's figure. "corpus edits" are held-out synthetic edits of data/papers sentences.

Columns: balanced accuracy at each judge's own threshold, and AUROC, for
- overlap: the IDF-weighted share of the claim's content words found in the evidence, cut
  at the threshold that is best on the calibration part;
- today: the judge at --old-ref (default: the commit before this judge), run from a
  temporary git worktree through its own `python -m assistant judge`;
- new: this checkout's judge.
Below: the new judge's ms per pair (one pair per call, model loaded, 200 pairs), p50 and
p95, and its peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.grounding import MODEL_DIR, LocalJudge  # noqa: E402
from assistant.text import content_words, english_stemmer, terms  # noqa: E402
from training.grounding_data import DATASETS, SYNTHETIC, Example, capped, load, synthetic  # noqa: E402
from training.grounding_judge import (  # noqa: E402
    auroc,
    balanced_accuracy,
    best_threshold,
)

OLD_REF = "f222678"  # the judge this one replaced: LoRA MiniLM plus cues
OUT = REPO / "benchmarks" / "out"
NAMES = {
    "scifact": "SciFact",
    "healthver": "HealthVer",
    "covidfact": "COVID-Fact",
    "climatefever": "Climate-FEVER",
    "fever": "FEVER",
    "summedits": "SummEdits (mean of 7 domains)",
    SYNTHETIC: "corpus edits (synthetic)",
}
TARGETS = {
    "scifact": "claim-disjoint",
    "healthver": "claim-disjoint",
    "covidfact": "left out",
    "summedits": "left out",
}


# --- The three judges ---------------------------------------------------------------------------


class Overlap:
    """IDF-weighted share of the claim's stemmed content words that the evidence contains."""

    def __init__(self, examples: list[Example]) -> None:
        documents = Counter(t for e in examples for t in terms(e.evidence))
        self.n = len(examples)
        self.df = documents
        self.stem = english_stemmer().stemWord

    def scores(self, examples: list[Example]) -> np.ndarray:
        out = []
        for e in examples:
            words = [self.stem(w) for w in content_words(e.claim)]
            found = terms(e.evidence)
            weights = [math.log((self.n + 1) / (self.df.get(w, 0) + 1)) + 1 for w in words]
            total = sum(weights)
            out.append(
                sum(w for t, w in zip(words, weights, strict=True) if t in found) / total
                if total
                else 0.0
            )
        return np.array(out)


def old_judge_scores(examples: list[Example], ref: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels from the judge at `ref`, through its own CLI, in a temporary
    worktree (its weights are in its tree); kept in benchmarks/out for the same pairs."""
    key = hashlib.sha256(json.dumps([ref] + [(e.claim, e.evidence) for e in examples]).encode())
    cache = OUT / f"grounding-old-{key.hexdigest()[:12]}.json"
    if cache.exists():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        return np.array(saved["score"]), np.array(saved["label"])
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), ref],
            check=True,
        )
        try:
            pairs = Path(tmp) / "pairs.jsonl"
            pairs.write_text(
                "".join(
                    json.dumps({"id": k, "claim": e.claim, "evidence": e.evidence}) + "\n"
                    for k, e in enumerate(examples)
                ),
                encoding="utf-8",
            )
            out = Path(tmp) / "verdicts.jsonl"
            env = dict(os.environ, PYTHONPATH=str(tree))
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "assistant",
                    "judge",
                    "--pairs",
                    str(pairs),
                    "--out",
                    str(out),
                ],
                cwd=tree,
                env=env,
                check=True,
            )
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True
            )
    rows.sort(key=lambda r: r["id"])
    cache.write_text(
        json.dumps(
            {
                "score": [r["score"] for r in rows],
                "label": [r["label"] == "supported" for r in rows],
            }
        )
    )
    return (
        np.array([r["score"] for r in rows]),
        np.array([r["label"] == "supported" for r in rows]),
    )


def new_judge_scores(judge: LocalJudge, examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    verdicts = judge.judge_many([(e.claim, e.evidence) for e in examples])
    return np.array([v.score for v in verdicts]), np.array([v.supported for v in verdicts])


# --- Figures -------------------------------------------------------------------------------------


def figures(examples: list[Example], score: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    """Balanced accuracy and AUROC; for SummEdits the mean of its domains'."""
    y = np.array([e.supported for e in examples])
    domains = sorted({e.domain for e in examples if e.dataset == "summedits"})
    if domains and all(e.dataset == "summedits" for e in examples):
        groups = [np.array([e.domain == d for e in examples]) for d in domains]
    else:
        groups = [np.ones(len(y), bool)]
    return (
        float(np.mean([balanced_accuracy(y[g], label[g]) for g in groups])),
        float(np.mean([auroc(y[g], score[g]) for g in groups])),
    )


def speed(judge: LocalJudge, examples: list[Example]) -> tuple[float, float]:
    judge.judge_many([(e.claim, e.evidence) for e in examples[:20]])  # warm: kernels built
    times = []
    for e in examples[:200]:
        started = time.perf_counter()
        judge.judge_many([(e.claim, e.evidence)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-dataset", type=int, default=500)
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--json", type=Path, default=OUT / "grounding.json")
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="the new judge's folder")
    args = parser.parse_args(argv)
    pool = load() + synthetic()
    held = capped([e for e in pool if e.part == "held_out"], args.per_dataset)
    calibration = capped([e for e in pool if e.part == "calibration"], args.per_dataset)
    overlap = Overlap(pool)
    cut = best_threshold(calibration, overlap.scores(calibration))
    overlap_score = overlap.scores(held)
    print(f"judging {len(held)} held-out pairs with the judge at {args.old_ref} ...", flush=True)
    old_score, old_label = old_judge_scores(held, args.old_ref)
    judge = LocalJudge(model_dir=args.model)
    new_score, new_label = new_judge_scores(judge, held)
    rows = []
    for source in [*DATASETS, SYNTHETIC]:
        mask = np.array([e.dataset == source for e in held])
        subset = [e for e, m in zip(held, mask, strict=True) if m]
        base = [
            figures(subset, overlap_score[mask], overlap_score[mask] >= cut),
            figures(subset, old_score[mask], old_label[mask]),
        ]
        rows.append(
            (
                f"{NAMES[source]}, claim-disjoint",
                len(subset),
                source,
                [*base, figures(subset, new_score[mask], new_label[mask])],
            )
        )
        left_out = OUT / f"judge-no-{source}"
        if (left_out / "delta.safetensors").exists():
            s, lab = new_judge_scores(LocalJudge(model_dir=left_out), subset)
            rows.append(
                (
                    f"{NAMES[source]}, left out",
                    len(subset),
                    source,
                    [*base, figures(subset, s, lab)],
                )
            )
    print_table(rows)
    p50, p95 = speed(judge, held)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nnew judge: {p50:.1f} ms per pair p50, {p95:.1f} ms p95 (one pair per call, "
        f"{judge.describe()['precision']}, 2 cores); peak RSS of this run {peak:.0f} MB"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "rows": [
                    {
                        "row": r[0],
                        "pairs": r[1],
                        "overlap": r[3][0],
                        "today": r[3][1],
                        "new": r[3][2],
                    }
                    for r in rows
                ],
                "ms_per_pair": {"p50": p50, "p95": p95},
                "peak_rss_mb": peak,
                "judge": judge.describe(),
                "old_ref": args.old_ref,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return 0


def print_table(rows: list) -> None:
    print("\n| held-out rows | pairs | overlap BA | AUROC | today BA | AUROC | new BA | AUROC |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, source, cells in rows:
        target = " (target)" if TARGETS.get(source) and TARGETS[source] in name else ""
        text = " | ".join(f"{ba:.3f} | {au:.3f}" for ba, au in cells)
        print(f"| {name}{target} | {n} | {text} |")


if __name__ == "__main__":
    raise SystemExit(main())
