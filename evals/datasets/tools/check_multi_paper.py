#!/usr/bin/env python3
"""Validate retrieval_multi.jsonl and measure retrieval on it.

Validation (exit code 1 on any problem):
  * every line is a JSON object with exactly the expected fields and types;
  * ids are unique and look like mp-NNN; kind is "multi";
  * shape is "compare" or "which-methods", split is "tune" or "test";
  * every gold title is a paper title or alias in the index, character for character;
  * each item names 3-6 distinct papers (titles are mapped to paper ids first, so the
    two titles of the medical-adaptation paper count once) and no title is repeated;
  * an item naming one title of a multi-title paper names all of its titles;
  * no question is copied verbatim from another item or from the other datasets.

Measurement: every question is run once through `python -m assistant search` in each
mode (bm25, dense, hybrid) with -k 10, all questions of a mode in one batched call.
Per question it computes the share of the gold papers found in the top 10 and
recall@5, and prints the means per split and overall (and per shape).

Usage:
  python evals/datasets/tools/check_multi_paper.py [--file F] [--index DIR]
         [--assistant-root DIR] [--python PY] [--no-search]
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
FIELDS = {"id", "kind", "question", "gold_titles", "shape", "notes", "split"}
SHAPES = {"compare", "which-methods"}
SPLITS = ("tune", "test")
MODES = ("bm25", "dense", "hybrid")
MIN_PAPERS, MAX_PAPERS = 3, 6
K = 10


def run_cli(args: argparse.Namespace, cli_args: list[str], stdin: str | None = None) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(args.assistant_root) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    proc = subprocess.run(
        [args.python, "-m", "assistant", *cli_args, "--index", str(args.index)],
        cwd=args.assistant_root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"assistant {' '.join(cli_args[:2])} failed:\n{proc.stderr}")
    return proc.stdout


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


DUMP_PAPERS = """
import json, sys
from pathlib import Path
from assistant.cli import load_settings, open_index
settings = load_settings().model_copy(update={"index_dir": Path(sys.argv[1])})
for p in open_index(settings).papers.values():
    row = {"paper_id": p.paper_id, "title": p.title, "aliases": list(p.aliases)}
    print(json.dumps(row, ensure_ascii=False))
"""


def load_papers(args: argparse.Namespace) -> list[dict]:
    """Every indexed paper with its title and alternative titles (aliases).

    `papers --list --json` shows only main titles, so the aliases are read by importing
    the assistant package from --assistant-root in one subprocess (read-only).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(args.assistant_root)
    proc = subprocess.run(
        [args.python, "-c", DUMP_PAPERS, str(args.index)],
        cwd=args.assistant_root,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"could not read the paper list:\n{proc.stderr}")
    papers = json_lines(proc.stdout)
    listed = {
        p["paper_id"]: p["title"] for p in json_lines(run_cli(args, ["papers", "--list", "--json"]))
    }
    if listed != {p["paper_id"]: p["title"] for p in papers}:
        sys.exit("the paper dump disagrees with `papers --list`")
    return papers


def other_questions() -> set[str]:
    seen = set()
    for name in ("retrieval.jsonl", "answers.jsonl"):
        path = DATASETS / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                for q in [item.get("question"), *item.get("turns", [])]:
                    if isinstance(q, str):
                        seen.add(q.strip().casefold())
    return seen


def validate(items: list[dict], args: argparse.Namespace) -> tuple[list[str], dict[str, set[str]]]:
    errors: list[str] = []
    ids = Counter()
    questions = Counter()
    for n, item in enumerate(items, 1):
        where = f"line {n} ({item.get('id', '?')})"
        if set(item) != FIELDS:
            errors.append(f"{where}: fields {sorted(item)} != {sorted(FIELDS)}")
        if not (isinstance(item.get("id"), str) and re.fullmatch(r"mp-\d{3}", item["id"])):
            errors.append(f"{where}: id must look like mp-NNN")
        ids[item.get("id")] += 1
        if item.get("kind") != "multi":
            errors.append(f"{where}: kind must be 'multi'")
        if not (isinstance(item.get("question"), str) and item["question"].strip()):
            errors.append(f"{where}: empty question")
        else:
            questions[item["question"].strip().casefold()] += 1
        if item.get("shape") not in SHAPES:
            errors.append(f"{where}: shape {item.get('shape')!r} not in {sorted(SHAPES)}")
        if item.get("split") not in SPLITS:
            errors.append(f"{where}: split {item.get('split')!r} not in {list(SPLITS)}")
        if not (
            isinstance(item.get("notes"), str)
            and item["notes"].strip()
            and "\n" not in item["notes"]
        ):
            errors.append(f"{where}: notes must be one non-empty line")
        gold = item.get("gold_titles")
        if not (isinstance(gold, list) and gold and all(isinstance(t, str) for t in gold)):
            errors.append(f"{where}: gold_titles must be a non-empty list of strings")
            item["gold_titles"] = []
    errors += [f"id {i!r} used {c} times" for i, c in ids.items() if c > 1]
    errors += [f"question repeated {c} times: {q[:80]!r}" for q, c in questions.items() if c > 1]
    elsewhere = other_questions()
    errors += [
        f"question copied from another dataset: {q[:80]!r}" for q in questions if q in elsewhere
    ]

    papers = load_papers(args)
    title_to_id: dict[str, str] = {}
    names_of: dict[str, set[str]] = {}
    for p in papers:
        names_of[p["paper_id"]] = {p["title"], *p["aliases"]}
        for name in names_of[p["paper_id"]]:
            if title_to_id.setdefault(name, p["paper_id"]) != p["paper_id"]:
                errors.append(f"corpus: title {name!r} belongs to two papers")
    gold_ids: dict[str, set[str]] = {}
    for item in items:
        where = item.get("id", "?")
        gold = item["gold_titles"]
        for title, c in Counter(gold).items():
            if c > 1:
                errors.append(f"{where}: title listed {c} times: {title!r}")
        missing = [t for t in gold if t not in title_to_id]
        errors += [f"{where}: not a corpus title (exact match): {t!r}" for t in missing]
        pids = {title_to_id[t] for t in gold if t in title_to_id}
        gold_ids[where] = pids
        if not missing and not MIN_PAPERS <= len(pids) <= MAX_PAPERS:
            errors.append(f"{where}: {len(pids)} distinct papers, need {MIN_PAPERS}-{MAX_PAPERS}")
    # A paper with several titles must be named by all of them.
    multi = {pid: names for pid, names in names_of.items() if len(names) > 1}
    for item in items:
        for pid in gold_ids[item.get("id", "?")] & set(multi):
            absent = multi[pid] - set(item["gold_titles"])
            if absent:
                errors.append(f"{item.get('id')}: also list the other title(s) {sorted(absent)}")
    return errors, gold_ids


