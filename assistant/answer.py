"""Question (+ conversation) -> a checked, cited Answer.

The steps, in order: condense a follow-up into a standalone question; retrieve
papers; abstain (without calling any model) when nothing retrieved is close
enough; number the papers as sources and pack them under the token budget;
let the backend write, streaming; check every citation on the complete text.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .citations import CitationCheck, check_citations, filter_stream
from .embeddings import Embedder
from .errors import QuestionError
from .extractive import EXTRACTIVE_HEADER
from .index import PaperIndex
from .llm import Backend
from .prompts import format_sources, prompt_versions
from .retrieval import Retrieval, retrieve
from .settings import Settings
from .text import bm25_tokenize
from .tokens import count_tokens
from .types import Conversation, Generation, Hit, Source, Turn, Usage

ABSTAIN_HEADER = "The indexed papers don't cover this question."


@dataclass(frozen=True)
class Relevance:
    """How well the retrieved papers match the question, on two absolute scales."""

    similarity: float  # cosine of the closest chunk
    coverage: float  # IDF-weighted share of the question's terms in the top three papers
    unknown_names: tuple[str, ...] = ()  # names in the question the corpus never mentions

    def too_low(self, settings: Settings, phrase: bool = False) -> bool:
        """A phrase ("MoE routing collapse") is a search in the reader's own words, and
        paraphrase is what sinks term coverage and what names the abstracts only imply
        (A2A, USMLE) look like: on the short-query set's tune half the strict rule abstained
        on half of the answerable phrases, so a phrase only needs a close chunk. A question
        asks the papers for something, and must find its terms in them."""
        if phrase:
            return self.similarity < settings.abstain_similarity
        return self.similarity < settings.abstain_similarity or self.lacks_terms(settings)

    def lacks_terms(self, settings: Settings) -> bool:
        """Names the corpus never mentions, or too few of the query's terms in the top
        papers: the half of the rule that a summary topic is held to as well."""
        return bool(self.unknown_names) or self.coverage < settings.abstain_coverage


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
    relevance: Relevance
    reasoning: str = ""  # a reasoning model's thoughts before the answer: never checked or cited
    truncated: bool = False  # the model's output limit cut the answer off

    def cost_parts(self) -> tuple[str, str, str]:
        """(model, tokens, cost) as the CLI and the app print them under an answer."""
        usage = self.usage
        if self.backend == "extractive":
            model, cost = "no model", "$0"
        else:
            model = self.model
            cost = "cost unknown" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
        tokens = f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens"
        if usage.estimated:  # the server sent no counts; tiktoken's are close, not exact
            tokens, cost = f"~{tokens} (estimated)", f"~{cost}" if cost.startswith("$") else cost
        return model, tokens, cost

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
            "truncated": self.truncated,
        }


@dataclass
class PendingAnswer:
    """Retrieval is done. Iterate `deltas()` to stream the text, then `finish()` to check it."""

    question: str
    standalone: str
    sources: list[Source]
    generation: Generation
    abstained: bool
    relevance: Relevance
    backend: Backend
    conversation: Conversation
    usage: Usage
    started: float

    def deltas(self) -> Iterator[str]:
        """The text as it arrives, already without markers that point to no source."""
        yield from filter_stream(self.generation, self.valid_markers)

    @property
    def valid_markers(self) -> set[int]:
        return set() if self.abstained else {s.marker for s in self.sources}

    def finish(self) -> Answer:
        text = self.generation.finish()
        self.usage.add(self.generation.usage)
        check = check_citations(
            text, self.valid_markers, exempt=(EXTRACTIVE_HEADER, ABSTAIN_HEADER)
        )
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
            reasoning=self.generation.reasoning,
            truncated=self.generation.finish_reason == "length",
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
    check_length(question, settings)
    standalone = question
    if conversation.turns:
        standalone, condense_usage = backend.condense(conversation, question)
        usage.add(condense_usage)
    retrieval = retrieve(index, embedder, standalone, k=k or settings.answer_k)
    hits = retrieval.hits
    relevance = relevance_of(index, retrieval)

    abstain = not hits or relevance.too_low(settings, phrase=not is_question(standalone))
    if abstain:
        sources = [source_of(h, conversation) for h in hits[:3]]  # the nearest papers
        generation = Generation(iter([abstention_text(relevance, sources)]))
    else:
        sources = [source_of(h, conversation) for h in hits]
        if backend.packs_context:
            sources = pack_sources(sources, settings)
        generation = backend.answer(standalone, sources)
    return PendingAnswer(
        question,
        standalone,
        sources,
        generation,
        abstain,
        relevance,
        backend,
        conversation,
        usage,
        started,
    )


QUESTION = re.compile(
    r"^(?:(?:in|on|for|at|by|with|from|to)\s+(?:what|which|whom)|according\s+to|what|which|"
    r"who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|should|would|"
    r"will|has|have)\b",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    """Asked as a question: it ends with "?" or opens like one ("how do…", "in which…")."""
    return text.rstrip().endswith("?") or bool(QUESTION.match(text.lstrip()))


def check_length(question: str, settings: Settings) -> None:
    """Only the sources have a token budget; a question pasted from a whole paper would
    otherwise go into the prompt whole."""
    tokens = count_tokens(question, settings.model)
    if tokens > settings.max_question_tokens:
        raise QuestionError(
            f"the question is {tokens:,} tokens long; the limit is "
            f"{settings.max_question_tokens:,} (ASSISTANT_MAX_QUESTION_TOKENS)",
            "ask it in a sentence or two; `summarize TOPIC` gives a brief on a subject",
        )


def abstention_text(relevance: Relevance, nearest: list[Source]) -> str:
    """Said without calling any model: why, and the nearest papers there are."""
    lines = [ABSTAIN_HEADER]
    if relevance.unknown_names:
        lines[0] += f" None of them mentions {', '.join(relevance.unknown_names)}."
    if nearest:
        lines.append("The nearest papers in the index are:")
        lines += [f"- {s.paper.title}" for s in nearest]
    return "\n".join(lines)


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


def relevance_of(index: PaperIndex, retrieval: Retrieval) -> Relevance:
    """How well the best hits cover the query; a question or a summary topic alike."""
    top = [h.paper.paper_id for h in retrieval.hits[:3]]
    coverage = term_coverage(index, retrieval.terms, top)
    return Relevance(retrieval.nearest_similarity, coverage, unknown_names(index, retrieval.query))


def term_coverage(index: PaperIndex, query_terms: list[str], paper_ids: list[str]) -> float:
    """IDF-weighted share of the query's terms that the retrieved papers contain.

    A question about something the corpus never mentions (a benchmark, a method,
    a game) still finds papers that are close in meaning, so similarity alone
    can't tell it apart; but its rarest terms, which weigh most here, are
    missing from them. Terms the corpus has never seen weigh most of all.
    """
    snap = index.snapshot
    terms = set(query_terms)
    if not terms:
        return 0.0
    n = len(snap.papers)
    idf = {t: math.log((n + 1) / (snap.document_frequency.get(t, 0) + 0.5)) for t in terms}
    found = frozenset().union(*(snap.terms_of(p) for p in paper_ids))
    return sum(w for t, w in idf.items() if t in found) / sum(idf.values())


# A name: CamelCase (WebArena), an acronym (GCG, NF4) or letters with digits (miniF2F).
NAME = re.compile(r"\b(?:[A-Za-z]+[A-Z][a-z]+\w*|[A-Z]{2,}\w*|[A-Za-z]+\d+\w*)(?:-\w+)*")


def unknown_names(index: PaperIndex, question: str) -> tuple[str, ...]:
    """Names in the question that no paper in the index ever uses.

    A question about a benchmark or method the corpus never mentions can still
    retrieve papers close in meaning; when it names the thing, its absence from
    every abstract is the surest sign the papers can't answer.
    """
    frequency = index.snapshot.document_frequency
    names = []
    for name in dict.fromkeys(m.group(0) for m in NAME.finditer(question)):
        terms = bm25_tokenize([name])[0]
        if terms and not any(frequency.get(t, 0) for t in terms):
            names.append(name)
    if names:  # "CRF" is known to a paper that says "Conditional Random Fields"
        spelled = index.snapshot.acronyms
        names = [n for n in names if not (n.isupper() and n.lower() in spelled)]
    return tuple(names)


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
