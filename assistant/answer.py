"""Question (+ conversation) -> a checked, cited Answer.

The steps, in order: condense a follow-up into a standalone question; retrieve
papers; abstain (without calling any model) when nothing retrieved is close
enough; number the papers as sources and pack them under the token budget;
let the backend write, streaming; check every citation on the complete text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from .citations import CitationCheck, check_citations
from .embeddings import Embedder
from .index import PaperIndex
from .llm import EXTRACTIVE_HEADER, Backend, Generation, format_sources
from .prompts import prompt_versions
from .retrieval import search
from .settings import Settings
from .tokens import count_tokens
from .types import Conversation, Hit, Source, Turn, Usage

ABSTAIN_HEADER = "The indexed papers don't cover this question."


@dataclass
class Answer:
    question: str
    standalone_question: str
    text: str
    abstained: bool
    citations: list[Source]
    sources: list[Source]
    check: CitationCheck
    backend: str
    model: str
    prompt_versions: dict[str, str]
    usage: Usage
    latency_s: float
    relevance: float

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [
                {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
                for s in self.citations
            ],
            "sources": [s.to_json() for s in self.sources],
            "citation_check": self.check.to_json(),
            "backend": self.backend,
            "model": self.model,
            "prompt_versions": self.prompt_versions,
            "usage": self.usage.to_json(),
            "latency_s": round(self.latency_s, 3),
        }


class PendingAnswer:
    """Retrieval is done. Iterate `deltas()` to stream the text, then `finish()` to check it."""

    def __init__(
        self,
        question: str,
        standalone: str,
        sources: list[Source],
        generation: Generation,
        abstained: bool,
        relevance: float,
        backend: Backend,
        conversation: Conversation,
        usage: Usage,
        started: float,
    ) -> None:
        self.question = question
        self.standalone = standalone
        self.sources = sources
        self.generation = generation
        self.abstained = abstained
        self.relevance = relevance
        self.backend = backend
        self.conversation = conversation
        self.usage = usage
        self.started = started

    def deltas(self) -> Iterator[str]:
        yield from self.generation

    def finish(self) -> Answer:
        text = self.generation.finish()
        self.usage.add(self.generation.usage)
        valid = set() if self.abstained else {s.marker for s in self.sources}
        check = check_citations(text, valid, exempt=(EXTRACTIVE_HEADER, ABSTAIN_HEADER, "- "))
        if self.abstained:
            check.uncited_sentences = []  # an abstention claims nothing about the papers
        by_marker = {s.marker: s for s in self.sources}
        citations = [by_marker[n] for n in check.cited if n in by_marker]
        self.conversation.turns.append(
            Turn(self.question, self.standalone, check.text, self.sources, check.cited)
        )
        return Answer(
            question=self.question,
            standalone_question=self.standalone,
            text=check.text,
            abstained=self.abstained,
            citations=citations,
            sources=self.sources,
            check=check,
            backend=self.backend.name,
            model=self.backend.model,
            prompt_versions=prompt_versions(self.backend.prompts),
            usage=self.usage,
            latency_s=time.perf_counter() - self.started,
            relevance=self.relevance,
        )


def start_answer(
    question: str,
    conversation: Conversation,
    index: PaperIndex,
    embedder: Embedder,
    backend: Backend,
    settings: Settings,
    k: int | None = None,
) -> PendingAnswer:
    started = time.perf_counter()
    usage = Usage()
    question = " ".join(question.split())
    standalone = question
    if conversation.turns:
        standalone, condense_usage = backend.condense(conversation, question)
        usage.add(condense_usage)
    hits = search(index, embedder, standalone, k=k or settings.answer_k)
    similarity = best_similarity(index, embedder, standalone)
    coverage = term_coverage(index, standalone, [h.paper.paper_id for h in hits[:3]])
    relevance = min(similarity / settings.abstain_similarity, coverage / settings.abstain_coverage)

    if not hits or relevance < 1.0:
        nearest = [source_of(h, conversation) for h in hits[:3]]
        lines = [ABSTAIN_HEADER]
        if nearest:
            lines.append("The nearest papers in the index are:")
            lines += [f"- {s.paper.title}" for s in nearest]
        generation = Generation(iter(["\n".join(lines)]))
        return PendingAnswer(
            question,
            standalone,
            nearest,
            generation,
            True,
            relevance,
            backend,
            conversation,
            usage,
            started,
        )

    sources = pack_sources([source_of(h, conversation) for h in hits], settings)
    generation = backend.answer(standalone, sources)
    return PendingAnswer(
        question,
        standalone,
        sources,
        generation,
        False,
        relevance,
        backend,
        conversation,
        usage,
        started,
    )


def ask(
    question: str,
    conversation: Conversation,
    index: PaperIndex,
    embedder: Embedder,
    backend: Backend,
    settings: Settings,
    k: int | None = None,
) -> Answer:
    return start_answer(question, conversation, index, embedder, backend, settings, k).finish()


def source_of(hit: Hit, conversation: Conversation) -> Source:
    return Source(conversation.marker_for(hit.paper), hit.paper, hit.score, hit.snippet)


def best_similarity(index: PaperIndex, embedder: Embedder, question: str) -> float:
    """Cosine of the closest chunk: an absolute scale, unlike fused retrieval scores."""
    nearest = index.dense(embedder.embed_query(question), 1)
    return nearest[0][1] if nearest else 0.0


def term_coverage(index: PaperIndex, question: str, paper_ids: list[str]) -> float:
    """IDF-weighted share of the question's terms that the retrieved papers contain.

    A question about something the corpus never mentions (a benchmark, a method,
    a game) still finds papers that are close in meaning, so similarity alone
    can't tell it apart; but its rarest terms, which weigh most here, are
    missing from them. Terms the corpus has never seen weigh most of all.
    """
    import math

    from .index import bm25_tokenize

    snap = index.snapshot
    terms = set(bm25_tokenize([question])[0])
    if not terms:
        return 0.0
    n = len(snap.papers)
    idf = {t: math.log((n + 1) / (snap.document_frequency.get(t, 0) + 0.5)) for t in terms}
    found = frozenset().union(*(snap.paper_terms.get(p, frozenset()) for p in paper_ids))
    return sum(w for t, w in idf.items() if t in found) / sum(idf.values())


def pack_sources(sources: list[Source], settings: Settings) -> list[Source]:
    """Best sources first, until the prompt's source budget (in tiktoken tokens) is spent."""
    packed: list[Source] = []
    used = 0
    for source in sources:
        cost = count_tokens(format_sources([source]), settings.model)
        if packed and used + cost > settings.context_tokens:
            continue  # a shorter abstract further down may still fit
        packed.append(source)
        used += cost
    return packed
