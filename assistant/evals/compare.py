"""Aggregating items into metrics, and comparing two reports over the items they share.

Every metric is stored per item as (numerator, denominator) and divided only here, so a
metric over any subset of items (a gate run, the items two reports share) is exact.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AssistantError
from .metrics import METRICS, ratio
from .report import fmt, same_judge, table_text

# --- Aggregation: per-item (numerator, denominator) -> metrics -------------------------------


def aggregate(records: list[dict]) -> dict[str, dict]:
    """Each metric as sum(numerators) / sum(denominators) over the items that have it.

    For retrieval metrics every item adds (value, 1), so this is the mean over items; for
    sentence and citation metrics it is the share over all sentences or citations (micro).
    A metric no item has is left out; one whose denominators sum to 0 has value None.
    """
    sums: dict[str, list[float]] = {}
    for record in records:
        for name, (num, den) in record.get("scores", {}).items():
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] += num
            acc[1] += den
            acc[2] += 1
    ordered = [n for n in METRICS if n in sums] + sorted(n for n in sums if n not in METRICS)
    result = {}
    for name in ordered:
        num, den, n = sums[name]
        value = ratio(num, den)
        result[name] = {
            "value": None if value is None else round(value, 6),
            "numerator": round(num, 6),
            "denominator": round(den, 6),
            "items": int(n),
        }
    return result


def aggregate_by_kind(records: list[dict]) -> dict[str, dict[str, dict]]:
    """`aggregate` per task and kind ("answer/single", "retrieval/retrieval", ...)."""
    return {
        kind: aggregate([r for r in records if f"{r['task']}/{r['kind']}" == kind])
        for kind in sorted({f"{r['task']}/{r['kind']}" for r in records})
    }


def cost_summary(records: list[dict]) -> dict[str, Any]:
    """Latency and tokens per item. Latency is measured, so unlike the metrics it varies
    between runs (and a cached model reply is faster than the first one)."""
    answered = [r for r in records if r["task"] == "answer" and "cost" in r]
    latencies = [r["cost"]["latency_s"] for r in answered]
    costs = [r["cost"].get("cost_usd") for r in answered]
    return {
        "answer_items": len(answered),
        "latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "latency_mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
        "latency_max_s": round(max(latencies), 4) if latencies else None,
        "prompt_tokens_per_item": (
            round(statistics.fmean(r["cost"]["prompt_tokens"] for r in answered), 1)
            if answered
            else None
        ),
        "completion_tokens_per_item": (
            round(statistics.fmean(r["cost"]["completion_tokens"] for r in answered), 1)
            if answered
            else None
        ),
        "cost_usd_total": (
            None if any(c is None for c in costs) else round(sum(c for c in costs if c), 6)
        ),
    }


# --- Comparing two reports ----------------------------------------------------------------


@dataclass
class Row:
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    gated: bool
    tolerance: float | None
    regressed: bool
    items: int  # items the candidate's value rests on

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Comparison:
    rows: list[Row]
    items: list[dict]  # per-item differences
    notes: list[str] = field(default_factory=list)
    common_items: int = 0
    judge_changed: bool = False  # then the judged metrics can't vouch for anything

    @property
    def regressed(self) -> bool:
        """A gated metric dropped, or went unmeasured, or there was nothing to compare."""
        return self.common_items == 0 or any(r.regressed for r in self.rows)

    def to_json(self) -> dict:
        return {
            "regressed": self.regressed,
            "common_items": self.common_items,
            "judge_changed": self.judge_changed,
            "notes": self.notes,
            "rows": [r.to_json() for r in self.rows],
            "items": self.items,
        }

    def table(self, left: str = "baseline", right: str = "candidate") -> str:
        lines = [
            f"| metric | {left} | {right} | delta | gate |",
            "|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            gate = ""
            if r.gated:
                gate = (
                    f"REGRESSED (tolerance {r.tolerance:g})"
                    if r.regressed
                    else f"ok (±{r.tolerance:g})"
                )
            lines.append(
                f"| {r.metric} | {fmt(r.baseline)} | {fmt(r.candidate)} | "
                f"{fmt(r.delta, signed=True)} | {gate} |"
            )
        return "\n".join(lines)

    def to_markdown(self, left: str = "baseline", right: str = "candidate") -> str:
        out = [self.table(left, right), ""]
        out += [f"- {note}" for note in self.notes]
        if self.items:
            out += ["", f"### Items that differ ({len(self.items)})", ""]
            out += ["| item | what changed |", "|---|---|"]
            for item in self.items[:60]:
                changes = "; ".join(
                    f"{k}: {fmt(v[0])} → {fmt(v[1])}" for k, v in item["changes"].items()
                )
                out.append(f"| {item['uid']} | {changes} |")
            if len(self.items) > 60:
                out.append(f"| … | {len(self.items) - 60} more in report.json |")
        out += worse_sentences_table(self.items, right)
        return "\n".join(out) + "\n"


def compare_reports(baseline: dict, candidate: dict, tolerances: dict | None = None) -> Comparison:
    """Both reports' metrics over the items they share (same id, same question), per item too.

    Recomputing on the shared items is what makes a gate run on a subset comparable with a
    full baseline, and keeps an added or removed dataset item from passing for a change in
    quality. A gated metric regresses when it falls by more than its tolerance (rises, for a
    lower-is-better metric).
    """
    tolerances = tolerances if tolerances is not None else {}
    base_items = {r["uid"]: r for r in baseline.get("items", [])}
    cand_items = {r["uid"]: r for r in candidate.get("items", [])}
    common = [
        uid
        for uid in cand_items
        if uid in base_items and base_items[uid].get("question") == cand_items[uid].get("question")
    ]
    notes: list[str] = []
    if not common:
        notes.append("the reports share no items, so nothing was compared: that fails the gate")
    only_base = len(base_items) - len(common)
    only_cand = len(cand_items) - len(common)
    if only_base or only_cand:
        notes.append(
            f"compared on the {len(common)} items both reports have "
            f"({only_base} only in the baseline, {only_cand} only in the candidate)"
        )
    judge_changed = same_judge(baseline.get("judge", {})) != same_judge(candidate.get("judge", {}))
    if judge_changed:
        notes.append(
            "the judges differ, so the judged metrics measure different things: "
            f"{baseline.get('judge')} vs {candidate.get('judge')}"
        )
    if baseline.get("index", {}).get("generation") != candidate.get("index", {}).get("generation"):
        notes.append("the reports were made on different index builds")
    b_metrics = aggregate([base_items[u] for u in common])
    c_metrics = aggregate([cand_items[u] for u in common])
    names = [n for n in METRICS if n in b_metrics or n in c_metrics]
    names += sorted((set(b_metrics) | set(c_metrics)) - set(names))
    rows = []
    for name in names:
        b = b_metrics.get(name, {}).get("value")
        c = c_metrics.get(name, {}).get("value")
        delta = None if b is None or c is None else round(c - b, 6)
        gated = name in tolerances
        tolerance = float(tolerances[name]) if gated else None
        regressed = False
        if gated and delta is not None:
            better = METRICS[name].higher_is_better if name in METRICS else True
            drop = -delta if better else delta
            regressed = drop > tolerance + 1e-9  # type: ignore[operator]
        elif gated and b is not None:
            regressed = True  # the baseline measured it and the candidate can't: not a pass
        items = c_metrics.get(name, {}).get("items", 0)
        rows.append(Row(name, b, c, delta, gated, tolerance, regressed, items))
    for name in tolerances:
        if name not in b_metrics and name not in c_metrics:
            notes.append(f"gated metric {name} is in neither report")
    diffs = item_differences(base_items, cand_items, common)
    return Comparison(rows, diffs, notes, len(common), judge_changed)


def item_differences(base: dict[str, dict], cand: dict[str, dict], common: list[str]) -> list[dict]:
    diffs = []
    for uid in common:
        b, c = base[uid], cand[uid]
        changes: dict[str, list] = {}
        if b.get("abstained") != c.get("abstained"):
            changes["abstained"] = [b.get("abstained"), c.get("abstained")]
        for name in sorted(set(b.get("scores", {})) | set(c.get("scores", {}))):
            bv = item_value(b, name)
            cv = item_value(c, name)
            if bv != cv:
                changes[name] = [bv, cv]
        if changes or b.get("answer") != c.get("answer"):
            diffs.append(
                {
                    "uid": uid,
                    "question": c.get("question"),
                    "changes": changes,
                    "baseline_answer": b.get("answer"),
                    "candidate_answer": c.get("answer"),
                    "worse_sentences": worse_sentences(b, c),
                }
            )
    return diffs


def sentence_problems(sentence: dict) -> list[str]:
    """What the judge held against one answer sentence, worst first, in the tables' words."""
    problems = []
    if not sentence.get("faithful", True):
        problems.append("not faithful")
    if not sentence.get("supported", True):
        problems.append("not supported by its citations")
    return problems + [f"imprecise [{m}]" for m in sentence.get("imprecise", [])]


