#!/usr/bin/env python3
"""Validate evals/datasets/retrieval_short.jsonl and score BM25, dense and hybrid search on it.

Checks: JSON fields and types, unique ids, kind/style/split values, 4-12 words per
question, gold titles that exist character for character in the corpus (all titles of
a multi-title paper listed together), no paper or question taken from the `short`
items of retrieval.jsonl, style minimums, split balance, and the BM25 filter
(recall@5 <= 0.6 over the whole file).

Scores: recall@5 (share of gold papers in the top 5, averaged over queries) and
MRR@5 (1/rank of the first gold paper in the top 5, else 0), over the whole set, per
split and per style. Every mode is run once through the CLI with all queries on stdin:

    python -m assistant search - --mode MODE -k 5 --json --index INDEX

Usage:
    python evals/datasets/tools/check_short_queries.py [--index /tmp/hb-index]
        [--code /work/helper-base] [--python /work/main/.venv/bin/python] [--no-search]

Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATASETS = HERE.parent
FIELDS = {"id", "kind", "question", "gold_titles", "style", "split"}
STYLES = ("paraphrase", "problem", "acronym", "misspelling", "implied")
STYLE_MINIMUMS = {"acronym": 20, "misspelling": 15, "implied": 15}
SPLITS = ("tune", "test")
MIN_ITEMS = 170
MIN_PAPERS = 150
MAX_BM25_RECALL = 0.6
K = 5
MODES = ("bm25", "dense", "hybrid")

# Reads the index once and prints every paper with all its titles.
DUMP_PAPERS = """
import json
from assistant.cli import load_settings, open_index
index = open_index(load_settings())
print(json.dumps([
    {"paper_id": p.paper_id, "titles": [p.title, *p.aliases]}
    for p in index.papers.values()
], ensure_ascii=False))
"""


def run(cmd: list[str], code: Path, index: str, stdin: str | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(code), ASSISTANT_INDEX=index)
    proc = subprocess.run(
        cmd, cwd=code, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return proc.stdout


def load_corpus(python: str, code: Path, index: str) -> dict[str, str]:
    """Every title (and alias) of the corpus mapped to its paper id."""
    papers = json.loads(run([python, "-c", DUMP_PAPERS], code, index))
    title_to_id: dict[str, str] = {}
    for paper in papers:
        for title in paper["titles"]:
            title_to_id[title] = paper["paper_id"]
    return title_to_id


def load_jsonl(path: Path) -> tuple[list[dict], list[str]]:
    items, errors = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {n}: empty line")
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"line {n}: not JSON ({exc})")
    return items, errors


def validate(items: list[dict], title_to_id: dict[str, str], retrieval: list[dict]) -> list[str]:
    errors: list[str] = []
    titles_of: dict[str, set[str]] = defaultdict(set)
    for title, pid in title_to_id.items():
        titles_of[pid].add(title)

    short_items = [r for r in retrieval if r.get("kind") == "short"]
    banned_papers = {title_to_id[t] for r in short_items for t in r["gold_titles"] if t in title_to_id}
    retrieval_questions = {r["question"].strip().casefold() for r in retrieval}

    ids, questions, papers = Counter(), Counter(), Counter()
    for item in items:
        where = item.get("id", "?")
        if set(item) != FIELDS:
            errors.append(f"{where}: fields {sorted(item)} != {sorted(FIELDS)}")
            continue
        ids[item["id"]] += 1
        if not re.fullmatch(r"sq-\d{3}", item["id"]):
            errors.append(f"{where}: id not of the form sq-NNN")
        if item["kind"] != "short":
            errors.append(f"{where}: kind {item['kind']!r} != 'short'")
        if item["style"] not in STYLES:
            errors.append(f"{where}: style {item['style']!r} not in {STYLES}")
        if item["split"] not in SPLITS:
            errors.append(f"{where}: split {item['split']!r} not in {SPLITS}")
        q = item["question"]
        if not isinstance(q, str) or not q.strip():
            errors.append(f"{where}: empty question")
            continue
        words = len(q.split())
        if not 4 <= words <= 12:
            errors.append(f"{where}: {words} words (need 4-12): {q!r}")
        questions[q.strip().casefold()] += 1
        if q.strip().casefold() in retrieval_questions:
            errors.append(f"{where}: question copied from retrieval.jsonl")
        gold = item["gold_titles"]
        if not isinstance(gold, list) or not gold or not all(isinstance(t, str) for t in gold):
            errors.append(f"{where}: gold_titles must be a non-empty list of strings")
            continue
        if len(set(gold)) != len(gold):
            errors.append(f"{where}: duplicate gold title")
        pids = set()
        for title in gold:
            if title not in title_to_id:
                errors.append(f"{where}: gold title not in corpus: {title!r}")
                continue
            pids.add(title_to_id[title])
        for pid in pids:
            missing = titles_of[pid] - set(gold)
            if missing:
                errors.append(f"{where}: paper {pid} has other titles to list too: {sorted(missing)}")
            if pid in banned_papers:
                errors.append(f"{where}: paper {pid} is the subject of a retrieval.jsonl short item")
            papers[pid] += 1

    errors += [f"{i}: duplicate id" for i, c in ids.items() if c > 1]
    errors += [f"duplicate question: {q!r}" for q, c in questions.items() if c > 1]
    if len(items) < MIN_ITEMS:
        errors.append(f"{len(items)} items, need at least {MIN_ITEMS}")
    if len(papers) < MIN_PAPERS:
        errors.append(f"{len(papers)} distinct gold papers, need at least {MIN_PAPERS}")
    styles = Counter(i.get("style") for i in items)
    for style, minimum in STYLE_MINIMUMS.items():
        if styles[style] < minimum:
            errors.append(f"style {style}: {styles[style]} items, need at least {minimum}")
    by_split = Counter((i.get("style"), i.get("split")) for i in items)
    for style in STYLES:
        if abs(by_split[(style, "tune")] - by_split[(style, "test")]) > 1:
            errors.append(
                f"style {style}: tune/test unbalanced "
                f"({by_split[(style, 'tune')]} vs {by_split[(style, 'test')]})"
            )
    print(f"items: {len(items)}   distinct gold papers: {len(papers)}   "
          f"items with 2+ gold papers: {sum(1 for i in items if len(set(title_to_id.get(t) for t in i.get('gold_titles', []))) > 1)}")
    print("styles:", ", ".join(f"{s} {styles[s]}" for s in STYLES))
    print("splits:", ", ".join(
        f"{sp} {sum(by_split[(s, sp)] for s in STYLES)} ("
        + " ".join(f"{s[:4]} {by_split[(s, sp)]}" for s in STYLES) + ")"
        for sp in SPLITS))
    return errors


def search(python: str, code: Path, index: str, mode: str, questions: list[str]) -> list[list[str]]:
    out = run(
        [python, "-m", "assistant", "search", "-", "--mode", mode, "-k", str(K), "--json",
         "--index", index],
        code, index, stdin="\n".join(questions) + "\n",
    )
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    if [r["query"] for r in results] != [q.strip() for q in questions]:
        sys.exit(f"{mode}: search output does not line up with the questions")
    return [[h["paper_id"] for h in r["results"]] for r in results]


def score(gold: set[str], ranked: list[str]) -> tuple[float, float]:
    top = ranked[:K]
    recall = len(gold & set(top)) / len(gold)
    rr = next((1 / (n + 1) for n, pid in enumerate(top) if pid in gold), 0.0)
    return recall, rr


def report(items, title_to_id, runs) -> list[str]:
    groups: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        groups["all"].append(n)
        groups[f"split={item['split']}"].append(n)
    for n, item in enumerate(items):
        groups[f"style={item['style']}"].append(n)
    gold = [{title_to_id[t] for t in i["gold_titles"] if t in title_to_id} for i in items]

    header = f"{'subset':<20}{'n':>5}" + "".join(
        f"{m + ' R@5':>13}{m + ' MRR@5':>14}" for m in runs
    )
    print("\n" + header)
    print("-" * len(header))
    table = {}
    for name in ["all", "split=tune", "split=test", *[f"style={s}" for s in STYLES]]:
        idx = groups.get(name, [])
        if not idx:
            continue
        row = f"{name:<20}{len(idx):>5}"
        for mode, ranked in runs.items():
            scores = [score(gold[n], ranked[n]) for n in idx]
            r5 = sum(s[0] for s in scores) / len(idx)
            mrr = sum(s[1] for s in scores) / len(idx)
            table[(name, mode)] = r5
            row += f"{r5:>13.3f}{mrr:>14.3f}"
        print(row)
    errors = []
    if "bm25" in runs and table[("all", "bm25")] > MAX_BM25_RECALL:
        errors.append(f"BM25 recall@5 {table[('all', 'bm25')]:.3f} > {MAX_BM25_RECALL}")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=DATASETS / "retrieval_short.jsonl")
    ap.add_argument("--retrieval", type=Path, default=DATASETS / "retrieval.jsonl")
    ap.add_argument("--index", default="/tmp/hb-index")
    ap.add_argument("--code", type=Path, default=Path("/work/helper-base"))
    ap.add_argument("--python", default="/work/main/.venv/bin/python")
    ap.add_argument("--no-search", action="store_true", help="only validate, do not run searches")
    args = ap.parse_args()

    items, errors = load_jsonl(args.file)
    retrieval, retrieval_errors = load_jsonl(args.retrieval)
    errors += [f"retrieval.jsonl {e}" for e in retrieval_errors]
    title_to_id = load_corpus(args.python, args.code, args.index)
    print(f"corpus: {len(set(title_to_id.values()))} papers, {len(title_to_id)} titles")
    errors += validate(items, title_to_id, retrieval)

    if not args.no_search and all(set(i) == FIELDS for i in items):
        questions = [i["question"] for i in items]
        runs = {mode: search(args.python, args.code, args.index, mode, questions) for mode in MODES}
        errors += report(items, title_to_id, runs)

    print()
    if errors:
        print(f"FAILED: {len(errors)} problem(s)")
        for e in errors:
            print("  -", e)
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
