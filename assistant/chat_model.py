"""The one seam in front of an OpenAI-compatible chat server.

Everything that talks to a model (the answer backend, the LLM judge, the summary's
map-reduce, the eval item drafter) holds a `ChatModel`: it sends a list of messages and
gets a `Generation` back, streamed or whole. `OpenAIChat` is the only implementation that
touches the network; it owns the client and translates the client's exceptions into one
`LLMError` each, in one place. The eval harness wraps it (it does not subclass it) with a
call counter and a disk cache, as lm-eval's `CachingLM` wraps a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from .errors import AssistantError
from .settings import Settings, public_url
from .tokens import count_tokens
from .types import Generation, Usage

if TYPE_CHECKING:
    import openai

Messages = list[dict[str, str]]

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


class ChatModel(Protocol):
    model: str
    temperature: float  # used when a call doesn't set its own

    def describe(self) -> dict[str, Any]:
        """What identifies the replies: server and model, never a key."""
        ...

    def stream(self, messages: Messages, temperature: float | None = None) -> Generation:
        """The reply as it arrives; nothing is sent until the Generation is iterated."""
        ...

    def complete(self, messages: Messages, temperature: float | None = None) -> Generation:
        """The whole reply in one non-streamed request (for short structured replies)."""
        ...


# --- the client and its errors -------------------------------------------------------------


def openai_client(settings: Settings, require_key: bool = False) -> openai.OpenAI:
    """A client for the configured server; local servers (Ollama, vLLM, …) ignore the key."""
    import openai

    key = settings.openai_api_key
    if key is None and require_key:
        raise AssistantError(
            "ASSISTANT_EMBEDDINGS=openai needs OPENAI_API_KEY",
            "set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server), "
            "or unset ASSISTANT_EMBEDDINGS to use the local model",
        )
    return openai.OpenAI(
        api_key=key.get_secret_value() if key else "not-needed",
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,  # the client backs off on 429 and 5xx
    )


RETRIED_STATUSES = {408, 409, 429}  # and every 5xx: what the openai client retries


def model_error(exc: Exception, settings: Settings) -> LLMError:
    """The one translation of the openai client's exceptions: a line and a hint, never the
    response body (proxies echo keys back in it)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return LLMError(
            f"the model did not answer within {settings.llm_timeout:g} s",
            "try again, or raise ASSISTANT_LLM_TIMEOUT",
        )
    if isinstance(exc, openai.AuthenticationError):
        return LLMError("the API key was refused (401)", "check OPENAI_API_KEY and OPENAI_BASE_URL")
    if isinstance(exc, openai.RateLimitError):
        return LLMError("rate limited (429) even after retries", "wait a moment and ask again")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500 or status in RETRIED_STATUSES:
            message = f"the model server answered {status} after retries"
        else:
            message = f"the model server refused the request (HTTP {status})"
        return LLMError(
            message,
            "check that the server at OPENAI_BASE_URL is healthy and knows the model "
            "(ASSISTANT_MODEL, or ASSISTANT_OPENAI_EMBEDDING_MODEL for embeddings)",
        )
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(
            "cannot reach the model server", "check OPENAI_BASE_URL and your connection"
        )
    # Any other client error, or a ValueError from a body that isn't JSON.
    return LLMError(
        f"malformed reply from the model server ({type(exc).__name__})", NOT_OPENAI_HINT
    )


# --- the OpenAI-compatible model -----------------------------------------------------------


