"""Answer backends: an OpenAI-compatible chat model, or extractive sentence selection offline.

Both turn (question, numbered sources) into a `Generation`: iterate it for text
as it arrives, then read its usage. The caller checks citations on the whole
text afterwards, whichever backend wrote it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import AssistantError
from .prompts import Prompt, load_prompt
from .settings import Settings
from .text import neutralize_markers, split_sentences
from .tokens import count_tokens
from .types import Conversation, Source, Usage

if TYPE_CHECKING:
    import openai

    from .embeddings import Embedder

# USD per million tokens (input, output), for the cost estimate on each answer.
PRICES = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}

EXTRACTIVE_HEADER = "Extractive answer: the most relevant sentences from the retrieved abstracts."


NOT_OPENAI_HINT = "check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 endpoint"


class LLMError(AssistantError):
    """The model could not answer; the conversation goes on."""


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    # Dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs.
    family = max((m for m in PRICES if model.startswith(m)), key=len, default=None)
    if family is None:
        return None
    price_in, price_out = PRICES[family]
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000


@dataclass
class Generation:
    """Text deltas as they arrive; `text` and `usage` are complete once iterated."""

    deltas: Iterator[str]
    usage: Usage = field(default_factory=Usage)
    text: str = ""

    def __iter__(self) -> Iterator[str]:
        for delta in self.deltas:
            self.text += delta
            yield delta

    def finish(self) -> str:
        for _ in self:
            pass
        return self.text


class Backend(Protocol):
    name: str
    model: str
    packs_context: bool
    prompts: dict[str, Prompt]

    def answer(self, question: str, sources: list[Source]) -> Generation: ...

    def condense(self, conversation: Conversation, question: str) -> tuple[str, Usage]: ...


SOURCE_TAG = re.compile(r"<(?=\s*/?\s*source\b)", re.IGNORECASE)


TURN_TAG = re.compile(r"<(?=\s*/?\s*turn\b)", re.IGNORECASE)


def defuse_turns(text: str) -> str:
    """Past answers quote abstracts: they can't close a <turn> block either."""
    return TURN_TAG.sub("&lt;", defuse(text))


def defuse(text: str) -> str:
    """Corpus text can't open or close a <source> block: its '<' becomes '&lt;'."""
    return SOURCE_TAG.sub("&lt;", text)


def format_sources(sources: list[Source]) -> str:
    """Delimited so that text inside a title or abstract can't pass for the prompt's own words."""
    return "\n\n".join(
        source_block(s.marker, s.paper.title, neutralize_markers(s.paper.abstract)) for s in sources
    )


def source_block(marker: int, title: str, body: str) -> str:
    """One numbered source: the title escaped as an attribute, the body defused."""
    title = html.escape(" ".join(title.split()), quote=True)
    return f'<source n="{marker}" title="{title}">\n{defuse(body)}\n</source>'


# --- OpenAI-compatible --------------------------------------------------------


