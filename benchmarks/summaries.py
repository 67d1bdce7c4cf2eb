"""Subtopic briefs, offline, this code beside the code at a baseline commit, in one run.

    .venv/bin/python benchmarks/summaries.py [--split test|tune|all] [--baseline REV]
                                             [--dataset PATH] [--off-topic PATH]

On the test half of evals/datasets/subtopics_strict.jsonl (borderline papers neither
rewarded nor penalised), it writes every brief with the baseline's code, run from a
temporary `git worktree` of REV (default f222678, main before the evidence table) in a
subprocess on the same index, then with this checkout's code, and scores both the same
way from what each printed:
- coverage and precision of the cited papers against the gold papers;
- dangling openers per brief: prose sentences opening with a connective or a lead-in
  that points back at a sentence the brief doesn't show ("Secondly,", "To address this
  challenge,"), by a list kept here, apart from the one the code uses;
- repeated sentences per brief, and the longest paragraph or bullet, in sentences;
- themes with one paper (in briefs citing more than one);
- agreement lines whose pair the local judge confirms: a line counts when it names two
  papers and the judge finds what it attributes to one supported by the other's abstract
  (a line citing one paper has no pair);
- warm wall time per brief (p50), and the evidence table's own time (p50);
- of the topics no paper is about (evals/datasets/subtopics_off.jsonl, same split), how
  many each declines, "far" (outside the field) and "near" (the corpus's own words, a
  subject none of its papers is on) apart.
Which papers a brief uses is the topic model's decision (assistant/relevance.py), fitted on
the tune half by `python -m training.topic_relevance`, which prints its thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SEED_CORPUS, SEED_INDEX, open_index, read_jsonl

from assistant.extractive import ExtractiveBackend
from assistant.settings import Settings
from assistant.summarize import TopicError, summarize
from assistant.text import MARKER, markers_in, parse_marker, split_sentences

STRICT = REPO / "evals/datasets/subtopics_strict.jsonl"
OFF_TOPIC = REPO / "evals/datasets/subtopics_off.jsonl"
BASELINE = "f222678"
WARM_UP = "attention heads"  # outside the set: loads the models before anything is timed

# Runs inside the baseline's worktree, with its code on the path: one JSON line per topic.
OLD_RUNNER = """
import json, sys, time
from pathlib import Path
from assistant.components import Components
from assistant.extractive import ExtractiveBackend
from assistant.settings import Settings
from assistant.summarize import TopicError, summarize
index_dir, topics = Path(sys.argv[1]), json.loads(sys.argv[2])
parts = Components(Settings(index_dir=index_dir))
index, embedder = parts.index, parts.embedder
backend = ExtractiveBackend(embedder)
summarize(parts.settings, sys.argv[3], index=index, embedder=embedder, backend=backend)
for topic in topics:
    started = time.perf_counter()
    try:
        brief = summarize(parts.settings, topic, index=index, embedder=embedder, backend=backend)
    except TopicError:  # declined: scored as citing nothing
        print(json.dumps({"markdown": "", "seconds": time.perf_counter() - started,
                          "cited": [], "declined": True}), flush=True)
        continue
    seconds = time.perf_counter() - started
    print(json.dumps({"markdown": brief.markdown, "seconds": seconds,
                      "cited": [s.paper.paper_id for s in brief.citations]}), flush=True)
"""

# What the benchmark counts as a dangling opener, kept apart from the writer's own list.
CONNECTIVE = re.compile(
    r"^(?:However|Moreover|Furthermore|Additionally|In addition|Besides|Secondly|Firstly|"
    r"Thirdly|First|Second|Third|Finally|Lastly|Thus|Therefore|Hence|Consequently|"
    r"Accordingly|Specifically|Notably|Importantly|Meanwhile|Nevertheless|Nonetheless|"
    r"Instead|Conversely|Similarly|Likewise|Indeed|Also|Further|Then|Next|Subsequently|"
    r"In particular|In contrast|As a result|As such|On the other hand|To this end|"
    r"To that end|For this purpose|Remarkably|Equally importantly|Here),"
)
POINTING_BACK = re.compile(
    r"^(?:In|To|Based on|Building on|Motivated by|Inspired by|Given|With|For|From|"
    r"Following|Despite|Unlike|Beyond|By|Towards?|On|As|After|Because of|Due to)\b[^,]{0,60}?"
    r"\b(?:this|these|that|those|such|above|aforementioned)\b[^,]{0,40},"
)


def gold_ids(titles: list[str], index) -> set[str]:
    by_title = {t: pid for pid, p in index.papers.items() for t in [p.title, *p.aliases]}
    return {by_title[t] for t in titles}


def score(cited: set[str], gold: set[str], borderline: set[str]) -> tuple[float, float]:
    counted = cited - borderline
    coverage = len(counted & gold) / len(gold)
    precision = len(counted & gold) / len(counted) if counted else 0.0
    return coverage, precision


def sections(markdown: str) -> dict[str, str]:
    """'## Heading' -> its text, up to the next '## '."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def prose_blocks(markdown: str) -> list[list[str]]:
    """Each paragraph or bullet of the brief's prose (not headings, the table, the
    references or the coverage line) as its sentences."""
    keep = {k: v for k, v in sections(markdown).items() if k not in ("References",)}
    keep.pop("Evidence table", None)
    blocks = []
    for text in keep.values():
        for block in re.split(r"\n\s*\n|\n(?=- )", text):
            block = block.strip()
            if not block or block.startswith(("#", "|", "_", "**Coverage")):
                continue
            blocks.append(split_sentences(re.sub(r"^- ", "", block)))
    return blocks


