"""Evals: run the harness, chart the latest report, compare two reports item by item."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from assistant import evals
from assistant.errors import AssistantError
from assistant.evals.report import fmt
from ui import common

s = common.settings()
st.title("Evals")

state = st.session_state
runs_root = common.eval_runs_dir(s)


def report_label(path: Path, report: dict) -> str:
    backend = report.get("backend", {})
    judge = report.get("judge", {}).get("judge", "?")
    items = report.get("dataset", {}).get("items", "?")
    created = str(report.get("created", "?")).replace("T", " ")[:16]
    model = backend.get("model", "?")
    return f"{created} · {model} · judge {judge} · {items} items · {path.parent.name}"


@st.cache_data(show_spinner=False, max_entries=64)
def load_report(path: str, mtime: float) -> dict:
    """Parsed once per file version: a full report is a megabyte of JSON."""
    return evals.load_report(Path(path))


def find_reports() -> list[tuple[Path, dict]]:
    """Every report.json the UI made or the CLI left under evals/, newest first."""
    found: dict[Path, dict] = {}
    for root in (runs_root, common.REPO / "evals"):
        if not root.is_dir():
            continue
        for path in root.rglob("report.json"):
            try:
                found[path.resolve()] = load_report(str(path.resolve()), path.stat().st_mtime)
            except (AssistantError, OSError):
                continue  # half-written, foreign or just removed: not offered
    return sorted(found.items(), key=lambda kv: str(kv[1].get("created", "")), reverse=True)


# Calm, distinct colours per kind of metric: red is kept for regressions.
GROUP_COLORS = {
    "retrieval": "#2f5fb3",
    "citations": "#6fa8dc",
    "answers": "#5b9a68",
    "summaries": "#c9a227",
    "other": "#999999",
}


def chart_label(name: str) -> str:
    metric = evals.METRICS.get(name)
    return f"{name} (lower is better)" if metric and not metric.higher_is_better else name


# --- run --------------------------------------------------------------------------------------

reports = find_reports()
with st.expander("Run the harness", expanded=not reports):
    datasets = sorted(evals.DATASETS_DIR.glob("*.jsonl"))
    choices: list[Path | None] = [None, *datasets]
    left, mid, right = st.columns([2, 1, 1])
    dataset = left.selectbox(
        "Dataset",
        choices,
        format_func=lambda p: "all hand-written sets" if p is None else p.name,
        key="eval_dataset",
    )
    judges = ["local", "llm"] if s.openai_api_key else ["local"]
    judge = mid.selectbox(
        "Judge",
        judges,
        key="eval_judge",
        help="local: the offline grounding judge; llm: the configured model (needs a key)",
    )
    subset = right.selectbox(
        "Items",
        ["gate", "all"],
        format_func=lambda x: "gate subset (fast)" if x == "gate" else "every item",
        key="eval_subset",
    )
    st.caption(
        f"Answers by the **{s.backend}** backend. Reports are written under "
        f"`{common.code_safe(str(runs_root))}`; model replies and judge verdicts are cached, "
        "so a re-run costs only what changed."
    )
    if st.button("Run eval", type="primary"):
        out_dir = runs_root / (
            datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            + f"-{dataset.stem if dataset else 'all'}-{judge}"
        )
        bar = st.progress(0.0, text="Starting…")

        def on_progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Evaluated {done} of {total} items")

        try:
            evals.run_eval(
                s,
                dataset=dataset,
                judge=judge,
                out_dir=out_dir,
                progress=on_progress,
                subset=None if subset == "all" else subset,
                components=common.components(s),
            )
        except AssistantError as exc:
            common.show_error(exc)
        except (OSError, ValueError) as exc:  # a judge model or cache that can't be read
            st.error(f"The run failed: {common.escape_md(f'{type(exc).__name__}: {exc}')}")
        else:
            state.eval_ran = str(out_dir)
            st.rerun()

if not reports:
    st.info("No reports yet: run the harness above (or `python -m assistant eval`).")
    st.stop()

# --- latest report ------------------------------------------------------------------------

latest_path, latest = reports[0]
st.subheader("Latest report")
st.caption(common.escape_md(report_label(latest_path, latest)))
metrics = {
    name: m["value"] for name, m in latest.get("metrics", {}).items() if m.get("value") is not None
}
groups: dict[str, list[str]] = {}
for name in metrics:
    group = evals.METRICS[name].group if name in evals.METRICS else "other"
    groups.setdefault(group, []).append(name)
if groups:
    # One chart, every metric on the same 0-1 scale, coloured by what it measures.
    frame = pd.DataFrame(
        [
            {"metric": chart_label(name), "value": metrics[name], "group": group}
            for group, names in groups.items()
            for name in names
        ]
    )
    order = list(frame["metric"])
    bars = alt.Chart(frame).encode(
        y=alt.Y("metric:N", sort=order, title=None, axis=alt.Axis(labelLimit=240)),
        x=alt.X(
            "value:Q",
            scale=alt.Scale(domain=[0, 1]),
            title=None,
            axis=alt.Axis(tickCount=5, format=".1f"),
        ),
    )
    palette = alt.Scale(domain=list(GROUP_COLORS), range=list(GROUP_COLORS.values()))
    chart = bars.mark_bar(cornerRadiusEnd=3).encode(
        color=alt.Color("group:N", title=None, scale=palette, legend=alt.Legend(orient="top"))
    ) + bars.mark_text(align="left", dx=4, fontSize=12).encode(
        text=alt.Text("value:Q", format=".3f")
    )
    st.altair_chart(chart.properties(height=26 * len(frame) + 20), width="stretch")
    with st.expander("All metrics, with what each one counts"):
        rows = [
            {
                "metric": name,
                "value": m.get("value"),
                "items": m.get("items"),
                "numerator / denominator": f"{m.get('numerator')} / {m.get('denominator')}",
                "meaning": evals.METRICS[name].description if name in evals.METRICS else "",
            }
            for name, m in latest.get("metrics", {}).items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.caption("This report has no scored metrics.")

# --- compare ----------------------------------------------------------------------------------

st.subheader("Compare two reports")
if len(reports) < 2:
    st.caption("Run the harness again (another dataset, judge or setting) to compare.")
    st.stop()
indices = list(range(len(reports)))
left, right = st.columns(2)
base_i = left.selectbox(
    "Baseline",
    indices,
    index=1,
    format_func=lambda i: report_label(*reports[i]),
    key="eval_baseline",
)
cand_i = right.selectbox(
    "Candidate",
    indices,
    index=0,
    format_func=lambda i: report_label(*reports[i]),
    key="eval_candidate",
)
baseline, candidate = reports[base_i][1], reports[cand_i][1]
try:
    tolerances = evals.load_tolerances()
except AssistantError:
    tolerances = {}  # no gate config: deltas only
comparison = evals.compare_reports(baseline, candidate, tolerances)

regressed = [r.metric for r in comparison.rows if r.regressed]
if regressed:
    st.error(
        f"**{len(regressed)} gated metric(s) regressed:** "
        + ", ".join(common.escape_md(m) for m in regressed),
        icon=":material/trending_down:",
    )
elif any(r.gated for r in comparison.rows):
    st.success("No gated metric regressed beyond its tolerance.", icon=":material/check_circle:")
for note in comparison.notes:
    st.caption("Note: " + common.escape_md(note))

table = pd.DataFrame(
    [
        {
            "metric": r.metric,
            "baseline": r.baseline,
            "candidate": r.candidate,
            "delta": r.delta,
            "gate": (("REGRESSED" if r.regressed else f"ok (±{r.tolerance:g})") if r.gated else ""),
            "items": r.items,
        }
        for r in comparison.rows
    ]
)


def highlight(row: pd.Series) -> list[str]:
    """Regressed rows red; any other drop amber; a rise green (by the metric's direction)."""
    metric = evals.METRICS.get(row["metric"])
    delta = row["delta"]
    if row["gate"] == "REGRESSED":
        return ["background-color: #fde2e1"] * len(row)
    if delta is None or pd.isna(delta) or abs(delta) < 1e-9:
        return [""] * len(row)
    better = (delta > 0) == (metric.higher_is_better if metric else True)
    return [f"background-color: {'#e3f4e6' if better else '#fff4d6'}"] * len(row)


st.dataframe(
    table.style.apply(highlight, axis=1).format(
        {"baseline": fmt, "candidate": fmt, "delta": lambda v: fmt(v, signed=True)}
    ),
    hide_index=True,
    width="stretch",
    height=35 * (len(table) + 1) + 3,  # every metric in view: no scrolling inside the table
)

# --- drill-down -------------------------------------------------------------------------------

st.markdown(f"##### Items that differ ({len(comparison.items)} of {comparison.common_items})")
if not comparison.items:
    st.caption("Every shared item scored the same and answered the same.")
    st.stop()


def item_summary(i: int) -> str:
    item = comparison.items[i]
    changes = ", ".join(
        f"{k} {fmt_change(v[0])}→{fmt_change(v[1])}" for k, v in item["changes"].items()
    )
    return f"{item['uid']}: {changes or 'answer text changed'}"


def fmt_change(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    return f"{value:.2f}"


picked = st.selectbox(
    "Item", range(len(comparison.items)), format_func=item_summary, key="eval_item"
)
uid = comparison.items[picked]["uid"]
st.markdown("**Question:** " + common.escape_md(comparison.items[picked]["question"] or ""))


def show_item(report: dict, title: str) -> None:
    record = next((r for r in report.get("items", []) if r.get("uid") == uid), None)
    st.markdown(f"**{title}**")
    if record is None:
        st.caption("Not in this report.")
        return
    backend = report.get("backend", {}).get("name", "")
    if record.get("abstained"):
        st.warning(f"Abstained ({common.escape_md(str(record.get('abstained_by')))}).")
    answer = common.answer_markdown(
        record.get("answer") or "", backend, bool(record.get("abstained")), {}
    )
    sentences = record.get("sentences", [])
    if sentences:
        with st.expander("The answer as written"):
            st.markdown(answer)
    else:
        with st.container(border=True):
            st.markdown(answer or "_(no answer)_")
    if sentences:
        st.markdown("**The judge's verdict, sentence by sentence:**")
        lines = []
        for x in sentences:
            score = x.get("score")
            score_text = "" if score is None else f" {score:.2f}"
            badge = (
                f":green-badge[supported{score_text}]"
                if x.get("supported")
                else f":red-badge[not supported{score_text}]"
            )
            text = common.escape_md(re.sub(r"^\s*[-*•]\s+", "", x.get("text", "")))
            lines.append(f"- {badge} {common.ESCAPED_MARKER.sub(common.styled_marker, text)}")
        st.markdown("\n".join(lines))
    elif record.get("not_scored"):
        st.caption(common.escape_md(record["not_scored"]))
    citations = record.get("citations", [])
    if citations:
        st.markdown(
            "**Citations:**\n\n"
            + "\n".join(
                f"- \\[{c.get('marker')}\\] {common.escape_md(c.get('title', ''))}"
                for c in citations
            )
        )
    scores = {k: evals.item_value(record, k) for k in record.get("scores", {})}
    st.caption(" · ".join(f"{common.escape_md(k)} {fmt(v)}" for k, v in scores.items()))


left, right = st.columns(2)
with left:
    show_item(baseline, "Baseline")
with right:
    show_item(candidate, "Candidate")
