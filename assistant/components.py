"""The one place that builds the pipeline's objects from Settings.

The CLI, the app, the eval harness and the benchmarks all need the same four things: the
opened index, the embedder, the answer backend and a grounding judge. `Components` opens
each on first use (loading torch or reaching Chroma only when a command needs it) and
takes any of them ready-made instead, which is how tests hand in a fake embedder or a
model pointed at their scripted server: through the front door, not by patching modules.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .chat_model import ChatModel
    from .embeddings import Embedder
    from .grounding import Judge
    from .index import PaperIndex
    from .llm import Backend


class Components:
    def __init__(
        self,
        settings: Settings,
        *,
        index: PaperIndex | None = None,
        embedder: Embedder | None = None,
        chat_model: ChatModel | None = None,
        backend: Backend | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.settings = settings
        given = {
            "index": index,
            "embedder": embedder,
            "chat_model": chat_model,
            "backend": backend,
            "judge": judge,
        }
        self.given = {name for name, value in given.items() if value is not None}
        # A cached_property reads the instance dict first: what was given is what is used.
        self.__dict__.update({name: given[name] for name in self.given})

    @cached_property
    def embedder(self) -> Embedder:
        from .embeddings import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def index(self) -> PaperIndex:
        """Opened for the embedder in use: an index built with another model is refused."""
        from .index import PaperIndex

        return PaperIndex.open(self.settings, self.embedder_name)

    @property
    def embedder_name(self) -> str:
        if "embedder" in self.__dict__:  # given or loaded; don't load a model for its name
            return self.embedder.name
        return self.settings.embedding_model

    @cached_property
    def chat_model(self) -> ChatModel:
        from .chat_model import OpenAIChat

        return OpenAIChat(self.settings)

    @cached_property
    def backend(self) -> Backend:
        from .llm import make_backend

        chat = self.chat_model if self.settings.backend == "openai" else None
        return make_backend(self.settings, lambda: self.embedder, chat)

    @cached_property
    def judge(self) -> Judge:
        """The local judge; `make_judge("llm")` asks the model instead."""
        return self.make_judge("local")

    def make_judge(self, name: str) -> Judge:
        """The judge by name; a judge handed in is used whatever the name."""
        if "judge" in self.given:
            return self.judge
        from .grounding import make_judge

        return make_judge(self.settings, name)
