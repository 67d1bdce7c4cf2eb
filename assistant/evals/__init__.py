"""The eval harness: run the datasets in evals/datasets, score every item, write a report.

Users run it before changing a prompt or a setting, to learn (offline, in minutes) whether
the answers got less grounded. So it is built against the known failure modes of RAGAS,
TruLens and DeepEval:

- identical runs give identical numbers: model replies and judge verdicts are cached on
  disk, each item is judged as one batch whatever ran before it, and nothing is sampled;
- an abstention is scored as an abstention (right or wrong), never as NaN: every metric is
  stored per item as (numerator, denominator) and a metric with nothing to score is "n/a"
  with its count, not a number that poisons an average;
- a claim the sources are merely silent on is *not supported*, and that is a failure;
- retrieval metrics are the tested functions of `evals.metrics` (duplicates count once,
  short rankings are not padded).

What is where, from the bottom up (each module imports only ones listed before it):

- `metrics`: every metric's definition (`METRICS`, also in evals/README.md) and formulas;
- `datasets`: the repository's eval paths, `EvalItem`, loading and checking the dataset
  files (errors name file:line), the gate's subset and tolerances (evals/gate.toml);
- `cache`: the disk caches of model replies and judge verdicts, `stable_hash`;
- `scoring`: what one retrieval ranking, answer or summary scores against the gold, with
  the per-sentence ALCE verdicts of a judge;
- `report`: report.json, report.md and report.png, `fmt`, and the provenance a report
  records (commit, code hash, settings without secrets, prompts, judge);
- `compare`: aggregating items into metrics, comparing two reports, `load_report`;
- `generate`: drafting more items with the model (`eval --generate N`);
- `runner`: `run_eval`, resuming, and the `Harness` that opens the index, embedder,
  backend, judge and caches once and runs one item at a time.

The CLI (`python -m assistant eval`) only parses arguments and prints; the UI calls
`run_eval`, `load_report` and `compare_reports` directly.
"""

from .compare import compare_reports, item_value, load_report
from .datasets import DATASETS_DIR, load_tolerances
from .metrics import METRICS
from .runner import run_eval

__all__ = [
    "DATASETS_DIR",
    "METRICS",
    "compare_reports",
    "item_value",
    "load_report",
    "load_tolerances",
    "run_eval",
]
