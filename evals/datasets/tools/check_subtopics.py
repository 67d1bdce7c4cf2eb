#!/usr/bin/env python3
"""Validate evals/datasets/subtopics_strict.jsonl and score a retrieval baseline on it.

Checks (any failure -> exit status 1, baseline skipped):
  * every line is a JSON object with exactly the fields
    id, topic, gold_titles, borderline_titles, notes, split
  * ids look like ``st-NN`` and are unique; topics are unique, 2-8 words
  * notes is one non-empty line; split is "tune" or "test"
  * every title is a paper title copied exactly (no case folding) from the index,
    either a paper's main title or one of its other titles (aliases)
  * a paper with several titles is listed with all of them, in the same list
  * no title appears twice; gold and borderline share no paper
  * 4-14 gold papers per topic (counted as papers, not titles); at least 32 topics

Baseline: hybrid search, top 10 papers for the topic string (all topics batched
through one ``search -`` call). Per topic, on paper ids:
  coverage  = |top10 & gold| / |gold|
  precision = |top10 & gold| / |top10 - borderline|   (0 if that set is empty)
and the means over topics, per split.

Usage (from anywhere):
  python evals/datasets/tools/check_subtopics.py --code /work/helper-base --index /tmp/hb-index
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

FIELDS = ("id", "topic", "gold_titles", "borderline_titles", "notes", "split")
SPLITS = ("tune", "test")
MIN_TOPICS = 32
GOLD_MIN, GOLD_MAX = 4, 14
TOPIC_WORDS = (2, 8)
K = 10

HERE = Path(__file__).resolve()
DEFAULT_FILE = HERE.parents[1] / "subtopics_strict.jsonl"
DEFAULT_CODE = HERE.parents[3]

# Reads paper ids, main titles and other titles straight from the index, in one
# process; `papers --list` prints main titles only.
ALIAS_SNIPPET = """
import json, sys
from assistant.settings import Settings
from assistant.index import PaperIndex
index = PaperIndex.open(Settings(index_dir=sys.argv[1]))
for p in index.papers.values():
    print(json.dumps({"paper_id": p.paper_id, "title": p.title,
                      "aliases": list(p.aliases)}, ensure_ascii=False))
"""


def run_assistant(args: argparse.Namespace, cli_args: list[str], stdin: str | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(args.code))
    proc = subprocess.run(
        [args.python, "-m", "assistant", *cli_args, "--index", str(args.index)],
        input=stdin, capture_output=True, text=True, cwd=args.code, env=env,
    )
    if proc.returncode != 0:
        sys.exit(f"assistant {' '.join(cli_args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def load_papers(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Return title -> paper_id (every title of every paper) and paper_id -> all titles."""
    listed = [json.loads(line) for line in run_assistant(args, ["papers", "--list", "--json"]).splitlines() if line.strip()]
    titles_of = {row["paper_id"]: [row["title"]] for row in listed}
    env = dict(os.environ, PYTHONPATH=str(args.code))
    proc = subprocess.run([args.python, "-c", ALIAS_SNIPPET, str(args.index)],
                          capture_output=True, text=True, cwd=args.code, env=env)
    if proc.returncode != 0:
        sys.exit(f"could not read titles from the index:\n{proc.stderr[-2000:]}")
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if row["paper_id"] not in titles_of or titles_of[row["paper_id"]][0] != row["title"]:
            sys.exit(f"index and `papers --list` disagree on {row['paper_id']}")
        titles_of[row["paper_id"]] = [row["title"], *row["aliases"]]
    by_title: dict[str, str] = {}
    for pid, titles in titles_of.items():
        for t in titles:
            if t in by_title and by_title[t] != pid:
                sys.exit(f"title {t!r} belongs to two papers")
            by_title[t] = pid
    return by_title, titles_of


def validate(items: list[dict], by_title: dict[str, str], titles_of: dict[str, list[str]]) -> list[str]:
    errors: list[str] = []
    seen_ids: set[str] = set()
    seen_topics: set[str] = set()
    for n, item in enumerate(items, 1):
        where = f"line {n} ({item.get('id', '?')})"
        if sorted(item) != sorted(FIELDS):
            errors.append(f"{where}: fields {sorted(item)} != {sorted(FIELDS)}")
            continue
        if not isinstance(item["id"], str) or not re.fullmatch(r"st-\d{2,}", item["id"]):
            errors.append(f"{where}: bad id {item['id']!r}")
        elif item["id"] in seen_ids:
            errors.append(f"{where}: duplicate id")
        seen_ids.add(item["id"])
        topic = item["topic"]
        if not isinstance(topic, str) or not topic.strip():
            errors.append(f"{where}: empty topic")
        else:
            words = len(topic.split())
            if not TOPIC_WORDS[0] <= words <= TOPIC_WORDS[1]:
                errors.append(f"{where}: topic has {words} words, want {TOPIC_WORDS[0]}-{TOPIC_WORDS[1]}")
            if topic.casefold() in seen_topics:
                errors.append(f"{where}: duplicate topic {topic!r}")
            seen_topics.add(topic.casefold())
        if not isinstance(item["notes"], str) or not item["notes"].strip() or "\n" in item["notes"]:
            errors.append(f"{where}: notes must be one non-empty line")
        if item["split"] not in SPLITS:
            errors.append(f"{where}: split {item['split']!r} not in {SPLITS}")
        ids: dict[str, set[str]] = {}
        for field in ("gold_titles", "borderline_titles"):
            titles = item[field]
            if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
                errors.append(f"{where}: {field} must be a list of strings")
                ids[field] = set()
                continue
            if len(set(titles)) != len(titles):
                errors.append(f"{where}: {field} repeats a title")
            unknown = [t for t in titles if t not in by_title]
            for t in unknown:
                errors.append(f"{where}: {field}: not an exact corpus title: {t!r}")
            pids = {by_title[t] for t in titles if t in by_title}
            for pid in pids:
                missing = [t for t in titles_of[pid] if t not in titles]
                if missing:
                    errors.append(f"{where}: {field}: paper {pid} is listed without its other title(s) {missing}")
            ids[field] = pids
        if ids.get("gold_titles") is not None and ids.get("borderline_titles") is not None:
            both = ids["gold_titles"] & ids["borderline_titles"]
            if both:
                errors.append(f"{where}: gold and borderline share {[titles_of[p][0] for p in both]}")
            if not GOLD_MIN <= len(ids["gold_titles"]) <= GOLD_MAX:
                errors.append(f"{where}: {len(ids['gold_titles'])} gold papers, want {GOLD_MIN}-{GOLD_MAX}")
    if len(items) < MIN_TOPICS:
        errors.append(f"{len(items)} topics, want at least {MIN_TOPICS}")
    return errors


