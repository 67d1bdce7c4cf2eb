"""`ingest` (corpus files into the index) and `papers` (what the index holds)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..components import Components
from ..errors import AssistantError, CorpusError
from .options import add_index_option, opened_index


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("ingest", help="read corpus files into the index (incremental)")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders (default: data/papers)",
    )
    add_index_option(p)
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="start from scratch; the old index stays usable until the new one is complete",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail on any bad input instead of skipping it; the index is left unchanged",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_ingest)

    p = sub.add_parser("papers", help="corpus statistics; list, find or show papers")
    add_index_option(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list every paper")
    group.add_argument("--find", metavar="TEXT", help="papers whose title contains TEXT")
    group.add_argument("--show", metavar="PAPER_ID", help="one paper in full")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_papers)


def run_ingest(args: argparse.Namespace, components: Components) -> int:
    from ..corpus import read_corpus
    from ..ingest import ingest

    settings = components.settings
    roots = args.paths or [settings.data_dir]
    read = read_corpus(roots)
    for problem in read.problems:
        label = "error" if args.strict else "warning" if problem.kept else "skipped"
        print(f"{label}: {problem}", file=sys.stderr)
    if read.problems and args.strict:
        raise CorpusError(read.problems, listed=True)  # each was printed once, above
    skipped = sum(not p.kept for p in read.problems)
    truncated = len(read.problems) - skipped
    print(
        f"Read {read.records} records from {len(read.files)} file(s): {len(read.papers)} papers"
        + (f", {skipped} problem(s) skipped" if skipped else "")
        + (f", {truncated} truncated" if truncated else ""),
        file=sys.stderr,
    )
    try:
        report = ingest(
            settings,
            read,
            roots,
            components.embedder,
            rebuild=args.rebuild,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the index holds whole papers only; run ingest again to resume",
            file=sys.stderr,
        )
        return 130
    print(report.summary())
    return 0


def run_papers(args: argparse.Namespace, components: Components) -> int:
    index = opened_index(components)
    papers = sorted(index.papers.values(), key=lambda p: p.title.casefold())
    if args.show:
        paper = index.papers.get(args.show)
        if paper is None:
            raise AssistantError(
                f"no paper with id {args.show!r}", "find ids with `papers --find TEXT`"
            )
        print(json.dumps(paper.to_dict(), ensure_ascii=False, indent=None if args.json else 2))
        return 0
    if args.find or args.list:
        needle = (args.find or "").casefold()
        found = [p for p in papers if needle in " ".join([p.title, *p.aliases]).casefold()]
        for paper in found:
            if args.json:
                row = {"paper_id": paper.paper_id, "title": paper.title}
                print(json.dumps(row, ensure_ascii=False))
            else:
                print(f"{paper.paper_id}  {paper.title}")
        if not found and not args.json:
            print("No titles match.", file=sys.stderr)
        return 0
    stats = corpus_stats(index)
    if args.json:
        print(json.dumps(stats))
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


def corpus_stats(index) -> dict:
    from collections import Counter

    from ..corpus import display_path

    papers = list(index.papers.values())
    per_source = Counter(display_path(s) for p in papers for s in p.sources)
    dates = sorted(p.date for p in papers if p.date)
    snap = index.snapshot
    return {
        "papers": len(papers),
        "chunks": len(snap.chunk_ids),
        "chunks per paper": round(len(snap.chunk_ids) / max(len(papers), 1), 2),
        "papers in several files": sum(1 for p in papers if len(p.sources) > 1),
        "papers with several titles": sum(1 for p in papers if p.aliases),
        "embedding model": (index.collection.metadata or {}).get("embedding_model"),
        "index": str(index.settings.index_dir),
        "dates": f"{dates[0]} to {dates[-1]}" if dates else "none given",
        "source files": dict(sorted(per_source.items())),
    }
