"""`eval`: run the eval harness, print its metrics, and gate against a baseline report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..components import Components
from .options import add_index_option, positive_int


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("eval", help="score retrieval, citations and answers on the eval datasets")
    p.add_argument(
        "--dataset",
        type=Path,
        metavar="PATH",
        help="a .jsonl file or a folder of them (default: the hand-written evals/datasets)",
    )
    p.add_argument("--judge", choices=["local", "llm"], default="local", help="default: local")
    p.add_argument(
        "--backend",
        choices=["extractive", "openai"],
        default=None,
        help="answer backend (default: ASSISTANT_LLM)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("evals/out/latest"),
        metavar="DIR",
        help="report.json, report.md, report.png; a re-run resumes here (default: %(default)s)",
    )
    p.add_argument(
        "--subset",
        choices=["all", "gate"],
        default="all",
        help="gate: the fixed subset in evals/gate.toml, a few minutes (default: all)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="REPORT",
        help="compare with this report; exit 1 if a gated metric drops beyond its tolerance",
    )
    p.add_argument(
        "--prompts",
        type=Path,
        metavar="DIR",
        help="also run this candidate prompt set on the same items, side by side",
    )
    p.add_argument(
        "--generate",
        type=positive_int,
        metavar="N",
        help="instead: draft N new items with the configured model into evals/datasets/generated/",
    )
    add_index_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, components: Components) -> int:
    settings = components.settings
    from ..evals import compare_reports, load_report, load_tolerances, run_eval

    if args.generate:
        from ..evals.generate import generate_items

        path, count = generate_items(
            settings, args.generate, skipped=lambda line: print(line, file=sys.stderr)
        )
        if count < args.generate:
            print(
                f"drafted {count} of {args.generate}: the rest were skipped (above)",
                file=sys.stderr,
            )
        print(f"wrote {count} draft item(s) to {path}; review them before use")
        return 0
    baseline = load_report(args.baseline) if args.baseline else None  # fail before running
    try:
        report = run_eval(
            settings,
            dataset=args.dataset,
            judge=args.judge,
            backend=args.backend,
            out_dir=args.out,
            prompts_dir=args.prompts,
            subset=args.subset,
            show_progress=not args.quiet,
            components=components,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished items are kept in {args.out}/items.jsonl; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print_summary(report, args.out)
    candidate_regressed = bool(report.get("prompt_comparison", {}).get("regressed"))
    if candidate_regressed:
        print("FAILED: the candidate prompts regress a gated metric", file=sys.stderr)
    if baseline is None:
        return 1 if candidate_regressed else 0
    comparison = compare_reports(baseline, report, load_tolerances())
    print(f"\nAgainst the baseline {args.baseline}:\n")
    print(comparison.to_markdown())
    (args.out / "comparison.md").write_text(comparison.to_markdown(), encoding="utf-8")
    if comparison.judge_changed:
        print(
            "FAILED: the baseline was scored by another judge, so the gate can't compare; "
            "remake the baseline with this judge (evals/README.md, 'The gate')",
            file=sys.stderr,
        )
        return 1
    if comparison.regressed:
        failed = ", ".join(r.metric for r in comparison.rows if r.regressed)
        print(f"FAILED: {failed} dropped beyond tolerance (evals/gate.toml)", file=sys.stderr)
        return 1
    return 1 if candidate_regressed else 0


def print_summary(report: dict, out_dir: Path) -> None:
    """What the CLI prints: the metrics, then (with --prompts) both prompt sets side by side."""
    from ..evals.compare import Comparison, Row
    from ..evals.report import fmt

    width = max((len(n) for n in report["metrics"]), default=0)
    run = report.get("run", {})
    print(
        f"{report['dataset']['items']} items, {report['backend']['name']} backend, "
        f"{report['judge'].get('judge', '?')} judge ({run.get('items_resumed', 0)} resumed, "
        f"{run.get('llm_calls', 0)} model calls, {run.get('seconds', 0):.0f} s)"
    )
    for name, m in report["metrics"].items():
        print(f"  {name:<{width}}  {fmt(m['value'])}  ({m['numerator']:g}/{m['denominator']:g})")
    cost = report.get("cost", {})
    if cost.get("answer_items"):
        print(
            f"  per answer: p50 {fmt(cost['latency_p50_s'])} s, "
            f"{cost['prompt_tokens_per_item']} prompt + {cost['completion_tokens_per_item']} "
            "completion tokens"
        )
    comparison = report.get("prompt_comparison")
    if comparison:
        rows = [Row(**r) for r in comparison["rows"]]
        table = Comparison(rows, comparison["items"], comparison["notes"]).to_markdown(
            "current", "candidate"
        )
        print(f"\nCandidate prompts against the current ones:\n\n{table}")
    print(f"report: {Path(out_dir) / 'report.md'} (and report.json, report.png)")
