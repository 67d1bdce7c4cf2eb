"""`judge`: does each evidence support its claim? JSON Lines in, JSON Lines out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..components import Components


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("judge", help="does each evidence support its claim? (JSONL in and out)")
    p.add_argument(
        "--pairs",
        type=Path,
        required=True,
        metavar="FILE",
        help='JSONL, one {"id", "claim", "evidence"} per line',
    )
    p.add_argument(
        "--judge",
        choices=["local", "llm"],
        default="local",
        help="local: offline cross-encoder (default); llm: the configured OpenAI-compatible model",
    )
    p.add_argument(
        "--out", type=Path, metavar="FILE", help='{"id", "score", "label"} lines (default: stdout)'
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, components: Components) -> int:
    from ..grounding import read_pairs

    rows = read_pairs(args.pairs)  # every line checked before any model loads
    judge = components.make_judge(args.judge)
    verdicts = judge.judge_many([(row.claim, row.evidence) for row in rows])
    lines = [
        json.dumps({"id": row.id, "score": round(v.score, 4), "label": v.label}, ensure_ascii=False)
        for row, v in zip(rows, verdicts, strict=True)
    ]
    text = "".join(line + "\n" for line in lines)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"judged {len(rows)} pair(s): {json.dumps(judge.describe())}", file=sys.stderr)
    return 0