class OpenAIChat:
    """Any OpenAI-compatible server: OpenAI itself, Ollama, vLLM, llama.cpp, LM Studio."""

    def __init__(self, settings: Settings, client: openai.OpenAI | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.temperature = settings.temperature
        self._client = client

    @cached_property
    def client(self) -> openai.OpenAI:
        return self._client if self._client is not None else openai_client(self.settings)

    def describe(self) -> dict[str, Any]:
        return {"base_url": public_url(self.settings.openai_base_url), "model": self.model}

    def stream(self, messages: Messages, temperature: float | None = None) -> Generation:
        generation = Generation(iter(()))
        chosen = self.temperature if temperature is None else temperature
        generation.deltas = self._deltas(messages, chosen, generation.usage)
        return generation

    def complete(self, messages: Messages, temperature: float | None = None) -> Generation:
        import openai

        chosen = self.temperature if temperature is None else temperature
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=chosen,
            )
        except (openai.OpenAIError, ValueError) as exc:
            raise model_error(exc, self.settings) from exc
        choices = getattr(response, "choices", None) or []
        text = (choices[0].message.content if choices and choices[0].message else None) or ""
        usage = self._usage(messages, text, getattr(response, "usage", None))
        return Generation(iter([text] if text else []), usage=usage)

    def _deltas(self, messages: Messages, temperature: float, usage: Usage) -> Iterator[str]:
        import openai

        text = ""
        reported = None
        events = 0
        try:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
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
        except (openai.OpenAIError, ValueError) as exc:
            raise model_error(exc, self.settings) from exc
        if events == 0:
            raise LLMError(
                "malformed reply from the model server (no stream events)", NOT_OPENAI_HINT
            )
        if not text.strip():
            raise LLMError("the model returned an empty answer", "try again or another model")
        finished = self._usage(messages, text, reported)
        usage.prompt_tokens = finished.prompt_tokens
        usage.completion_tokens = finished.completion_tokens
        usage.cost_usd = finished.cost_usd

    def _usage(self, messages: Messages, text: str, reported: Any) -> Usage:
        """The server's counts; for servers that don't report them (fully), our own."""
        if (
            reported is not None
            and reported.prompt_tokens is not None
            and reported.completion_tokens is not None
        ):
            prompt, completion = reported.prompt_tokens, reported.completion_tokens
        else:
            prompt = sum(count_tokens(m["content"], self.model) for m in messages)
            completion = count_tokens(text, self.model)
        return Usage(prompt, completion, estimate_cost(self.model, prompt, completion))


# --- wrappers the eval harness puts around a model ------------------------------------------


class CountingChatModel:
    """Counts the requests that reach the wrapped model (a cache in front makes fewer)."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.model = inner.model
        self.temperature = inner.temperature
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def stream(self, messages: Messages, temperature: float | None = None) -> Generation:
        self.calls += 1
        return self.inner.stream(messages, temperature)

    def complete(self, messages: Messages, temperature: float | None = None) -> Generation:
        self.calls += 1
        return self.inner.complete(messages, temperature)


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


class CachingChatModel:
    """Every call keyed by what determines the reply (server, model, messages, temperature);
    a hit replays the recorded text and usage without a request. A miss is stored only once
    its reply arrived whole, so a failed stream is asked again next time."""

    def __init__(self, inner: ChatModel, cache: Cache) -> None:
        self.inner = inner
        self.cache = cache
        self.model = inner.model
        self.temperature = inner.temperature

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def key(self, messages: Messages, temperature: float | None, streamed: bool) -> str:
        from .cache import stable_hash

        request: dict[str, Any] = {
            **self.inner.describe(),
            "messages": messages,
            "temperature": self.temperature if temperature is None else temperature,
        }
        if streamed:
            request["stream_options"] = {"include_usage": True}
        else:
            request["stream"] = False
        return stable_hash(request)

    def stream(self, messages: Messages, temperature: float | None = None) -> Generation:
        return self._cached(messages, temperature, streamed=True)

    def complete(self, messages: Messages, temperature: float | None = None) -> Generation:
        return self._cached(messages, temperature, streamed=False)

    def _cached(self, messages: Messages, temperature: float | None, streamed: bool) -> Generation:
        key = self.key(messages, temperature, streamed)
        hit = self.cache.get(key)
        if hit is not None:
            return Generation(iter([hit["text"]]), usage=Usage(**hit["usage"]))
        call = self.inner.stream if streamed else self.inner.complete
        inner = call(messages, temperature)

        def recorded() -> Iterator[str]:
            parts: list[str] = []
            for delta in inner.deltas:
                parts.append(delta)
                yield delta
            self.cache.put(key, {"text": "".join(parts), "usage": inner.usage.to_json()})

        return Generation(recorded(), usage=inner.usage)
