"""The offline backend: the retrieved abstracts' sentences that answer the question, each cited.

No model writes anything here, so nothing here can invent a claim: every sentence of an
answer is a sentence of an abstract, ending in the marker of the paper it came from.
Follow-ups are resolved deterministically (`rewrite_followup`), since there is no model
to condense them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from .prompts import Prompt
from .text import neutralize_markers, split_sentences
from .types import Conversation, Generation, Source, Usage

if TYPE_CHECKING:
    from .chat_model import ChatModel
    from .embeddings import Embedder

EXTRACTIVE_HEADER = "Extractive answer: the most relevant sentences from the retrieved abstracts."


class ExtractiveBackend:
    """Offline: the retrieved abstracts' sentences that answer the question, each cited.

    The local embedding model scores every sentence against the question; a
    maximal-marginal-relevance pass drops near-repeats; the chosen sentences are
    grouped by paper (in source order) and keep their order within the abstract.
    """

    name = "extractive"
    model = "extractive"
    packs_context = False  # quotes sentences; no prompt, so no token budget
    chat_model: ChatModel | None = None  # no model: summaries are written extractively too
    prompts: dict[str, Prompt] = {}  # noqa: RUF012 - no prompt is involved

    max_sentences = 5
    per_paper = 2
    min_similarity = 0.25
    redundancy = 0.85  # a sentence this close to one already chosen adds nothing

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._sentence_cache: dict[str, tuple[list[str], np.ndarray]] = {}

    def sentences_of(self, sources: list[Source]) -> list[tuple[list[str], np.ndarray]]:
        """Cached per paper: a conversation keeps coming back to the same abstracts.

        The uncached papers' sentences go to the model in one call: fewer, larger
        batches are what a CPU does fastest.
        """
        missing = [s.paper for s in sources if s.paper.paper_id not in self._sentence_cache]
        split = {
            p.paper_id: [
                x for x in split_sentences(neutralize_markers(p.abstract)) if len(x.split()) >= 5
            ]
            for p in missing
        }
        flat = [sentence for sentences in split.values() for sentence in sentences]
        vectors = self.embedder.embed_documents(flat) if flat else np.zeros((0, 1), np.float32)
        start = 0
        for paper_id, sentences in split.items():
            self._sentence_cache[paper_id] = (sentences, vectors[start : start + len(sentences)])
            start += len(sentences)
        return [self._sentence_cache[s.paper.paper_id] for s in sources]

    def select(self, question: str, sources: list[Source]) -> list[tuple[Source, int, str]]:
        query = self.embedder.embed_query(question)
        candidates: list[tuple[float, Source, int, str, np.ndarray]] = []
        for rank, (source, (sentences, vectors)) in enumerate(
            zip(sources, self.sentences_of(sources), strict=True)
        ):
            if not sentences:
                continue
            scores = vectors @ query
            for i, (sentence, score) in enumerate(zip(sentences, scores, strict=True)):
                # Small priors: better-ranked papers first on near-ties; what a paper
                # did and found over the background its abstract opens with.
                prior = -0.01 * rank + (0.04 if CONTRIBUTION.search(sentence) else 0.0)
                if i == 0 or BACKGROUND.match(sentence):
                    prior -= 0.04
                candidates.append((float(score) + prior, source, i, sentence, vectors[i]))
        candidates.sort(key=lambda c: -c[0])
        chosen: list[tuple[float, Source, int, str, np.ndarray]] = []
        for cand in candidates:
            if len(chosen) == self.max_sentences or cand[0] < self.min_similarity:
                break
            same_paper = sum(1 for c in chosen if c[1] is cand[1])
            if same_paper >= self.per_paper:
                continue
            if any(float(cand[4] @ c[4]) > self.redundancy for c in chosen):
                continue
            chosen.append(cand)
        if not chosen and candidates:
            chosen = candidates[:1]  # retrieval judged these relevant: show the best sentence
        order = {id(s): i for i, s in enumerate(sources)}
        chosen.sort(key=lambda c: (order[id(c[1])], c[2]))
        return [(c[1], c[2], c[3]) for c in chosen]

    def answer(self, question: str, sources: list[Source]) -> Generation:
        picked = self.select(question, sources)
        lines = [EXTRACTIVE_HEADER]
        for source, _, sentence in picked:
            name = short_name(source.paper.title)
            lines.append(f"- {name + ': ' if name else ''}{cite(sentence, source.marker)}")
        return Generation(iter(["\n".join(lines)]))

    def condense(self, conversation: Conversation, question: str) -> tuple[str, Usage]:
        return rewrite_followup(conversation, question), Usage()


CONTRIBUTION = re.compile(
    r"\b(we|our|results?|show\w*|find\w*|found|propos\w*|introduc\w*|achiev\w*|outperform\w*|"
    r"improv\w*|reduc\w*|faster|accura\w*)\b|\d",
    re.IGNORECASE,
)
BACKGROUND = re.compile(
    r"(however|despite|although|while|recent(ly)?|existing|traditional|in recent)\b", re.IGNORECASE
)


def short_name(title: str) -> str | None:
    """'EMS: Adaptive Evict-then-Merge …' -> 'EMS', so "we propose" has a subject."""
    head, sep, _ = title.partition(":")
    return head.strip() if sep and len(head) <= 40 else None


def cite(sentence: str, marker: int) -> str:
    """Put [n] before the sentence's final punctuation: 'X improves Y [2].'"""
    match = re.search(r"[.!?]+[\"')\]]*$", sentence)
    if match:
        return f"{sentence[: match.start()]} [{marker}]{sentence[match.start() :]}"
    return f"{sentence} [{marker}]."


ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
REFERENCE = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|the (?:method|approach|paper|model|"
    r"study|work|authors|technique|one|ones|former|latter))\b",
    re.IGNORECASE,
)


def rewrite_followup(conversation: Conversation, question: str) -> str:
    """A deterministic condense step for the offline backend.

    Explicit references become titles ("the second paper", "[2]"); any other
    pronoun or back-reference gets the previous standalone question appended,
    which is what retrieval needs to find the same papers again.
    """
    if not conversation.turns:
        return question
    last = conversation.turns[-1]
    cited = last.cited or [s.marker for s in last.sources]

    def title_at(position: int) -> str | None:
        try:
            return conversation.papers[cited[position]].title
        except (IndexError, KeyError):
            return None

    def ordinal(match: re.Match[str]) -> str:
        title = title_at(ORDINALS[match.group(1).lower()])
        return f'"{title}"' if title else match.group(0)

    def numbered(match: re.Match[str]) -> str:
        paper = conversation.papers.get(int(match.group(1)))
        return f'"{paper.title}"' if paper else match.group(0)

    rewritten = re.sub(
        r"\bthe (first|second|third|fourth|fifth|last) (?:one|paper|source|study|work|result)"
        r"(?: you cited| cited)?",
        ordinal,
        question,
        flags=re.IGNORECASE,
    )
    rewritten = re.sub(r"\[(\d+)\]", numbered, rewritten)
    if REFERENCE.search(rewritten) or len(rewritten.split()) <= 4:
        topic = CONTEXT.sub("", last.standalone)  # the root topic, not a growing chain
        rewritten = f"{rewritten} (context: {topic})"
    return rewritten


CONTEXT = re.compile(r"\s*\(context: .*\)$")
