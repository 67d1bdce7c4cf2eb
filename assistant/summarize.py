"""Topic -> a themed literature brief, every claim cited, its coverage stated.

The steps, in order: retrieve broadly for the topic; keep the papers the topic model
(relevance.py) finds about it, most probable first; cluster them into themes named by
their distinctive terms; write. An LLM writes by map (notes per abstract) then reduce
(the brief); offline, the brief is built from the abstracts' own sentences. Either
way the text goes through the same citation check as chat answers, and the
reference list and coverage line are added afterwards from what was cited.

This module runs those steps and adds what comes after the check; the themes are in
themes.py, writing the brief in brief_writing.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .agreements import Relation
from .answer import relevance_of
from .brief_llm import write_with_llm
from .brief_sentences import normalized
from .brief_writing import (
    EXEMPT,
    TALLY,
    Progress,
    evidence_sections,
    left,
    read_papers,
    write_extractively,
)
from .citations import CitationCheck, check_citations
from .embeddings import Embedder
from .errors import TopicError
from .evidence import EvidenceRow, evidence_table, table_markdown
from .index import PaperIndex
from .llm import Backend
from .prompts import Prompt, load_prompt, prompt_versions
from .relevance import TopicModel, features, lacking_words
from .retrieval import retrieve
from .settings import Settings
from .text import literal, split_sentences
from .themes import Theme, theme_groups, theme_names
from .types import Hit, Source, Usage

if TYPE_CHECKING:
    from .grounding import Judge

MAX_TOPIC_CHARS = 300  # a topic is a phrase; a pasted page is something else


@dataclass
class Brief:
    topic: str
    markdown: str
    themes: list[Theme]
    citations: list[Source]  # the papers the brief cites, as numbered in it
    relevant: list[Source]  # every paper judged on the topic
    left_out: list[dict[str, str]]  # {"paper_id", "title", "reason"}
    check: CitationCheck
    backend: str
    model: str
    prompt_versions: dict[str, str]
    usage: Usage
    seconds: float
    table: list[EvidenceRow] = field(default_factory=list)  # one row per cited paper
    relations: list[Relation] = field(default_factory=list)  # what the judge confirmed
    table_seconds: float = 0.0

    def prose(self) -> str:
        """What the brief says the papers say, for the grounding check: its text before the
        table (the table's cells are fragments of the same sentences), less the offline
        overview's tally of papers per theme."""
        return "\n".join(line for line in self.check.text.splitlines() if not TALLY.match(line))

    def to_json(self) -> dict:
        return {
            "topic": self.topic,
            "markdown": self.markdown,
            "themes": [{"name": t.name, "paper_ids": t.paper_ids} for t in self.themes],
            "citations": [
                {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
                for s in self.citations
            ],
            "relevant_papers": [s.to_json() for s in self.relevant],
            "left_out": self.left_out,
            "citation_check": self.check.to_json(),
            "backend": self.backend,
            "model": self.model,
            "prompt_versions": self.prompt_versions,
            "usage": self.usage.to_json(),
            "seconds": round(self.seconds, 3),
            "evidence_table": [row.to_json() for row in self.table],
            "relations": [r.to_json() for r in self.relations],
            "table_seconds": round(self.table_seconds, 4),
        }


def summarize(
    settings: Settings,
    topic: str,
    *,
    index: PaperIndex,
    embedder: Embedder,
    backend: Backend,
    judge: Judge | None = None,
    max_papers: int = 25,
    progress: Progress | None = None,
) -> Brief:
    """The brief on `topic`. `judge` (the Components' `make_judge("local")`, or any Judge)
    decides which papers agree or disagree; without one the brief says it didn't check."""
    started = time.perf_counter()
    say = progress or (lambda message: None)
    topic = clean_topic(topic)

    say("retrieving papers")
    model = TopicModel.load()
    hits = retrieve_on_topic(settings, topic, index, embedder, max(max_papers, model.pool))
    hits = hits[: model.pool]
    vectors = index.vectors([h.chunk_id for h in hits])
    say(f"reading the top {len(hits)} papers' sentences against the topic")
    x = features(topic, hits, embedder, vectors)
    on_topic, relevant, left_out = papers_on_topic(settings, model, topic, hits, x, max_papers)
    say(f"{len(relevant)} relevant papers of {len(hits)} retrieved")

    themes = group(relevant, vectors, on_topic, topic, embedder, corpus_texts(index))
    say(f"{len(themes)} themes: {'; '.join(t.name for t in themes)}")

    usage = Usage()
    text, dropped, prompts, relations = write(
        settings, backend, embedder, judge, topic, relevant, themes, usage, say
    )
    left_out += dropped

    check = check_citations(text, {s.marker for s in relevant}, exempt=EXEMPT)
    cited = [s for s in relevant if s.marker in check.cited]
    accounted = {x["paper_id"] for x in left_out}
    left_out += [
        left(s, "not cited in the brief")
        for s in relevant
        if s.marker not in check.cited and s.paper.paper_id not in accounted
    ]
    table_started = time.perf_counter()
    table = evidence_table(cited)
    shown_table = table_markdown(table)
    table_seconds = time.perf_counter() - table_started
    parts = [check.text.rstrip(), shown_table, references(cited)]
    markdown = "\n\n".join(p for p in parts if p) + "\n\n" + coverage(relevant, cited, left_out)
    return Brief(
        topic=topic,
        markdown=markdown,
        themes=themes,
        citations=cited,
        relevant=relevant,
        left_out=left_out,
        check=check,
        backend=backend.name,
        model=backend.model,
        prompt_versions=prompt_versions(prompts),
        usage=usage,
        seconds=time.perf_counter() - started,
        table=table,
        relations=[
            r
            for r in relations
            if {r.first.source.marker, r.second.source.marker} <= set(check.cited)
        ],
        table_seconds=table_seconds,
    )


def clean_topic(topic: str) -> str:
    topic = " ".join(topic.split())
    if not topic:
        raise TopicError("the topic is empty", 'name a subject, e.g. "KV-cache compression"')
    if len(topic) > MAX_TOPIC_CHARS:
        raise TopicError(
            f"the topic is {len(topic):,} characters long; a topic is a phrase of at most "
            f"{MAX_TOPIC_CHARS}",
            "name the subject in a few words; to ask about a passage, use `ask` with a question",
        )
    return topic


def retrieve_on_topic(
    settings: Settings, topic: str, index: PaperIndex, embedder: Embedder, max_papers: int
) -> list[Hit]:
    """Retrieve broadly for the topic; a topic whose words the corpus lacks is a TopicError.

    Unlike a question's, a topic's closest chunk may be far from it: a topic is a few
    words, and MiniLM places "early exit and dynamic layer skipping" at 0.295 from the
    papers on it, under the question's 0.30. Whether a paper is about the topic is the
    topic model's call, paper by paper; `summarize` refuses when it finds none."""
    # Equal weights for a short topic too: the topic model was fitted on them.
    retrieval = retrieve(index, embedder, topic, k=max(3 * max_papers, 30), short_boost=False)
    hits = retrieval.hits
    relevance = relevance_of(index, retrieval)
    if not hits or relevance.lacks_terms(settings):
        nearest = "; ".join(h.paper.title for h in hits[:3]) or "none"
        missing = f" (none mentions {', '.join(relevance.unknown_names)})"
        raise TopicError(
            f"the indexed papers don't cover {topic!r}"
            + (missing if relevance.unknown_names else ""),
            f"the nearest papers are: {nearest}",
        )
    return hits


def papers_on_topic(
    settings: Settings,
    model: TopicModel,
    topic: str,
    hits: list[Hit],
    x: np.ndarray,
    max_papers: int,
) -> tuple[list[int], list[Source], list[dict[str, str]]]:
    """`select_by_relevance` by the topic model over the features `x`; a TopicError when no
    paper uses most of the topic's words, or none reaches the model's threshold."""
    lacking = lacking_words(topic, hits, x)
    if lacking:
        closest, words = lacking
        raise TopicError(
            f"none of the {len(hits)} nearest papers is about {topic!r}: none uses most of "
            "its words",
            f"the closest, {closest.paper.title!r}, never mentions {', '.join(words)}",
        )
    relevance = model.probabilities(x)
    threshold = settings.summary_min_relevance
    threshold = model.threshold if threshold is None else threshold
    chosen = select_by_relevance(hits, relevance, threshold, max_papers)
    if not chosen[1]:
        best = int(np.argmax(relevance))
        raise TopicError(
            f"none of the {len(hits)} nearest papers is about {topic!r}",
            f"the likeliest is {hits[best].paper.title!r} (probability {relevance[best]:.2f}, "
            f"{threshold:.2f} needed)",
        )
    return chosen


def select_by_relevance(
    hits: list[Hit], relevance: np.ndarray, threshold: float, max_papers: int
) -> tuple[list[int], list[Source], list[dict[str, str]]]:
    """The papers the topic model (`relevance.py`) finds about the topic, probability at
    least `threshold`, most probable first, at most `max_papers`. Returns their positions
    in `hits`, them as numbered sources, and the near misses as left out (far below the
    threshold is off the topic: not worth a line of the brief's coverage note)."""
    order = sorted(range(len(hits)), key=lambda i: (-relevance[i], i))
    kept = [i for i in order if relevance[i] >= threshold][:max_papers]
    left_out = [
        left(
            hits[i],
            (
                f"beyond the {max_papers} most relevant papers"
                if relevance[i] >= threshold
                else "less likely about the topic"
            )
            + f" (probability {relevance[i]:.2f})",
        )
        for i in order
        if i not in kept and relevance[i] >= threshold / 2
    ]
    relevant = [
        Source(n, hits[i].paper, float(relevance[i]), hits[i].snippet)
        for n, i in enumerate(kept, start=1)
    ]
    return kept, relevant, left_out


def group(
    relevant: list[Source],
    vectors: np.ndarray,
    on_topic: list[int],
    topic: str,
    embedder: Embedder,
    corpus: list[str],
) -> list[Theme]:
    """The relevant papers in themes of two to six, each named by its distinctive phrases."""
    groups = theme_groups(vectors[on_topic])
    names = theme_names(
        [[relevant[i] for i in group] for group in groups],
        [vectors[[on_topic[i] for i in group]] for group in groups],
        topic,
        embedder,
        corpus,
    )
    return [
        Theme(name, [relevant[i].paper.paper_id for i in group])
        for name, group in zip(names, groups, strict=True)
    ]


_CORPUS: dict[int, tuple[object, list[str]]] = {}


def corpus_texts(index: PaperIndex) -> list[str]:
    """Every paper's title and abstract, lower-cased, for how rare a theme's phrase is.
    Kept per paper table (a re-ingest makes a new one), so a warm brief doesn't redo it."""
    papers = index.papers
    held = _CORPUS.get(id(papers))
    if held is None or held[0] is not papers:
        _CORPUS.clear()
        texts = [f"{p.title} {p.abstract}".lower() for p in papers.values()]
        held = _CORPUS[id(papers)] = (papers, texts)
    return held[1]


def write(
    settings: Settings,
    backend: Backend,
    embedder: Embedder,
    judge: Judge | None,
    topic: str,
    relevant: list[Source],
    themes: list[Theme],
    usage: Usage,
    say: Progress,
) -> tuple[str, list[dict[str, str]], dict[str, Prompt], list[Relation]]:
    """The brief's text before the check, the papers the writer dropped, its prompts and
    the agreements the judge confirmed."""
    dropped: list[dict[str, str]] = []
    prompts: dict[str, Prompt] = {}
    quoted = read_papers(topic, relevant)
    if backend.chat_model is not None:  # a model writes it: map, then reduce
        prompts = {
            name: load_prompt(name, settings.prompts_dir)
            for name in ("summarize_map", "summarize_reduce")
        }
        text, dropped = write_with_llm(
            settings, backend.chat_model, prompts, topic, relevant, themes, usage, say
        )
        gone = {x["paper_id"] for x in dropped}
        quoted = [q for q in quoted if q.source.paper.paper_id not in gone]
        seen = {normalized(s) for s in split_sentences(text)}
    else:
        say("writing")
        text, seen = write_extractively(topic, quoted, themes)
    say("comparing the papers' claims")
    sections, relations = evidence_sections(quoted, judge, seen)
    return text.rstrip() + "\n\n" + sections, dropped, prompts, relations


# --- the parts added after the check ------------------------------------------------------------


def references(cited: list[Source]) -> str:
    lines = ["## References", ""]
    lines += [
        f"[{s.marker}] {literal(s.paper.title)}  " for s in sorted(cited, key=lambda s: s.marker)
    ]
    return "\n".join(lines).rstrip()


def coverage(relevant: list[Source], cited: list[Source], left_out: list[dict[str, str]]) -> str:
    line = (
        f"**Coverage:** {len(relevant)} paper{'s' if len(relevant) != 1 else ''} found relevant, "
        f"{len(cited)} cited."
    )
    relevant_ids = {s.paper.paper_id for s in relevant}
    uncited = [x for x in left_out if x["paper_id"] in relevant_ids]
    if uncited:
        line += " Left out: " + "; ".join(f"{x['title']} ({x['reason']})" for x in uncited) + "."
    below = len(left_out) - len(uncited)
    if below:
        line += (
            f" {below} more retrieved paper{'s' if below != 1 else ''} fell below the "
            "relevance threshold."
        )
    return line
