"""Writing a report (report.json, report.md, report.png) and what it records of its making:
the commit, the code, the settings without secrets, the prompts and the judge."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from ..cache import stable_hash
from ..settings import Settings, public_url
from .datasets import REPO, dataset_files
from .metrics import METRICS


class Section(Protocol):
    """What a report's Markdown needs of a comparison (a `compare.Comparison`)."""

    def to_markdown(self, left: str = "baseline", right: str = "candidate") -> str: ...


def write_report(report: dict, out_dir: Path, comparison: Section | None = None) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    atomic_write(out_dir / "report.md", render_markdown(report, comparison))
    write_chart(report, out_dir / "report.png")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fmt(value: Any, signed: bool = False) -> str:
    """A metric value as shown: 3 decimals; n/a when unmeasured (None, or NaN from pandas)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    return str(value)


def render_markdown(report: dict, comparison: Section | None = None) -> str:
    metrics = report["metrics"]
    lines = [
        "# Eval report",
        "",
        f"- created {report['created']}, commit {report['git'].get('commit') or 'unknown'}"
        + (" (uncommitted changes)" if report["git"].get("dirty") else ""),
        f"- backend {report['backend']['name']} ({report['backend']['model']}), "
        f"judge {json.dumps(report['judge'])}",
        "- prompts: "
        + (
            ", ".join(f"{k} {v['version']} ({v['sha']})" for k, v in report["prompts"].items())
            or "none (the extractive backend uses no prompt)"
        ),
        f"- {report['dataset']['items']} items from "
        + ", ".join(f["path"] for f in report["dataset"]["files"])
        + (f", subset {report['dataset']['subset']}" if report["dataset"].get("subset") else ""),
        "",
        "| metric | value | over | items | meaning |",
        "|---|---:|---:|---:|---|",
    ]
    for name, m in metrics.items():
        meaning = METRICS[name].description if name in METRICS else ""
        lines.append(
            f"| {name} | {fmt(m['value'])} | {m['numerator']:g}/{m['denominator']:g} | "
            f"{m['items']} | {meaning} |"
        )
    lines += cost_lines(report.get("cost", {}))
    lines += ["", "## By kind", ""]
    kinds = report.get("by_kind", {})
    shown = [n for n in METRICS if any(n in v for v in kinds.values())]
    lines.append("| kind | " + " | ".join(shown) + " |")
    lines.append("|---|" + "---:|" * len(shown))
    for kind, values in kinds.items():
        cells = [fmt(values[n]["value"]) if n in values else "" for n in shown]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    problems = worst_items(report.get("items", []))
    if problems:
        lines += ["", "## Items to look at", ""]
        lines += [f"- {p}" for p in problems]
    if comparison is not None:
        lines += ["", "## Candidate prompts against the current ones", ""]
        lines.append(comparison.to_markdown("current", "candidate"))
    lines += sentence_sections(report.get("items", []))
    return "\n".join(lines) + "\n"


def sentence_sections(records: list[dict]) -> list[str]:
    """Every answer's claim sentences with the judge's verdict and the source sentence behind
    it: a metric says how many sentences failed, this says which, and what to check them
    against."""
    answered = [r for r in records if r.get("sentences")]
    if not answered:
        return []
    lines = ["", "## Answers, sentence by sentence"]
    for r in answered:
        lines += ["", f"### {r['uid']}", "", f"Question: {table_text(r['question'])}", ""]
        lines += ["| sentence | verdict | score | evidence |", "|---|---|---:|---|"]
        for s in r["sentences"]:
            where = f"[{s['evidence_marker']}] " if s.get("evidence_marker") else ""
            evidence = f"{where}“{table_text(s['evidence'])}”" if s.get("evidence") else ""
            lines.append(
                f"| {table_text(s['text'])} | {verdict_words(s)} | "
                f"{fmt(s.get('faithful_score'))} | {evidence} |"
            )
    return lines


def verdict_words(sentence: dict) -> str:
    """One sentence's verdict as a reader says it (the eval's rules: grounding_check.py)."""
    if sentence["supported"]:
        words = "supported"
    elif sentence["faithful"]:
        words = "faithful, but not by its own citations"
    else:
        words = "not supported"
    imprecise = ", ".join(f"[{m}]" for m in sentence.get("imprecise", []))
    return f"{words}; imprecise {imprecise}" if imprecise and sentence["supported"] else words


def table_text(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def cost_lines(cost: dict) -> list[str]:
    """The cost paragraph of report.md; none when no answer was run."""
    if not cost.get("answer_items"):
        return []
    total = cost.get("cost_usd_total")
    return [
        "",
        f"Cost per answer ({cost['answer_items']} answers): latency p50 "
        f"{fmt(cost.get('latency_p50_s'))} s, mean {fmt(cost.get('latency_mean_s'))} s; "
        f"{cost.get('prompt_tokens_per_item')} prompt + "
        f"{cost.get('completion_tokens_per_item')} completion tokens; total cost "
        + ("unknown (a model without a price)" if total is None else f"${total:.4f}")
        + ". Latency varies between runs; the other numbers don't.",
    ]


def worst_items(records: list[dict], limit: int = 40) -> list[str]:
    """What a person should read first: wrong abstentions, then unsupported sentences."""
    out = []
    for r in records:
        if r["task"] != "answer":
            continue
        if r.get("abstained") != r.get("expected_abstain"):
            what = "abstained" if r.get("abstained") else "answered"
            should = "abstained" if r.get("expected_abstain") else "answered"
            out.append(f"{r['uid']}: {what}, should have {should}: {r['question']}")
    for r in records:
        bad = [s for s in r.get("sentences", []) if not s["faithful"]]
        if bad:
            example = bad[0]["text"][:160]
            total = len(r["sentences"])
            out.append(
                f"{r['uid']}: {len(bad)} of {total} sentences not supported, e.g. “{example}”"
            )
    return out[:limit]


CHART_METRICS = (
    "recall@5",
    "ndcg@10",
    "citation_validity",
    "citation_recall",
    "citation_precision",
    "faithfulness",
    "fact_recall",
    "abstention_accuracy",
    "summary_coverage",
    "summary_precision",
)


def write_chart(report: dict, path: Path) -> None:
    """A horizontal bar per main metric (0-1); n/a metrics are left out, not drawn as 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["metrics"]
    names = [n for n in CHART_METRICS if metrics.get(n, {}).get("value") is not None]
    values = [metrics[n]["value"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.2), dpi=100)
    ax.barh(names[::-1], values[::-1], color="#4c72b0")
    for y, v in enumerate(values[::-1]):
        inside = v > 0.85  # a long bar carries its label inside, in white
        x, colour, align = (v - 0.01, "white", "right") if inside else (v + 0.01, "black", "left")
        ax.text(x, y, f"{v:.3f}", va="center", ha=align, color=colour, fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_title(f"{report['backend']['name']} backend, {report['dataset']['items']} items")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# --- Provenance: what made the report -------------------------------------------------------


VOLATILE_JUDGE_KEYS = ("retries", "errors")  # counters an LLM judge updates as it works


def describe_judge(judge: Any) -> dict:
    describe = getattr(judge, "describe", None)
    if describe is not None:
        return dict(describe())
    return {"judge": getattr(judge, "name", type(judge).__name__)}


def volatile_free(description: dict) -> dict:
    return {k: v for k, v in description.items() if k not in VOLATILE_JUDGE_KEYS}


def same_judge(description: dict) -> dict:
    """What makes two reports' judges the same judge: not the counters, nor the numeric
    precision (`auto` picks bf16 or fp32 by CPU, so CI and a laptop differ; that is noise
    for the tolerances, not another judge). Caches and resume keys do keep the precision."""
    return {k: v for k, v in volatile_free(description).items() if k != "precision"}


SECRET_FIELDS = {"openai_api_key"}
LOCAL_FIELDS = {"index_dir", "data_dir", "prompts_dir"}  # paths: not part of a result's identity


def public_settings(settings: Settings, for_key: bool = False) -> dict[str, Any]:
    """The settings a report may show: no key (not even whether one is set), no credentials
    in a URL. For a resume key, also without local paths (prompts count by content)."""
    data = settings.model_dump(mode="json", exclude=SECRET_FIELDS)
    data["openai_base_url"] = public_url(settings.openai_base_url)
    data["backend"] = settings.backend
    if for_key:
        for name in LOCAL_FIELDS:
            data.pop(name, None)
    return data


def prompt_records(prompts: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        name: {"version": p.version, "sha": p.sha, "path": display(p.path)}
        for name, p in sorted(prompts.items())
    }


def display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(REPO))
    return str(path)


