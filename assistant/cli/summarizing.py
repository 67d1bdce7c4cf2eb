"""`summarize`: a themed, cited brief on a topic, as Markdown or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..components import Components
from .options import add_index_option, opened_index, positive_int, terminal_safe


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("summarize", help="a themed brief on a topic, every claim cited")
    p.add_argument("topic", metavar="TOPIC", help='e.g. "KV-cache compression"; - reads stdin')
    p.add_argument(
        "--max-papers",
        type=positive_int,
        default=25,
        metavar="N",
        help="papers considered at most (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, metavar="FILE.md", help="also write the brief here")
    p.add_argument(
        "--csv", type=Path, metavar="FILE.csv", help="also write the evidence table here"
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of Markdown")
    add_index_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, components: Components) -> int:
    from ..evidence import table_csv
    from ..summarize import summarize

    topic = sys.stdin.read() if args.topic == "-" else args.topic
    brief = summarize(
        components.settings,
        topic,
        index=opened_index(components),
        embedder=components.embedder,
        backend=components.backend,
        judge=components.make_judge("local"),
        max_papers=args.max_papers,
        progress=lambda message: print(f"… {message}", file=sys.stderr, flush=True),
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(brief.markdown + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        args.csv.write_text(table_csv(brief.table), encoding="utf-8", newline="")
        print(f"wrote {args.csv} ({len(brief.table)} rows)", file=sys.stderr)
    if args.json:
        print(json.dumps(brief.to_json(), ensure_ascii=False))
        return 0
    print(terminal_safe(brief.markdown))
    check = brief.check
    if check.invalid_markers:
        print(f"\nRemoved invalid markers: {check.invalid_markers}", file=sys.stderr)
    if check.uncited_sentences:
        print(f"Uncited sentences: {len(check.uncited_sentences)}", file=sys.stderr)
        for sentence in check.uncited_sentences:
            print(f"  - {terminal_safe(sentence)}", file=sys.stderr)
    return 0
