#!/usr/bin/env python3
"""Validate evals/datasets/answerability.jsonl and measure how often the system abstains.

The file holds two kinds of hand-written items:

* ``unanswerable`` near misses (``nearmiss-NNN``): each names a real paper of the corpus
  (``near_title``) and asks for something its abstract does not report (``missing``).
* ``single`` controls (``answerable-NNN``): the same shape of question, about a detail
  that the gold abstract does report.

Checks: JSON per line, known fields only, kind-specific fields, id pattern and unique
ids, unique questions, ``split`` in tune/test (and alternating within each kind), exact
gold titles and ``near_title`` (character for character, against the corpus titles
and their alternative titles), every title of a multi-title paper listed together, no
question copied from answers.jsonl or retrieval.jsonl.

Then every question is put to the current system in ONE batched call
(``python -m assistant ask - --json --index DIR``, one question per stdin line) and the
share of abstentions is printed per split and kind. A good system abstains on the
near misses and answers the controls.

Usage (from anywhere):

    /work/main/.venv/bin/python evals/datasets/tools/check_answerability.py
    ... --repo /work/helper-base --index /tmp/hb-index   # the defaults
    ... --no-ask                                         # validation only

Exit status: 0 if the file is valid (and the system ran), 1 otherwise.
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
DEFAULT_FILE = DATASETS / "answerability.jsonl"
DEFAULT_REPO = Path(os.environ.get("ANSWERABILITY_REPO", "/work/helper-base"))
DEFAULT_INDEX = Path(os.environ.get("ANSWERABILITY_INDEX", "/tmp/hb-index"))

KINDS = {
    "unanswerable": {
        "id": re.compile(r"^nearmiss-\d{3}$"),
        "fields": ["id", "kind", "question", "gold_titles", "facts", "near_title", "missing", "split"],
    },
    "single": {
        "id": re.compile(r"^answerable-\d{3}$"),
        "fields": ["id", "kind", "question", "gold_titles", "facts", "split"],
    },
}
SPLITS = ("tune", "test")
MIN_PER_KIND = 45


# --- corpus titles --------------------------------------------------------------------


def run_cli(args: list[str], repo: Path, python: str, stdin: str | None = None) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [python, "-m", "assistant", *args],
        cwd=repo,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and not proc.stdout.strip():
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"error: `assistant {' '.join(args[:2])}` failed (exit {proc.returncode})")
    return proc.stdout


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


DUMP_TITLES = """
import json, sys
from pathlib import Path
from assistant.cli import load_settings
from assistant.index import PaperIndex
settings = load_settings().model_copy(update={"index_dir": Path(sys.argv[1])})
for p in PaperIndex.open(settings).papers.values():
    print(json.dumps({"paper_id": p.paper_id, "title": p.title, "aliases": list(p.aliases)}))
"""


class Corpus:
    """Title -> paper_id for the corpus, alternative titles included.

    All titles and aliases are read in one process that imports the assistant from
    ``repo``. If that fails (internals changed), the CLI is used instead: ``papers
    --list`` for main titles and ``papers --find``/``--show`` for alternative titles.
    """

    def __init__(self, repo: Path, index: Path, python: str) -> None:
        self.repo, self.index, self.python = repo, index, python
        self.title_to_id: dict[str, str] = {}
        self.titles_of: dict[str, set[str]] = defaultdict(set)
        self._shown: set[str] = set()
        self.complete = self._dump()
        if not self.complete:
            for row in json_lines(run_cli(["papers", "--list", "--json", "--index", str(index)], repo, python)):
                self._add(row["paper_id"], row["title"])

    def _dump(self) -> bool:
        env = dict(os.environ, PYTHONPATH=str(self.repo))
        proc = subprocess.run(
            [self.python, "-c", DUMP_TITLES, str(self.index)],
            cwd=self.repo, env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            return False
        try:
            rows = json_lines(proc.stdout)
        except json.JSONDecodeError:
            return False
        for row in rows:
            for title in [row["title"], *row["aliases"]]:
                self._add(row["paper_id"], title)
        return bool(rows)

    def _add(self, pid: str, title: str) -> None:
        self.title_to_id[title] = pid
        self.titles_of[pid].add(title)

    def _show(self, pid: str) -> None:
        """CLI fallback: load a paper's alternative titles (`papers --list` prints main titles only)."""
        if self.complete or pid in self._shown:
            return
        self._shown.add(pid)
        out = run_cli(["papers", "--show", pid, "--json", "--index", str(self.index)], self.repo, self.python)
        for paper in json_lines(out):
            for alias in paper.get("aliases") or []:
                self._add(pid, alias)

    def lookup(self, title: str) -> str | None:
        """The paper_id of an exact title, or None."""
        if title not in self.title_to_id and not self.complete:
            out = run_cli(["papers", "--find", title, "--json", "--index", str(self.index)], self.repo, self.python)
            for row in json_lines(out):
                self._show(row["paper_id"])
        pid = self.title_to_id.get(title)
        if pid is not None:
            self._show(pid)
        return pid

    def all_titles(self, pid: str) -> set[str]:
        self._show(pid)
        return self.titles_of[pid]