def provenance(
    settings: Settings,
    *,
    backend: dict[str, Any],
    prompts: dict[str, Any],
    judge: Any,
    index: Any,
    dataset: Path | None,
    subset: dict[str, int] | None,
    items: int,
) -> dict[str, Any]:
    """A report's head: what made it, from the commit and dataset files to the judge and the
    index build (the caller adds the metrics and the items)."""
    files = dataset_files(dataset)
    return {
        "schema": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "dataset": {
            "files": [
                {"path": display(f), "sha256": stable_hash(f.read_text(encoding="utf-8"))[:16]}
                for f in files
            ],
            "subset": subset,
            "items": items,
        },
        "backend": backend,
        "settings": public_settings(settings),
        "prompts": prompt_records(prompts),
        "judge": describe_judge(judge),
        "index": {
            "generation": getattr(getattr(index, "snapshot", None), "generation", None),
            "papers": len(index.papers),
        },
    }


PACKAGE = Path(__file__).resolve().parents[1]  # assistant/, not just assistant/evals/


@lru_cache(maxsize=1)
def source_hash() -> str:
    """A hash of the package's code and every prompt file: a resumed item must have been made
    by the same code (an edit to answer.py changes answers while settings stay the same)."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted((REPO / "prompts").glob("*.md"))
    return stable_hash([[display(f), f.read_text(encoding="utf-8")] for f in files if f.is_file()])


def git_state() -> dict[str, Any]:
    """The commit the report was made from, and whether the tree had changes (read-only git)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
