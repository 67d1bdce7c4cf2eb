"""`search`: hybrid search from the command line, one query, a stream of them, or a prompt."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..components import Components
from ..errors import AssistantError
from .options import add_index_option, iso_date, opened_index, positive_int, queries


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("search", help="hybrid search; with no QUERY, an interactive prompt")
    p.add_argument(
        "query",
        nargs="?",
        metavar="QUERY",
        help="the query, or - to read one query per line from stdin",
    )
    p.add_argument("-k", type=positive_int, default=None, help="papers to return (default: 10)")
    add_index_option(p)
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.add_argument("--source", help="only papers from a source file whose path contains this")
    p.add_argument("--date-from", metavar="YYYY-MM-DD", type=iso_date)
    p.add_argument("--date-to", metavar="YYYY-MM-DD", type=iso_date)
    p.add_argument("--category", help="only papers with this category (e.g. cs.CL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, components: Components) -> int:
    from ..retrieval import Filters, search

    index = opened_index(components)
    filters = Filters(args.source, args.date_from, args.date_to, args.category)
    if args.query is None and not sys.stdin.isatty():
        raise AssistantError("search needs a QUERY", "give one, or - to read queries from stdin")
    if args.query is None:
        print("Search the papers. An empty line or Ctrl-D quits.", file=sys.stderr)
    for query in queries(args.query, prompt="search> "):
        hits = search(index, components.embedder, query, args.k, args.mode, filters)
        if args.json:
            results = {"query": query, "results": [h.to_json() for h in hits]}
            print(json.dumps(results, ensure_ascii=False))
        else:
            print_hits(query, hits)
        sys.stdout.flush()
    return 0


def print_hits(query: str, hits: list) -> None:
    import textwrap

    if not hits:
        print(f"No papers match {query!r}.")
        return
    for hit in hits:
        print(f"{hit.rank:>2}. {hit.paper.title}  [{hit.paper.paper_id}, {hit.score:.3f}]")
        snippet = textwrap.shorten(hit.snippet, 240, placeholder=" …")
        print(textwrap.indent(textwrap.fill(snippet, 96), "    "))
    print()
