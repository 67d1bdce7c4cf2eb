"""Papers: search and browse the corpus, see where each paper came from, ingest new files."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from assistant.corpus import display_path
from assistant.errors import AssistantError
from assistant.retrieval import search
from assistant.types import Paper
from ui import common

PAGE_SIZE = 25

s = common.settings()
idx = common.index(s)
st.title("Papers")

state = st.session_state
if "ingested" in state:
    report, problems = state.pop("ingested")
    st.success(common.escape_md(report), icon=":material/check_circle:")
    common.show_problems(problems)


def paper_detail(paper: Paper, score: float | None = None) -> None:
    """One paper in full: metadata, abstract, and the files it was read from."""
    label = common.escape_md(paper.title)
    if score is not None:
        label = f"{label}  ·  score {score:.3f}"
    with st.expander(label):
        meta = [f"`{common.code_safe(paper.paper_id)}`"]
        if paper.date:
            meta.append(common.escape_md(paper.date))
        if paper.categories:
            meta.append(common.escape_md(", ".join(paper.categories)))
        st.caption(" · ".join(meta))
        if paper.aliases:
            st.markdown("**Also listed as:** " + "; ".join(map(common.escape_md, paper.aliases)))
        if paper.authors:
            st.markdown("**Authors:** " + common.escape_md(", ".join(paper.authors)))
        st.markdown(common.escape_md(paper.abstract))
        if paper.url:
            st.caption("URL: " + common.escape_md(paper.url))  # as text: a link could be anything
        files = "\n".join(f"- `{common.code_safe(display_path(f))}`" for f in paper.sources)
        st.markdown(f"**Read from {len(paper.sources)} file(s):**\n\n{files}")


browse, add = st.tabs(["Search and browse", "Add papers"])

with browse:
    query = st.text_input(
        "Search",
        placeholder="Hybrid search over titles and abstracts, e.g. speculative decoding",
        key="paper_query",
    )
    if query.strip():
        hits = search(idx, common.embedder(s), query, k=20)
        st.caption(f"{len(hits)} best matches (hybrid: dense + BM25).")
        for hit in hits:
            paper_detail(hit.paper, hit.score)
        if not hits:
            st.info("No paper matches.")
    else:
        papers = sorted(idx.papers.values(), key=lambda p: p.title.casefold())
        needle = st.text_input("Filter titles", key="paper_filter").casefold().strip()
        if needle:
            papers = [p for p in papers if needle in " ".join([p.title, *p.aliases]).casefold()]
        pages = max(1, -(-len(papers) // PAGE_SIZE))
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        left.caption(f"{len(papers):,} paper(s), alphabetical.")
        page = right.number_input("Page", 1, pages, 1, key="paper_page") if pages > 1 else 1
        for paper in papers[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            paper_detail(paper)


def ingest_with_progress(paths: list[Path]) -> None:
    bar = st.progress(0.0, text="Reading the files…")

    def on_progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Embedding papers: {done} of {total}")

    try:
        read, report = common.run_ingest(s, paths, on_progress)
    except AssistantError as exc:
        common.show_error(exc)
        return
    bar.progress(1.0, text="Done.")
    state.ingested = (report.summary(), read.problems)
    st.rerun()  # every page, and the sidebar's counts, now see the new papers


def safe_name(name: str) -> str:
    """An uploaded file's name as a plain file name: no folders, nothing hidden."""
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).name).lstrip(".")
    return stem or "upload"


with add:
    uploads_dir = s.data_dir / "uploads"
    st.markdown(
        "Add **.txt** daily-papers listings, **JSON Lines** (`.jsonl`, `.ndjson`, `.json`: "
        "`id`, `title`, `abstract`, optional `authors`, `date`, `url`, `categories`) or "
        "**CSV** with the same columns. Files are saved under "
        f"`{common.code_safe(str(uploads_dir))}` and ingested incrementally: only new or "
        "changed papers are embedded. Bad lines are reported and skipped."
    )
    files = st.file_uploader(
        "Corpus files", type=common.CORPUS_SUFFIXES, accept_multiple_files=True, key="uploads"
    )
    if st.button("Ingest uploaded files", type="primary", disabled=not files):
        uploads_dir.mkdir(parents=True, exist_ok=True)
        saved = []
        for upload in files or []:
            path = uploads_dir / safe_name(upload.name)
            path.write_bytes(upload.getvalue())
            saved.append(path)
        ingest_with_progress(saved)
    st.divider()
    st.markdown(
        f"Or ingest everything under the data folder `{common.code_safe(str(s.data_dir))}` "
        "(picks up files added or changed there; papers of removed files are dropped)."
    )
    if st.button("Ingest the data folder"):
        if s.data_dir.exists():
            ingest_with_progress([s.data_dir])
        else:
            st.error(f"`{common.code_safe(str(s.data_dir))}` does not exist.")
