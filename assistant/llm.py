"""Answer backends: what turns (question, numbered sources) into a streamed `Generation`.

`OpenAIBackend` renders prompts/answer.md and prompts/condense.md and sends them through a
`ChatModel` (assistant/chat_model.py), the one seam in front of the server. The offline
`ExtractiveBackend` (assistant/extractive.py) quotes sentences instead. The caller checks
citations on the whole text afterwards, whichever backend wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .chat_model import ChatModel, OpenAIChat
from .prompts import Prompt, defuse, format_sources, load_prompt
from .settings import Settings
from .tokens import count_tokens
from .types import Conversation, Generation, Source, Usage

if TYPE_CHECKING:
    from .embeddings import Embedder


class Backend(Protocol):
    name: str
    model: str
    packs_context: bool
    prompts: dict[str, Prompt]
    chat_model: ChatModel | None  # the model behind it, for the summary's map-reduce

    def answer(self, question: str, sources: list[Source]) -> Generation: ...

    def condense(self, conversation: Conversation, question: str) -> tuple[str, Usage]: ...


class OpenAIBackend:
    """Answers written by a chat model from the prompt files."""

    name = "openai"
    packs_context = True  # sources must fit the prompt's token budget

    def __init__(self, settings: Settings, chat_model: ChatModel | None = None) -> None:
        self.settings = settings
        self.chat_model: ChatModel = chat_model or OpenAIChat(settings)
        self.model = self.chat_model.model
        self.prompts = {
            "answer": load_prompt("answer", settings.prompts_dir),
            "condense": load_prompt("condense", settings.prompts_dir),
        }

    def answer(self, question: str, sources: list[Source]) -> Generation:
        prompt = self.prompts["answer"].render(sources=format_sources(sources), question=question)
        return self.chat_model.stream([{"role": "user", "content": prompt}])

    def condense(self, conversation: Conversation, question: str) -> tuple[str, Usage]:
        history = format_history(conversation, self.settings.history_tokens, self.model)
        prompt = self.prompts["condense"].render(history=history, question=question)
        generation = self.chat_model.stream([{"role": "user", "content": prompt}])
        text = generation.finish().strip().strip('"').strip()
        return (text or question), generation.usage


def format_history(conversation: Conversation, budget: int, model: str) -> str:
    """The most recent turns that fit the token budget, oldest first."""
    lines: list[str] = []
    used = 0
    for turn in reversed(conversation.turns):
        cited = "; ".join(f"[{n}] {conversation.papers[n].title}" for n in turn.cited)
        block = defuse(
            f"User: {turn.question}\nAssistant: {turn.answer}"
            + (f"\n(Cited: {cited})" if cited else "")
        )
        cost = count_tokens(block, model)
        if used + cost > budget and lines:
            break
        lines.append(block)
        used += cost
    return "\n\n".join(f"<turn>\n{line}\n</turn>" for line in reversed(lines))


def make_backend(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    chat_model: ChatModel | None = None,
) -> Backend:
    if settings.backend == "openai":
        return OpenAIBackend(settings, chat_model)
    from .extractive import ExtractiveBackend

    return ExtractiveBackend(embedder_factory())