def worse_sentences(base: dict, cand: dict) -> list[dict]:
    """The candidate's sentences with a problem the baseline's same sentence didn't have (a
    sentence the baseline never wrote had none): which sentences moved a metric, with the
    verdict and the evidence sentence a reader checks it against."""
    before = {s["text"]: sentence_problems(s) for s in base.get("sentences", [])}
    worse = []
    for sentence in cand.get("sentences", []):
        had = before.get(sentence["text"], [])
        new = [p for p in sentence_problems(sentence) if p not in had]
        if new:
            worse.append(
                {
                    "text": sentence["text"],
                    "problems": new,
                    "score": sentence.get("faithful_score", sentence.get("score")),
                    "evidence": sentence.get("evidence", ""),
                    "evidence_marker": sentence.get("evidence_marker"),
                }
            )
    return worse


def worse_sentences_table(items: list[dict], side: str, limit: int = 60) -> list[str]:
    """Markdown lines listing every sentence that got worse, item by item; none if none did."""
    rows = [(item["uid"], s) for item in items for s in item.get("worse_sentences", [])]
    if not rows:
        return []
    out = ["", f"### Sentences that got worse in the {side} ({len(rows)})", ""]
    out += ["| item | sentence | verdict | evidence |", "|---|---|---|---|"]
    for uid, s in rows[:limit]:
        where = f"[{s['evidence_marker']}] " if s.get("evidence_marker") else ""
        evidence = f"{where}“{table_text(s['evidence'])}”" if s.get("evidence") else ""
        verdict = f"{', '.join(s['problems'])} ({fmt(s.get('score'))})"
        out.append(f"| {uid} | {table_text(s['text'])} | {verdict} | {evidence} |")
    if len(rows) > limit:
        out.append(f"| … | {len(rows) - limit} more in report.json | | |")
    return out


def item_value(record: dict, name: str) -> float | None:
    pair = record.get("scores", {}).get(name)
    if pair is None:
        return None
    value = ratio(pair[0], pair[1])
    return None if value is None else round(value, 4)


def load_report(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssistantError(
            f"no report at {path}", "run `python -m assistant eval` first"
        ) from None
    except ValueError as exc:
        raise AssistantError(f"{path}: not a report ({exc})") from None
