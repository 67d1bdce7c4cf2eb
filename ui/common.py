"""What every page shares: settings, the heavy objects (loaded once), the sidebar, safe rendering.

Safety rule for the whole app: text from the corpus (titles, abstracts, file
names) and from the model is never rendered as HTML. Corpus text goes through
`escape_md`, so it shows literally; model text is rendered as Markdown with
Streamlit's default (HTML escaped). Highlights and flags are Streamlit's own
Markdown directives (`:blue-background[...]`, `:orange-badge[...]`), never HTML.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.errors import AssistantError, IndexMissingError
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.answer import Answer
    from assistant.components import Components
    from assistant.corpus import CorpusRead
    from assistant.embeddings import Embedder
    from assistant.grounding import Judge
    from assistant.index import PaperIndex
    from assistant.ingest import IngestReport
    from assistant.llm import Backend
    from assistant.types import Source

UI_DIR = Path(__file__).resolve().parent
REPO = UI_DIR.parent
CORPUS_SUFFIXES = ["txt", "jsonl", "ndjson", "json", "csv"]

# --- settings and cached resources ----------------------------------------------------------


def settings() -> Settings:
    """The app's Settings, read from the environment and .env on every run (it is cheap).

    A bad value stops the page with the same one-line message the CLI prints.
    """
    from assistant.settings import load_settings

    try:
        return load_settings()
    except AssistantError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises; keeps type checkers honest


def key_hash(s: Settings) -> str:
    """The API key as cache keys see it: a hash, so the key itself is never kept or shown."""
    key = s.openai_api_key.get_secret_value() if s.openai_api_key else ""
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else "none"


def fingerprint(s: Settings) -> str:
    """Cache key for objects built from settings (the dump masks the key; its hash is added)."""
    return f"{s.model_dump_json()}|key={key_hash(s)}"


@st.cache_resource(show_spinner="Loading the embedding model…")
def _embedder(_s: Settings, embedding_model: str) -> Embedder:
    from assistant.embeddings import make_embedder

    return make_embedder(_s)


def embedder(s: Settings) -> Embedder:
    # Keyed by what the embedder reads, not every setting: a change of top-k or model
    # keeps the loaded weights.
    return _embedder(
        s, f"{s.embedding_model}|{s.embed_precision}|{s.openai_base_url}|{key_hash(s)}"
    )


@st.cache_resource(show_spinner=False)
def _components(_s: Settings, key: str) -> Components:
    from assistant.components import Components

    return Components(_s, embedder=embedder(_s))


def components(s: Settings) -> Components:
    """The index, backend and judge for these settings, each opened on first use."""
    return _components(s, fingerprint(s))


def index(s: Settings) -> PaperIndex:
    """The opened index; raises IndexMissingError when there is none yet."""
    built = components(s)
    if "index" not in built.__dict__:
        with st.spinner("Opening the index…"):
            built.index  # noqa: B018 - opened here, under a spinner
    opened = built.index
    opened.ensure_fresh()  # another process (the CLI) may have ingested since
    return opened


def backend(s: Settings) -> Backend:
    return components(s).backend


def judge(s: Settings) -> Judge | None:
    """The local grounding judge, or None if it cannot be loaded (flags then come from the
    citation check alone)."""
    try:
        return components(s).judge
    except (ImportError, OSError, ValueError, AttributeError):
        return None


def eval_runs_dir(s: Settings) -> Path:
    """Where the Evals page writes its runs: beside the index (and its eval cache)."""
    return s.index_dir.parent / "eval-runs"


def forget_index() -> None:
    """After an ingest: the next `index()` reopens, so every page sees the new papers at once."""
    _components.clear()


# --- ingest with a progress bar -----------------------------------------------------------

# One ingest at a time per server: two sessions writing the same collection would each
# re-embed what the other is adding.
INGEST_LOCK = threading.Lock()


def run_ingest(
    s: Settings, paths: list[Path], on_progress: Callable[[int, int], None]
) -> tuple[CorpusRead, IngestReport]:
    """Read and ingest `paths` (incremental, problems skipped and returned, as the CLI does)."""
    from assistant.corpus import read_corpus
    from assistant.ingest import ingest

    with INGEST_LOCK:
        read = read_corpus(paths)
        report = ingest(s, read, paths, embedder(s), progress=False, on_progress=on_progress)
        forget_index()
    return read, report


def show_problems(problems: list[Any], limit: int = 50) -> None:
    """Bad input, one line per problem: `file:line: field: what is wrong`, like the CLI."""
    from assistant.corpus import display_path

    if not problems:
        return
    lines = []
    for p in problems[:limit]:
        where = display_path(p.file) + (f":{p.line}" if p.line else "")
        lines.append(f"- `{code_safe(where)}`: {escape_md(p.field)}: {escape_md(p.message)}")
    more = f"\n\n… and {len(problems) - limit} more" if len(problems) > limit else ""
    kept = sum(p.kept for p in problems)
    counts = [f"{len(problems) - kept} problem(s) skipped"] if len(problems) > kept else []
    counts += [f"{kept} record(s) truncated and kept"] if kept else []
    st.warning(
        f"**{', '.join(counts)}** (the rest was ingested):\n\n" + "\n".join(lines) + more,
        icon=":material/warning:",
    )


def build_index_if_missing(s: Settings) -> None:
    """First run on a fresh machine: build the index of the data folder, with a progress bar."""
    try:
        index(s)
        return
    except IndexMissingError:
        pass
    except AssistantError as exc:  # built with another embedding model, server unreachable…
        st.title("Paper Assistant")
        show_error(exc)
        st.stop()
    data_dir = s.data_dir
    st.title("Paper Assistant")
    if not data_dir.exists():
        st.error(
            f"There is no index yet, and no corpus at `{code_safe(str(data_dir))}` to build it "
            "from. Set ASSISTANT_DATA_DIR to a folder of paper files (.txt listings, .jsonl, "
            ".csv), or build an index with `python -m assistant ingest PATH`."
        )
        st.stop()
    st.info(
        f"First run: building the search index of `{code_safe(str(data_dir))}`. "
        "This happens once (about half a minute for the seed corpus); later starts are instant."
    )
    bar = st.progress(0.0, text="Reading the corpus…")

    def on_progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Embedding papers: {done} of {total}")

    try:
        read, report = run_ingest(s, [data_dir], on_progress)
    except AssistantError as exc:
        show_error(exc)
        st.stop()
    bar.progress(1.0, text="Index built.")
    st.session_state["index_problems"] = read.problems  # shown by the page after the rerun
    st.session_state["index_built"] = (
        f"{report.papers:,} papers, {report.chunks_embedded:,} chunks embedded "
        f"in {report.seconds:.0f} s"
    )
    st.rerun()


# --- sidebar ----------------------------------------------------------------------------------


def sidebar(s: Settings) -> None:
    """Which backend answers, whether a key is set (never the key), top-k and index statistics."""
    with st.sidebar:
        st.markdown("#### Answers")
        if s.backend == "openai":
            st.markdown(f"**Model:** `{code_safe(s.model)}`")
            st.caption(
                "OpenAI-compatible endpoint"
                + (" (custom base URL)" if s.openai_base_url else "")
                + " · API key: "
                + ("set" if s.openai_api_key else "**not set**")
            )
        else:
            st.markdown("**Backend:** extractive (offline)")
            st.caption(
                "API key: "
                + ("set, but ASSISTANT_LLM=extractive" if s.openai_api_key else "not set")
            )
            if s.openai_api_key is None:
                st.info(
                    "Answers are **extractive**: quoted, cited sentences from the abstracts, "
                    "until a key is configured (`OPENAI_API_KEY` in the environment or `.env`).",
                )
        st.slider(
            "Top-k: papers retrieved per answer",
            min_value=1,
            max_value=max(20, s.answer_k),
            value=s.answer_k,
            key="top_k",
        )
        st.markdown("#### Index")
        try:
            opened = index(s)
        except AssistantError:
            st.caption("No index yet.")
            return
        left, right = st.columns(2)
        left.metric("Papers", f"{len(opened.papers):,}")
        right.metric("Chunks", f"{len(opened.snapshot.chunk_ids):,}")
        model = (opened.collection.metadata or {}).get("embedding_model", "?")
        st.caption(f"Embedding model: {escape_md(str(model))}")
        if not opened.complete:
            st.warning(
                "The last ingest was cut short; some papers may be missing. Ingest again "
                "(Papers page) to finish it."
            )


def top_k(s: Settings) -> int:
    return int(st.session_state.get("top_k", s.answer_k))


def show_error(exc: AssistantError) -> None:
    st.error(escape_md(exc.message), icon=":material/error:")
    if exc.hint:
        st.caption("Hint: " + escape_md(exc.hint))


# --- Markdown safety ------------------------------------------------------------------------

# Everything Markdown (and Streamlit's extensions: `:directives[]`, `:emoji:`, `$math$`) could
# read as syntax. CommonMark lets any ASCII punctuation be backslash-escaped, so escaping
# more than needed is harmless.
MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>:$~^=&])")


def escape_md(text: str) -> str:
    """Corpus text as literal Markdown: every special character escaped, lines joined."""
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code_safe(text: str) -> str:
    """For inside `inline code`: a backtick would end it early."""
    return str(text).replace("`", "'")


# --- answers: highlights, flags, rendering ----------------------------------------------------


def answer_markdown(text: str, backend_name: str, abstained: bool, flags: dict[str, str]) -> str:
    """The answer as safe Markdown, with a badge after each flagged sentence.

    Extractive and abstaining answers are corpus text, so they are escaped
    (keeping only the list bullets the backend writes). A model's answer keeps
    its Markdown, except `$`, which Streamlit would read as LaTeX.
    """
    from assistant.extractive import EXTRACTIVE_HEADER

    badges: dict[str, str] = {}
    for i, (sentence, reason) in enumerate(flags.items()):
        token = f"\x00{i}\x00"
        if sentence in text:
            text = text.replace(sentence, sentence + token, 1)
            badges[token] = f" :orange-badge[:material/warning: {escape_md(reason)}]"
    if backend_name == "extractive" or abstained:
        lines = []
        for line in text.splitlines():
            if line.strip() == EXTRACTIVE_HEADER:
                continue  # shown as the message's caption instead
            bullet = re.match(r"^\s*[-*]\s+(.*)$", line)
            lines.append("- " + escape_md(bullet.group(1)) if bullet else escape_md(line))
        markdown = ESCAPED_MARKER.sub(styled_marker, "\n".join(lines))
    else:
        markdown = MODEL_MARKER.sub(styled_marker, text.replace("$", "\\$"))
    for token, badge in badges.items():
        markdown = markdown.replace(token, badge)
    return markdown


# Citation markers as the answer shows them, a run like [1][2] taken as one: escaped in
# corpus text, plain in a model's Markdown (where "[1](url)" is a link, so left alone).
ESCAPED_MARKER = re.compile(r"(?:\\\[(?:\d|,|\s|\\-|–|—)+\\\])+")
MODEL_MARKER = re.compile(r"(?:\[\s*\d+(?:\s*(?:,|-|–|—)\s*\d+)*\s*\](?!\())+")


def styled_marker(match: re.Match[str]) -> str:
    """Markers in bold blue, so citations stand out from the prose they close."""
    raw = match.group(0).replace("\\[", "[").replace("\\]", "]").replace("\\-", "-")
    escaped = raw.replace("[", "\\[").replace("]", "\\]").replace("-", "\\-")
    return f":blue[**{escaped}**]"


def footer(answer: Answer) -> str:
    """Backend, model, tokens, cost and latency, in one line under each answer."""
    model, tokens, cost = answer.cost_parts()
    parts = (answer.backend, model, tokens, cost, f"{answer.latency_s:.2f} s")
    return " · ".join(escape_md(part) for part in parts)


def abstract_markdown(abstract: str, highlighted: set[int]) -> str:
    """The abstract, escaped, with the supporting sentences on a blue background."""
    parts = []
    from assistant.text import abstract_sentences

    for i, sentence in enumerate(abstract_sentences(abstract)):
        safe = escape_md(sentence)
        parts.append(f":blue-background[{safe}]" if i in highlighted else safe)
    return " ".join(parts)


def source_card(source: Source, highlighted: set[int], note: str = "") -> None:
    """One paper as evidence: its number, title, score, and abstract with highlights."""
    paper = source.paper
    with st.container(border=True):
        st.markdown(f":blue[**\\[{source.marker}\\]**] **{escape_md(paper.title)}**")
        meta = [f"score {source.score:.3f}"]
        if paper.date:
            meta.append(escape_md(paper.date))
        meta.append(f"`{code_safe(paper.paper_id)}`")
        if note:
            meta.append(note)
        st.caption(" · ".join(meta))
        st.markdown(abstract_markdown(paper.abstract, highlighted))