def search_all(args: argparse.Namespace, questions: list[str], mode: str) -> list[list[str]]:
    stdin = "".join(q.replace("\n", " ").strip() + "\n" for q in questions)
    out = json_lines(
        run_cli(args, ["search", "-", "--mode", mode, "-k", str(K), "--json"], stdin=stdin)
    )
    if len(out) != len(questions):
        sys.exit(f"{mode}: got {len(out)} result sets for {len(questions)} questions")
    ranked = []
    for q, res in zip(questions, out, strict=True):
        if res["query"].strip() != q.replace("\n", " ").strip():
            sys.exit(f"{mode}: result order does not match the questions")
        seen: list[str] = []
        for hit in sorted(res["results"], key=lambda h: h["rank"]):
            if hit["paper_id"] not in seen:
                seen.append(hit["paper_id"])
        ranked.append(seen)
    return ranked


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--file", type=Path, default=DATASETS / "retrieval_multi.jsonl")
    ap.add_argument("--index", type=Path, default=Path("/tmp/hb-index"))
    ap.add_argument("--assistant-root", type=Path, default=Path("/work/helper-base"))
    ap.add_argument("--python", default="/work/main/.venv/bin/python")
    ap.add_argument("--no-search", action="store_true", help="validate only")
    args = ap.parse_args()

    items = []
    for n, line in enumerate(args.file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            print(f"line {n}: not JSON: {exc}")
            return 1
        if not isinstance(item, dict):
            print(f"line {n}: not a JSON object")
            return 1
        items.append(item)

    errors, gold_ids = validate(items, args)
    if errors:
        print(f"validation FAILED ({len(errors)} problems):")
        for e in errors:
            print("  " + e)
        return 1
    n_titles = sum(len(i["gold_titles"]) for i in items)
    n_papers = sum(len(gold_ids[i["id"]]) for i in items)
    print(
        f"validation OK: {len(items)} items, {n_titles} gold titles, {n_papers} gold papers "
        f"({n_papers / len(items):.2f} per item)"
    )
    counts = Counter((i["shape"], i["split"]) for i in items)
    for shape in sorted(SHAPES):
        print(
            f"  {shape:<14} "
            + "  ".join(f"{s}={counts[(shape, s)]}" for s in SPLITS)
            + f"  total={sum(counts[(shape, s)] for s in SPLITS)}"
        )
    print(
        "  "
        + f"{'all':<14} "
        + "  ".join(f"{s}={sum(counts[(h, s)] for h in SHAPES)}" for s in SPLITS)
        + f"  total={len(items)}"
    )
    if args.no_search:
        return 0

    questions = [i["question"] for i in items]
    scores: dict[str, list[tuple[float, float]]] = {}
    for mode in MODES:
        ranked = search_all(args, questions, mode)
        per_q = []
        for item, hits in zip(items, ranked, strict=True):
            gold = gold_ids[item["id"]]
            per_q.append(
                (len(gold & set(hits[:10])) / len(gold), len(gold & set(hits[:5])) / len(gold))
            )
        scores[mode] = per_q

    groups: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        groups[item["split"]].append(n)
        groups["shape:" + item["shape"]].append(n)
        groups["overall"].append(n)
    order = [*SPLITS, "overall", *(f"shape:{s}" for s in sorted(SHAPES))]

    print()
    print("gold share in top 10 (mean over questions) / recall@5, k=10 per query")
    header = f"{'group':<21}{'n':>4}" + "".join(
        f"{m + ' top10':>13}{m + ' R@5':>11}" for m in MODES
    )
    print(header)
    print("-" * len(header))
    for g in order:
        idx = groups[g]
        row = f"{g:<21}{len(idx):>4}"
        for m in MODES:
            top10 = sum(scores[m][n][0] for n in idx) / len(idx)
            r5 = sum(scores[m][n][1] for n in idx) / len(idx)
            row += f"{top10:>13.3f}{r5:>11.3f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
