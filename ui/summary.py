"""Summary: a themed, cited brief of what the papers say about a topic."""

from __future__ import annotations

import re

import streamlit as st

from assistant.errors import AssistantError
from assistant.summarize import summarize
from ui import common

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
                max_papers=max_papers,
                progress=progress,
            )
        except AssistantError as exc:
            status.update(label="No brief", state="error", expanded=False)
            state.pop("summary_brief", None)
            common.show_error(exc)
        else:
            status.update(label="Brief written", state="complete", expanded=False)
            state.summary_brief = brief.to_json()

brief = state.get("summary_brief")
if brief:
    themes = brief.get("themes", [])
    citations = brief.get("citations", [])
    left, right = st.columns([3, 1], vertical_alignment="center")
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
        shown = re.sub(r"^(#{1,5}) ", r"#\1 ", brief["markdown"], flags=re.MULTILINE)
        shown = common.MODEL_MARKER.sub(common.styled_marker, shown.replace("$", "\\$"))
        st.markdown(shown)