def normalized(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", MARKER.sub("", sentence.lower())))


def one_paper_themes(markdown: str) -> int:
    themes = sections(markdown).get("Themes", "")
    found = [set(markers_in(body)) for body in re.split(r"^### .*$", themes, flags=re.M)[1:]]
    cited = set(markers_in(markdown))
    return sum(len(markers) == 1 for markers in found) if len(cited) > 1 else 0


def agreement_lines(markdown: str) -> list[str]:
    heading = next((k for k in sections(markdown) if k.startswith("Agreements")), None)
    text = sections(markdown).get(heading, "") if heading else ""
    return [line[2:] for line in text.splitlines() if line.startswith("- ")]


def attributed(line: str) -> dict[int, str]:
    """Marker -> the words of the line before it (what the line says that paper says)."""
    said: dict[int, str] = {}
    start = 0
    for match in MARKER.finditer(line):
        text = re.sub(r"\*\*[^*]+\*\*|[“”\"]", "", line[start : match.start()])
        text = re.sub(r"^[\s;,.:]+|^on [\w -]+:\s*", "", text).strip()
        for n in parse_marker(match.group(1)):
            said.setdefault(n, text)
        start = match.end()
    return said


def confirmed(lines: list[str], sources: dict[int, str], judge) -> int:
    """Lines whose first two papers the judge finds agreeing: one claim by the other's
    abstract. The pairs of all lines go to the judge in one batch."""
    pairs, owners = [], []
    for k, line in enumerate(lines):
        said = attributed(line)
        if len(said) < 2:
            continue
        (p, claim_p), (q, claim_q) = list(said.items())[:2]
        pairs += [(claim_p, sources.get(q, "")), (claim_q, sources.get(p, ""))]
        owners += [k, k]
    verdicts = judge.judge_many(pairs) if pairs else []
    return len({k for k, v in zip(owners, verdicts, strict=True) if v.supported})


def measure(markdown: str, sources: dict[int, str], judge) -> dict:
    blocks = prose_blocks(markdown)
    sentences = [s for block in blocks for s in block]
    keys = [normalized(s) for s in sentences if len(normalized(s).split()) >= 4]
    lines = agreement_lines(markdown)
    return {
        "openers": sum(bool(CONNECTIVE.match(s) or POINTING_BACK.match(s)) for s in sentences),
        "repeats": len(keys) - len(set(keys)),
        "longest": max((len(b) for b in blocks), default=0),
        "one_paper_themes": one_paper_themes(markdown),
        "agreement_lines": len(lines),
        "confirmed": confirmed(lines, sources, judge),
    }


def sources_of(markdown: str, index) -> dict[int, str]:
    """Marker -> abstract, read back from the reference list, in the order cited."""
    refs = sections(markdown).get("References", "")
    by_title = {p.title: p.abstract for p in index.papers.values()}
    found = {}
    for n, title in re.findall(r"^\[(\d+)\] (.+?)\s*$", refs, flags=re.M):
        plain = re.sub(r"\\(.)", r"\1", title)
        found[int(n)] = by_title.get(plain, "")
    return found


def run_baseline(rev: str, topics: list[str], index_dir: Path) -> list[dict]:
    """The baseline's briefs: its code checked out in a temporary worktree, run in a
    subprocess (its own imports, its own warm-up) against the same index."""
    with tempfile.TemporaryDirectory(prefix="summaries-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(REPO)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)  # fmt: skip
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
            env |= {"PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
            done = subprocess.run(
                [sys.executable, "-c", OLD_RUNNER, str(index_dir), json.dumps(topics), WARM_UP],
                cwd=tree, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode:
                raise SystemExit(f"the baseline's run failed:\n{done.stderr[-3000:]}")
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_current(topics: list[str], components) -> list[dict]:
    index, embedder = components.index, components.embedder
    backend, judge = ExtractiveBackend(embedder), components.make_judge("local")
    settings = components.settings
    summarize(settings, WARM_UP, index=index, embedder=embedder, backend=backend, judge=judge)
    rows = []
    for topic in topics:
        started = time.perf_counter()
        try:
            brief = summarize(
                settings, topic, index=index, embedder=embedder, backend=backend, judge=judge
            )
        except TopicError:  # declined, as the baseline may: scored as citing nothing
            seconds = time.perf_counter() - started
            rows.append({"markdown": "", "seconds": seconds, "cited": [], "declined": True})
            continue
        rows.append(
            {
                "markdown": brief.markdown,
                "seconds": time.perf_counter() - started,
                "table_seconds": brief.table_seconds,
                "cited": [s.paper.paper_id for s in brief.citations],
            }
        )
    return rows


def summarize_rows(rows: list[dict], items: list[dict], index, judge) -> dict:
    scored = []
    for row, item in zip(rows, items, strict=True):
        gold = gold_ids(item["gold_titles"], index)
        borderline = gold_ids(item.get("borderline_titles", []), index)
        coverage, precision = score(set(row["cited"]), gold, borderline)
        sources = sources_of(row["markdown"], index)
        scored.append({"coverage": coverage, "precision": precision}
                      | measure(row["markdown"], sources, judge))  # fmt: skip
    n = len(scored)
    total = lambda key: sum(s[key] for s in scored)  # noqa: E731
    tables = [r["table_seconds"] for r in rows if "table_seconds" in r]
    return {
        "topics declined": f"{sum(bool(r.get('declined')) for r in rows)}",
        "coverage": f"{statistics.fmean(s['coverage'] for s in scored):.3f}",
        "precision": f"{statistics.fmean(s['precision'] for s in scored):.3f}",
        "dangling openers / brief": f"{total('openers') / n:.2f}",
        "repeated sentences / brief": f"{total('repeats') / n:.2f}",
        "longest paragraph (sentences)": f"{max(s['longest'] for s in scored)}",
        "themes with one paper": f"{total('one_paper_themes')}",
        "agreement lines judge-confirmed": f"{total('confirmed')}/{total('agreement_lines')}",
        "brief p50 s": f"{statistics.median(r['seconds'] for r in rows):.2f}",
        "table p50 s": f"{statistics.median(tables):.4f}" if tables else "-",
    }


def declined_off_topic(rows: list[dict], items: list[dict]) -> dict[str, str]:
    out = {}
    for kind in ("far", "near"):
        mine = [r for r, i in zip(rows, items, strict=True) if i["kind"] == kind]
        out[f"off-topic declined, {kind}"] = (
            f"{sum(bool(r.get('declined')) for r in mine)}/{len(mine)}"
        )
    return out


TARGETS = {
    "coverage": ">= 0.75",
    "precision": ">= 0.85",
    "dangling openers / brief": "0",
    "repeated sentences / brief": "0",
    "themes with one paper": "0",
    "brief p50 s": "<= 2",
    "table p50 s": "<= 0.5",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=STRICT)
    parser.add_argument("--split", choices=("test", "tune", "all"), default="test")
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    parser.add_argument("--off-topic", type=Path, default=OFF_TOPIC)
    args = parser.parse_args()

    settings = Settings(index_dir=SEED_INDEX)
    components = open_index(SEED_CORPUS, settings)
    items, off = (
        [i for i in read_jsonl(path) if args.split == "all" or i.get("split") == args.split]
        for path in (args.dataset, args.off_topic)
    )
    topics = [i["topic"] for i in items + off]

    old = run_baseline(args.baseline, topics, SEED_INDEX)
    new = run_current(topics, components)
    judge = components.make_judge("local")
    columns = {
        name: summarize_rows(rows[: len(items)], items, components.index, judge)
        | declined_off_topic(rows[len(items) :], off)
        for name, rows in ((args.baseline, old), ("this code", new))
    }
    print(f"\n{len(items)} subtopics ({args.dataset.name}, {args.split}), extractive, warm")
    names = list(columns)
    print(f"| | {names[0]} | {names[1]} | target |\n|---|---|---|---|")
    for metric in columns[names[1]]:
        values = " | ".join(columns[n][metric] for n in names)
        print(f"| {metric} | {values} | {TARGETS.get(metric, '')} |")


if __name__ == "__main__":
    main()