class OpenAIBackend:
    """Any OpenAI-compatible server: OpenAI itself, Ollama, vLLM, llama.cpp, LM Studio."""

    name = "openai"
    packs_context = True  # sources must fit the prompt's token budget

    def __init__(self, settings: Settings, client: openai.OpenAI | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self._client = client
        self.prompts = {
            "answer": load_prompt("answer", settings.prompts_dir),
            "condense": load_prompt("condense", settings.prompts_dir),
        }

    @cached_property
    def client(self) -> openai.OpenAI:
        if self._client is not None:
            return self._client
        import openai

        key = self.settings.openai_api_key
        return openai.OpenAI(
            api_key=key.get_secret_value() if key else "not-needed",  # local servers ignore it
            base_url=self.settings.openai_base_url,
            timeout=self.settings.llm_timeout,
            max_retries=self.settings.llm_max_retries,  # the client backs off on 429 and 5xx
        )

    def answer(self, question: str, sources: list[Source]) -> Generation:
        prompt = self.prompts["answer"].render(sources=format_sources(sources), question=question)
        return self.stream([{"role": "user", "content": prompt}])

    def condense(self, conversation: Conversation, question: str) -> tuple[str, Usage]:
        history = format_history(conversation, self.settings.history_tokens, self.model)
        prompt = self.prompts["condense"].render(history=history, question=question)
        generation = self.stream([{"role": "user", "content": prompt}])
        text = generation.finish().strip().strip('"').strip()
        return (text or question), generation.usage

    def stream(self, messages: list[dict[str, str]]) -> Generation:
        generation = Generation(iter(()))
        generation.deltas = self._deltas(messages, generation.usage)
        return generation

    def _deltas(self, messages: list[dict[str, str]], usage: Usage) -> Iterator[str]:
        import openai

        text = ""
        reported = None
        events = 0
        try:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.settings.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in stream:
                events += 1
                if getattr(chunk, "usage", None):
                    reported = chunk.usage
                for choice in chunk.choices or []:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        text += delta
                        yield delta
        except openai.APITimeoutError as exc:
            raise LLMError(
                f"the model did not answer within {self.settings.llm_timeout:g} s",
                "try again, or raise ASSISTANT_LLM_TIMEOUT",
            ) from exc
        except openai.AuthenticationError as exc:
            raise LLMError(
                "the API key was refused (401)", "check OPENAI_API_KEY and OPENAI_BASE_URL"
            ) from exc
        except openai.RateLimitError as exc:
            raise LLMError(
                "rate limited (429) even after retries", "wait a moment and ask again"
            ) from exc
        except openai.APIStatusError as exc:
            raise LLMError(
                f"the model server answered {exc.status_code} after retries",
                "check that the server at OPENAI_BASE_URL is healthy and knows ASSISTANT_MODEL",
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMError(
                "cannot reach the model server", "check OPENAI_BASE_URL and your connection"
            ) from exc
        except (openai.OpenAIError, ValueError) as exc:  # ValueError: a body that isn't JSON
            raise LLMError(
                f"malformed reply from the model server ({type(exc).__name__})", NOT_OPENAI_HINT
            ) from exc
        if events == 0:
            raise LLMError(
                "malformed reply from the model server (no stream events)", NOT_OPENAI_HINT
            )
        if not text.strip():
            raise LLMError("the model returned an empty answer", "try again or another model")
        if (
            reported is not None
            and reported.prompt_tokens is not None
            and (reported.completion_tokens is not None)
        ):
            usage.prompt_tokens = reported.prompt_tokens
            usage.completion_tokens = reported.completion_tokens
        else:  # servers that don't report usage (fully): count it ourselves
            usage.prompt_tokens = sum(count_tokens(m["content"], self.model) for m in messages)
            usage.completion_tokens = count_tokens(text, self.model)
        usage.cost_usd = estimate_cost(self.model, usage.prompt_tokens, usage.completion_tokens)


# --- extractive ---------------------------------------------------------------


class ExtractiveBackend:
    """Offline: the retrieved abstracts' sentences that answer the question, each cited.

    The local embedding model scores every sentence against the question; a
    maximal-marginal-relevance pass drops near-repeats; the chosen sentences are
    grouped by paper (in source order) and keep their order within the abstract.
    """

    name = "extractive"
    model = "extractive"
    packs_context = False  # quotes sentences; no prompt, so no token budget
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


def format_history(conversation: Conversation, budget: int, model: str) -> str:
    """The most recent turns that fit the token budget, oldest first."""
    lines: list[str] = []
    used = 0
    for turn in reversed(conversation.turns):
        cited = "; ".join(f"[{n}] {conversation.papers[n].title}" for n in turn.cited)
        block = defuse_turns(
            f"User: {turn.question}\nAssistant: {turn.answer}"
            + (f"\n(Cited: {cited})" if cited else "")
        )
        cost = count_tokens(block, model)
        if used + cost > budget and lines:
            break
        lines.append(block)
        used += cost
    return "\n\n".join(f"<turn>\n{line}\n</turn>" for line in reversed(lines))


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


def make_backend(settings: Settings, embedder_factory: Callable[[], Embedder]) -> Backend:
    if settings.backend == "openai":
        return OpenAIBackend(settings)
    return ExtractiveBackend(embedder_factory())