def baseline(args: argparse.Namespace, items: list[dict], by_title: dict[str, str]) -> None:
    queries = [item["topic"] for item in items]
    out = run_assistant(args, ["search", "-", "--mode", "hybrid", "-k", str(K), "--json"],
                        stdin="\n".join(queries) + "\n")
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(rows) != len(queries):
        sys.exit(f"search returned {len(rows)} result sets for {len(queries)} topics")
    results = {}
    for item, row in zip(items, rows):
        if row["query"] != item["topic"]:
            sys.exit(f"search answered {row['query']!r} for topic {item['topic']!r}")
        top: list[str] = []
        for hit in row["results"]:
            if hit["paper_id"] not in top:
                top.append(hit["paper_id"])
        top = top[:K]
        gold = {by_title[t] for t in item["gold_titles"]}
        border = {by_title[t] for t in item["borderline_titles"]}
        hits = len(set(top) & gold)
        judged = set(top) - border
        results[item["id"]] = (hits / len(gold), hits / len(judged) if judged else 0.0,
                               hits, len(gold), len(set(top) & border), len(judged))

    print(f"\nBaseline: hybrid search, top {K} papers for the topic string")
    print(f"{'id':<7}{'split':<6}{'gold':>5}{'hit':>5}{'bord':>5}{'cov':>7}{'prec':>7}  topic")
    for split in SPLITS:
        for item in items:
            if item["split"] != split:
                continue
            cov, prec, hits, ngold, nb, _ = results[item["id"]]
            print(f"{item['id']:<7}{split:<6}{ngold:>5}{hits:>5}{nb:>5}{cov:>7.3f}{prec:>7.3f}  {item['topic']}")
    print()
    for split in (*SPLITS, "all"):
        chosen = [results[i["id"]] for i in items if split == "all" or i["split"] == split]
        if not chosen:
            continue
        mean_cov = sum(r[0] for r in chosen) / len(chosen)
        mean_prec = sum(r[1] for r in chosen) / len(chosen)
        print(f"{split:<5} topics={len(chosen):>2}  coverage={mean_cov:.3f}  precision={mean_prec:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--code", type=Path, default=DEFAULT_CODE,
                        help="directory holding the `assistant` package (default: this repo)")
    parser.add_argument("--index", type=Path, default=None,
                        help="index directory (default: CODE/.assistant/index)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that can import assistant")
    parser.add_argument("--no-baseline", action="store_true", help="validate only")
    args = parser.parse_args()
    args.code = args.code.resolve()
    args.index = (args.index or args.code / ".assistant" / "index").resolve()

    items = []
    for n, line in enumerate(args.file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            print(f"line {n}: invalid JSON: {exc}")
            return 1
        if not isinstance(obj, dict):
            print(f"line {n}: not a JSON object")
            return 1
        items.append(obj)

    by_title, titles_of = load_papers(args)
    errors = validate(items, by_title, titles_of)
    print(f"{args.file.name}: {len(items)} topics checked against {len(titles_of)} papers")
    if errors:
        for e in errors:
            print("ERROR", e)
        print(f"{len(errors)} error(s); baseline skipped")
        return 1

    for split in SPLITS:
        chosen = [i for i in items if i["split"] == split]
        gold = [len({by_title[t] for t in i["gold_titles"]}) for i in chosen]
        border = [len({by_title[t] for t in i["borderline_titles"]}) for i in chosen]
        print(f"{split:<5} topics={len(chosen):>2}  gold papers={sum(gold):>3} "
              f"(min {min(gold)}, mean {sum(gold) / len(gold):.1f}, max {max(gold)})  "
              f"borderline papers={sum(border):>3} (mean {sum(border) / len(border):.1f})")
    print("OK: all checks passed")
    if not args.no_baseline:
        baseline(args, items, by_title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