# --- validation -----------------------------------------------------------------------


def load_other_questions() -> set[str]:
    seen = set()
    for name in ("answers.jsonl", "retrieval.jsonl"):
        path = DATASETS / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                for key in ("question", "query"):
                    if isinstance(obj.get(key), str):
                        seen.add(norm(obj[key]))
    return seen


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def validate(path: Path, corpus: Corpus) -> tuple[list[dict], list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    items: list[dict] = []
    ids: Counter = Counter()
    questions: Counter = Counter()
    other = load_other_questions()

    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {lineno}: blank line")
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: not JSON ({exc})")
            continue
        if not isinstance(item, dict):
            errors.append(f"line {lineno}: not a JSON object")
            continue
        where = f"line {lineno} ({item.get('id', '?')})"
        kind = item.get("kind")
        if kind not in KINDS:
            errors.append(f"{where}: kind must be one of {sorted(KINDS)}, not {kind!r}")
            continue
        spec = KINDS[kind]
        missing = [f for f in spec["fields"] if f not in item]
        extra = [f for f in item if f not in spec["fields"]]
        if missing:
            errors.append(f"{where}: missing fields {missing}")
        if extra:
            errors.append(f"{where}: unexpected fields for kind {kind!r}: {extra}")
        if missing:
            continue

        if not isinstance(item["id"], str) or not spec["id"].match(item["id"]):
            errors.append(f"{where}: id must match {spec['id'].pattern} for kind {kind!r}")
        ids[item["id"]] += 1

        q = item["question"]
        if not isinstance(q, str) or not q.strip():
            errors.append(f"{where}: question must be a non-empty string")
            continue
        if "\n" in q or "\r" in q:
            errors.append(f"{where}: question must be a single line (it is sent one per stdin line)")
        questions[norm(q)] += 1
        if norm(q) in other:
            errors.append(f"{where}: question copied verbatim from answers.jsonl/retrieval.jsonl")

        if item["split"] not in SPLITS:
            errors.append(f"{where}: split must be 'tune' or 'test', not {item['split']!r}")
        for field in ("gold_titles", "facts"):
            value = item[field]
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                errors.append(f"{where}: {field} must be a list of non-empty strings")

        if kind == "unanswerable":
            if item["gold_titles"] or item["facts"]:
                errors.append(f"{where}: an unanswerable item has gold_titles == [] and facts == []")
            nt = item["near_title"]
            if not isinstance(nt, str) or corpus.lookup(nt) is None:
                errors.append(f"{where}: near_title is not an exact corpus title: {nt!r}")
            if not isinstance(item["missing"], str) or not item["missing"].strip():
                errors.append(f"{where}: missing must be a non-empty one-line string")
            elif "\n" in item["missing"]:
                errors.append(f"{where}: missing must be one line")
        else:
            gold = item["gold_titles"] if isinstance(item["gold_titles"], list) else []
            if not gold:
                errors.append(f"{where}: a single item needs its gold title")
            if not item["facts"]:
                errors.append(f"{where}: a single control needs at least one fact")
            if len(set(gold)) != len(gold):
                errors.append(f"{where}: duplicate gold titles")
            pids = set()
            for title in gold:
                pid = corpus.lookup(title)
                if pid is None:
                    errors.append(f"{where}: gold title is not an exact corpus title: {title!r}")
                    continue
                pids.add(pid)
            if len(pids) > 1:
                errors.append(f"{where}: a single item must rest on exactly one paper, got {len(pids)}")
            for pid in pids:
                absent = corpus.all_titles(pid) - set(gold)
                if absent:
                    errors.append(f"{where}: a paper with several titles must list them all; missing {sorted(absent)}")
        items.append(item)

    for i, n in ids.items():
        if n > 1:
            errors.append(f"id {i!r} is used {n} times")
    for q, n in questions.items():
        if n > 1:
            errors.append(f"question used {n} times: {q[:80]!r}")

    by_kind: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_kind[item["kind"]].append(item)
    for kind in KINDS:
        group = by_kind.get(kind, [])
        if len(group) < MIN_PER_KIND:
            errors.append(f"kind {kind!r}: {len(group)} items, at least {MIN_PER_KIND} needed")
        splits = [it["split"] for it in group]
        if any(a == b for a, b in zip(splits, splits[1:])):
            warnings.append(f"kind {kind!r}: splits do not alternate tune/test in file order")
        c = Counter(splits)
        if abs(c["tune"] - c["test"]) > 1:
            warnings.append(f"kind {kind!r}: unbalanced splits (tune {c['tune']}, test {c['test']})")
    return items, errors, warnings


# --- asking the system ----------------------------------------------------------------


def ask_all(items: list[dict], repo: Path, index: Path, python: str) -> list[dict]:
    """All questions through one `ask -` call; answers come back in question order."""
    stdin = "".join(it["question"].strip() + "\n" for it in items)
    out = run_cli(["ask", "-", "--json", "--index", str(index)], repo, python, stdin=stdin)
    answers = json_lines(out)
    if len(answers) != len(items):
        raise SystemExit(f"error: {len(items)} questions sent, {len(answers)} answers received")
    for it, ans in zip(items, answers):
        if ans.get("question", "").strip() != it["question"].strip():
            raise SystemExit(f"error: answers out of order at {it['id']}")
    return answers


def report(items: list[dict], answers: list[dict]) -> None:
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # n, abstained, errors
    backends = Counter(a.get("backend", "?") for a in answers)
    by_id = {}
    for it, ans in zip(items, answers):
        err = "error" in ans or "abstained" not in ans
        abst = bool(ans.get("abstained")) and not err
        by_id[it["id"]] = abst
        for split in (it["split"], "all"):
            r = rows[(split, it["kind"])]
            r[0] += 1
            r[1] += abst
            r[2] += err

    print(f"system: {', '.join(f'{b} x{n}' for b, n in backends.items())}")
    print()
    print(f"{'split':<6} {'kind':<13} {'n':>4} {'abstained':>10} {'share':>7} {'errors':>7}  expected")
    for kind in ("unanswerable", "single"):
        expect = "abstain (higher is better)" if kind == "unanswerable" else "answer (lower is better)"
        for split in (*SPLITS, "all"):
            n, a, e = rows[(split, kind)]
            share = f"{a / n:.1%}" if n else "-"
            print(f"{split:<6} {kind:<13} {n:>4} {a:>10} {share:>7} {e:>7}  {expect}")

    # near miss and control on the same paper
    near = {it["near_title"]: it for it in items if it["kind"] == "unanswerable"}
    pairs = Counter()
    for it in items:
        if it["kind"] == "single":
            for title in it["gold_titles"]:
                if title in near:
                    nm_abst, ctl_abst = by_id[near[title]["id"]], by_id[it["id"]]
                    pairs[(nm_abst, ctl_abst)] += 1
                    break
    if pairs:
        total = sum(pairs.values())
        print()
        print(f"paired papers (near miss + control on the same paper): {total}")
        print(f"  abstains on near miss, answers control (ideal): {pairs[(True, False)]}")
        print(f"  answers both:                                   {pairs[(False, False)]}")
        print(f"  abstains on both:                               {pairs[(True, True)]}")
        print(f"  answers near miss, abstains on control:         {pairs[(False, True)]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE, help="dataset (default: %(default)s)")
    ap.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="assistant checkout to run (default: %(default)s)")
    ap.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index directory (default: %(default)s)")
    ap.add_argument("--python", default=sys.executable, help="interpreter with the assistant's dependencies")
    ap.add_argument("--no-ask", action="store_true", help="validate only; do not run the system")
    args = ap.parse_args(argv)

    corpus = Corpus(args.repo, args.index, args.python)
    items, errors, warnings = validate(args.file, corpus)
    counts = Counter((it["kind"], it["split"]) for it in items)
    print(f"{args.file.name}: {len(items)} items, {len(corpus.title_to_id)} corpus titles")
    for kind in KINDS:
        print(f"  {kind:<13} tune {counts[(kind, 'tune')]:>3}  test {counts[(kind, 'test')]:>3}")
    for w in warnings:
        print(f"warning: {w}")
    if errors:
        for e in errors:
            print(f"error: {e}")
        print(f"INVALID: {len(errors)} error(s)")
        return 1
    print("valid: fields, ids, questions, splits, exact titles, near_title all check out")
    if args.no_ask:
        return 0
    print()
    answers = ask_all(items, args.repo, args.index, args.python)
    report(items, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
