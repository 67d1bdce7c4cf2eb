"""Summary: a themed, cited brief of what the papers say about a topic."""

from __future__ import annotations

import re

import streamlit as st

from assistant.errors import AssistantError
from assistant.evidence import table_csv
from assistant.summarize import summarize
from ui import common

TABLE = re.compile(r"^## Evidence table\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)


def split_table(markdown: str) -> tuple[str, str, str]:
    """The brief before its evidence table, the table, and what follows it."""
    match = TABLE.search(markdown)
    if not match:
        return markdown, "", ""
    return markdown[: match.start()], match.group(0), markdown[match.end() :]


def shown_markdown(markdown: str) -> str:
    shown = re.sub(r"^(#{1,5}) ", r"#\1 ", markdown, flags=re.MULTILINE)
    return common.MODEL_MARKER.sub(common.styled_marker, shown.replace("$", "\\$"))


def table_rows(rows: list[dict]) -> list[dict[str, str]]:
    return [
        {
            "paper": f"[{r['marker']}] {r['name'] or r['title']}",
            "proposes": r["proposes"],
            "reports": r["reports"],
            "evaluated on": ", ".join(r["evaluated_on"]),
        }
        for r in rows
    ]


s = common.settings()
st.title("Topic brief")
st.caption(
    "Finds the papers on a topic, groups them into themes and writes a brief that cites "
    "every claim, then lists what it covered and what it left out."
)

state = st.session_state
with st.form("brief_form"):
    topic = st.text_input(
        "Topic", placeholder="e.g. KV cache compression for long-context inference", key="topic"
    )
    max_papers = st.slider("Papers at most", 5, 50, 25, key="max_papers")
    submitted = st.form_submit_button("Write the brief", type="primary")

if submitted:
    with st.status("Writing the brief…", expanded=True) as status:

        def progress(message: str) -> None:
            message = message[:1].upper() + message[1:]
            status.update(label=f"{message}…")
            status.write(common.escape_md(message))

        try:
            brief = summarize(
                s,
                topic,
                index=common.index(s),
                embedder=common.embedder(s),
                backend=common.backend(s),
                judge=common.judge(s),
                max_papers=max_papers,
                progress=progress,
            )
        except AssistantError as exc:
            status.update(label="No brief", state="error", expanded=False)
            state.pop("summary_brief", None)
            state.pop("summary_csv", None)
            common.show_error(exc)
        else:
            status.update(label="Brief written", state="complete", expanded=False)
            state.summary_brief = brief.to_json()
            state.summary_csv = table_csv(brief.table)

brief = state.get("summary_brief")
if brief:
    themes = brief.get("themes", [])
    citations = brief.get("citations", [])
    left, right, csv_column = st.columns([3, 1, 1], vertical_alignment="center")
    left.caption(
        f"{len(themes)} theme(s) · {len(citations)} paper(s) cited · "
        f"{len(brief.get('relevant_papers', []))} relevant · "
        f"{len(brief.get('left_out', []))} left out · "
        f"backend {common.escape_md(str(brief.get('backend', '')))}"
    )
    slug = re.sub(r"[^a-z0-9]+", "-", brief["topic"].lower()).strip("-")[:60] or "brief"
    right.download_button(
        "Download Markdown",
        brief["markdown"],
        file_name=f"brief-{slug}.md",
        mime="text/markdown",
        icon=":material/download:",
        width="stretch",
    )
    csv_column.download_button(
        "Download table (CSV)",
        state.get("summary_csv", ""),
        file_name=f"evidence-{slug}.csv",
        mime="text/csv",
        icon=":material/table:",
        width="stretch",
    )
    check = brief.get("citation_check", {})
    if check.get("uncited_sentences"):
        st.warning(
            f"{len(check['uncited_sentences'])} sentence(s) carry no citation: check them.",
            icon=":material/warning:",
        )
    left_out = brief.get("left_out", [])
    if left_out:
        with st.expander(f"Relevant papers left out of the brief ({len(left_out)})"):
            st.markdown(
                "\n".join(
                    f"- {common.escape_md(x.get('title', ''))}: "
                    f"_{common.escape_md(x.get('reason', ''))}_"
                    for x in left_out
                )
            )
    with st.container(border=True):
        # The brief is the backend's Markdown (headings, lists, the reference list), shown
        # with HTML disabled. `$` is escaped so Streamlit doesn't read it as LaTeX, and each
        # heading is one level smaller, to sit inside the page (the download keeps them).
        # Its evidence table is shown as a sortable st.dataframe instead, whose cells are
        # plain text, so corpus text in it is never read as Markdown or HTML.
        before, table, after = split_table(brief["markdown"])
        st.markdown(shown_markdown(before))
        rows = brief.get("evidence_table", [])
        if table and rows:
            st.markdown("### Evidence table")
            st.dataframe(table_rows(rows), hide_index=True, width="stretch")
        st.markdown(shown_markdown(after))
