"""The one seam in front of an OpenAI-compatible chat server.

Everything that talks to a model (the answer backend, the LLM judge, the summary's
map-reduce, the eval item drafter) holds a `ChatModel`: it sends a list of messages and
gets a `Generation` back, streamed or whole. `OpenAIChat` is the only implementation that
touches the network; it owns the client and translates the client's exceptions into one
`LLMError` each, in one place. The eval harness wraps it (it does not subclass it) with a
call counter and a disk cache, as lm-eval's `CachingLM` wraps a model.
"""

from __future__ import annotations

import time
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


def model_error(exc: Exception, settings: Settings, waited: float | None = None) -> LLMError:
    """The one translation of the openai client's exceptions: a line and a hint, never the
    response body (proxies echo keys back in it). `waited`: how long the user waited in all,
    retries included, which is what a timeout message must own up to."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        tries = settings.llm_max_retries + 1
        spent = f", {waited:.1f} s in all" if waited is not None else ""
        each = f" (each of {tries} tries{spent})" if tries > 1 else ""
        return LLMError(
            f"the model did not answer within {settings.llm_timeout:g} s{each}",
            "try again, or raise ASSISTANT_LLM_TIMEOUT (per try) or lower "
            "ASSISTANT_LLM_MAX_RETRIES",
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
        self.send_temperature = True  # until the server refuses one
        self._client = client

    @cached_property
    def client(self) -> openai.OpenAI:
        return self._client if self._client is not None else openai_client(self.settings)

    def describe(self) -> dict[str, Any]:
        return {"base_url": public_url(self.settings.openai_base_url), "model": self.model}

    def stream(self, messages: Messages, temperature: float | None = None) -> Generation:
        generation = Generation(iter(()))
        chosen = self.temperature if temperature is None else temperature
        generation.deltas = self._deltas(messages, chosen, generation)
        return generation

    def complete(self, messages: Messages, temperature: float | None = None) -> Generation:
        import openai

        chosen = self.temperature if temperature is None else temperature
        started = time.monotonic()
        try:
            response = self.create(messages, chosen)
        except (openai.OpenAIError, ValueError) as exc:
            raise self.error(exc, started) from exc
        choices = getattr(response, "choices", None) or []
        text = (choices[0].message.content if choices and choices[0].message else None) or ""
        usage = self._usage(messages, text, getattr(response, "usage", None))
        return Generation(iter([text] if text else []), usage=usage)

    def _deltas(self, messages: Messages, temperature: float, out: Generation) -> Iterator[str]:
        """The answer's text as it arrives, reasoning set aside. A stream is complete only
        when a finish reason arrived: a server that closes the connection before that has
        sent part of an answer, and part of an answer is not passed off as the whole."""
        import openai

        text, reported, events, finish = "", None, 0, None
        thoughts = ThinkFilter()
        started = time.monotonic()
        try:
            stream = self.create(
                messages, temperature, stream=True, stream_options={"include_usage": True}
            )
            for chunk in stream:
                events += 1
                reported = getattr(chunk, "usage", None) or reported
                for choice in chunk.choices or []:
                    finish = choice.finish_reason or finish
                    delta = choice.delta
                    if delta is None:
                        continue
                    out.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
                    visible = thoughts.feed(delta.content or "")
                    if visible:
                        text += visible
                        yield visible
        except (openai.OpenAIError, ValueError) as exc:
            raise self.error(exc, started, midway=events > 0) from exc
        rest = thoughts.flush()
        if rest:
            text += rest
            yield rest
        out.reasoning += thoughts.reasoning.strip()
        if events == 0:
            raise LLMError(
                "malformed reply from the model server (no stream events)", NOT_OPENAI_HINT
            )
        if finish is None:
            raise LLMError(
                "the model server ended the stream before the answer was complete "
                "(no finish reason)",
                "ask again; if it keeps happening, check the server's logs and limits",
            )
        if not text.strip():
            raise LLMError("the model returned an empty answer", "try again or another model")
        out.finish_reason = finish
        finished = self._usage(messages, text, reported)
        out.usage.prompt_tokens = finished.prompt_tokens
        out.usage.completion_tokens = finished.completion_tokens
        out.usage.cost_usd = finished.cost_usd
        out.usage.estimated = finished.estimated

    def create(self, messages: Messages, temperature: float, **options: Any) -> Any:
        """One request. Reasoning models (OpenAI's o-series, for one) refuse any temperature
        but their own; such a refusal is answered by asking again without one, and this
        model is not sent a temperature again."""
        import openai

        chosen = {"temperature": temperature} if self.send_temperature else {}
        try:
            return self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                **chosen,
                **options,
            )
        except openai.BadRequestError as exc:
            if not (self.send_temperature and "temperature" in str(exc.message).lower()):
                raise
            self.send_temperature = False
            return self.create(messages, temperature, **options)

    def error(self, exc: Exception, started: float, midway: bool = False) -> LLMError:
        """`model_error`, told how long the user waited and whether the stream had begun; a
        model the server doesn't know is answered with the models it does."""
        import openai

        if midway and isinstance(exc, openai.APIConnectionError):
            return LLMError(
                "the model server closed the connection in the middle of the answer",
                "ask again; if it keeps happening, check the server's logs and limits",
            )
        if isinstance(exc, openai.NotFoundError):
            served = self.served_models()
            if served is not None and self.model not in served:
                return LLMError(
                    f"the server at OPENAI_BASE_URL doesn't serve the model {self.model!r}",
                    "set ASSISTANT_MODEL to one it lists: " + (", ".join(served[:12]) or "none"),
                )
        return model_error(exc, self.settings, waited=time.monotonic() - started)

    def served_models(self) -> list[str] | None:
        """GET /v1/models, or None when the server doesn't answer it."""
        try:
            return sorted(m.id for m in self.client.models.list())
        except Exception:  # only a better message is at stake
            return None

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
            return Usage(prompt, completion, estimate_cost(self.model, prompt, completion), True)
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


class ThinkFilter:
    """Splits a reasoning model's `<think>…</think>` from its answer as the text streams in:
    the answer passes through, the reasoning is kept aside, and a tag cut between two deltas
    is held back until it is whole. Only a reply that opens with <think> has reasoning."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.reasoning = ""
        self.state = "start"  # start | think | answer
        self.held = ""

    def feed(self, delta: str) -> str:
        self.held += delta
        visible = ""
        while self.held:
            if self.state == "answer":
                visible, self.held = visible + self.held, ""
            elif self.state == "start":
                head = self.held.lstrip()
                if self.OPEN.startswith(head) and len(head) < len(self.OPEN):
                    break  # maybe the start of <think>: wait for more
                if head.startswith(self.OPEN):
                    self.state, self.held = "think", head[len(self.OPEN) :]
                else:
                    self.state = "answer"
            else:
                at = self.held.find(self.CLOSE)
                if at == -1:
                    keep = max(
                        k for k in range(len(self.CLOSE)) if self.held.endswith(self.CLOSE[:k])
                    )
                    self.reasoning += self.held[: len(self.held) - keep]
                    self.held = self.held[len(self.held) - keep :]
                    break
                self.reasoning += self.held[:at]
                self.state, self.held = "answer", self.held[at + len(self.CLOSE) :].lstrip()
        return visible

    def flush(self) -> str:
        """At the end of the stream: what is still held back."""
        rest, self.held = self.held, ""
        if self.state == "think":
            self.reasoning += rest  # never closed: all of it was reasoning
            return ""
        return rest
