"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests that talk real HTTP.

The test queues the replies it wants, in order; each `POST /v1/chat/completions`
takes the next one and records the request body, so the test can read the
prompts that were sent. A request with nothing queued gets a 500 that says so
(and tells the client not to retry), so an unexpected call fails loudly, unless the
test set a `responder`: then the reply is written from the request itself, as a
model writes it from the prompt (for runs too long to script reply by reply).

Reply kinds:
- text: a `chat.completion`, or, when the request says `stream: true`, SSE
  `chat.completion.chunk`s with the content split over several deltas, a usage
  chunk when `stream_options.include_usage` is set, then `data: [DONE]`;
- error: an HTTP status with an OpenAI-style error body (429 and 5xx carry
  `retry-after-ms: 1`, so the client's retries are instant);
- hang: wait (interruptibly: shutdown wakes it) before a late text reply, to
  outlast the client's timeout;
- malformed: a 200 whose body is neither valid JSON nor valid SSE.

Only the standard library: `ThreadingHTTPServer` in a daemon thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
EMBEDDINGS_PATH = "/v1/embeddings"
EMBEDDING_DIM = 32
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}
ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}
NO_RETRY = {"x-should-retry": "false"}


@dataclass
class Reply:
    """One scripted answer to one request."""

    kind: str  # "text" | "error" | "hang" | "malformed"
    text: str = ""
    pieces: int = 4  # streamed text is split into this many deltas (at most)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    body: bytes = b""
    quirks: Quirks = field(default_factory=lambda: Quirks())


@dataclass
class Quirks:
    """What real servers (Ollama, vLLM, llama.cpp, LM Studio) do to a stream, one switch each.

    The defaults are OpenAI's own behaviour."""

    finish: str | None = "stop"  # the last choice's finish_reason; None: never sent
    done: bool = True  # end with `data: [DONE]`
    cut_after: int | None = None  # close the connection after this many content deltas
    cut_mid_chunk: bool = False  # ...and in the middle of the next event
    usage: bool = True  # a usage chunk, when the request asks for one
    role_only_first: bool = False  # the first chunk carries only the role, no content key
    null_deltas: bool = False  # `content: null` deltas between the real ones
    think: str = ""  # reasoning streamed before the answer, inside <think>…</think>
    reasoning_field: str = ""  # reasoning in a `reasoning_content` delta field instead
    vary: bool = False  # ignore temperature: every reply differs, even for one request


def split_text(text: str, pieces: int) -> list[str]:
    """Word-aligned pieces that join back to exactly `text`."""
    words = text.split(" ")
    size = max(1, -(-len(words) // max(1, pieces)))  # ceiling division
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g + " " for g in groups[:-1]] + groups[-1:]


class ScriptedOpenAI:
    """The server plus its script: `queue_*` replies, then read `requests` (parsed bodies)."""

    def __init__(self, model: str = "gpt-4o-mini") -> None:
        self.model = model
        self.models = [model, "llama3.1:8b"]  # what GET /v1/models lists
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []  # every request body, parsed, in arrival order
        self.headers: list[dict[str, str]] = []  # their headers (lower-cased names)
        self.unexpected = 0  # requests that found the queue empty
        self.embedding_inputs: list[str] = []  # every text sent to /v1/embeddings
        # Writes the reply to a request nothing was queued for, from its parsed body.
        self.responder: Callable[[dict], str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- the test's side --------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def prompts(self) -> list[str]:
        """The concatenated message contents of each request, for reading what was sent."""
        return ["\n".join(m["content"] for m in r.get("messages", [])) for r in self.requests]

    @property
    def pending(self) -> int:
        return len(self.replies)

    def queue_text(
        self,
        text: str,
        *,
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
        pieces: int = 4,
        **quirks: object,
    ) -> ScriptedOpenAI:
        reply = Reply("text", text, pieces, prompt_tokens, completion_tokens)
        reply.quirks = Quirks(**quirks)  # type: ignore[arg-type]
        self._push(reply)
        return self

    def queue_error(
        self, status: int, message: str = "", *, headers: dict[str, str] | None = None
    ) -> ScriptedOpenAI:
        retryable = status == 429 or status >= 500
        default = {"retry-after-ms": "1", "retry-after": "0"} if retryable else {}
        self._push(
            Reply(
                "error",
                status=status,
                message=message or f"scripted error {status}",
                headers=default | (headers or {}),
            )
        )
        return self

    def queue_hang(
        self, seconds: float = 3.0, text: str = "This reply came too late."
    ) -> ScriptedOpenAI:
        self._push(Reply("hang", text, seconds=seconds, prompt_tokens=1, completion_tokens=1))
        return self

    def queue_malformed(self, body: bytes = b"{this is not JSON, nor SSE") -> ScriptedOpenAI:
        self._push(Reply("malformed", body=body))
        return self

    def start(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes any hanging handler
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # --- the server's side ------------------------------------------------------

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self.replies.append(reply)

    def _next(self, body: dict, headers: dict[str, str]) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self.replies:
                return self.replies.popleft()
            if self.responder is not None:
                try:
                    text = self.responder(body)
                except Exception as exc:  # the test's bug: say so, and don't let it retry
                    message = f"openai_server: the responder failed: {exc!r}"
                    return Reply("error", status=500, message=message, headers=NO_RETRY)
                return Reply("text", text, prompt_tokens=100, completion_tokens=20)
            self.unexpected += 1
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection; a stream ends at close

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest's output clean

            def do_GET(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if self.path.split("?")[0] != MODELS_PATH:
                        return server._send_error(self, 404, "no route", retry=False)
                    models = [
                        {"id": m, "object": "model", "owned_by": "test"} for m in server.models
                    ]
                    server._send(self, 200, json.dumps({"object": "list", "data": models}).encode())

            def do_POST(self) -> None:
                # A client that gave up (its timeout) has closed the socket: nothing to tell it.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server._serve(self)

        return Handler

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("content-length") or 0)
        raw = req.rfile.read(length)
        path = req.path.split("?")[0]
        if path not in (CHAT_PATH, EMBEDDINGS_PATH):
            return self._send_error(req, 404, f"openai_server: no route {req.path}", retry=False)
        try:
            body = json.loads(raw)
        except ValueError:
            message = "openai_server: request body is not JSON"
            return self._send_error(req, 400, message, retry=False)
        if path == EMBEDDINGS_PATH:
            return self._send(req, 200, json.dumps(self._embeddings(body)).encode())
        reply = self._next(body, {k.lower(): v for k, v in req.headers.items()})
        if reply is None:
            return self._send_error(
                req,
                500,
                f"openai_server: no reply queued for request #{len(self.requests)} "
                "(the test made a call it did not script)",
                retry=False,
            )
        if reply.kind == "error":
            return self._send_error(req, reply.status, reply.message, headers=reply.headers)
        if reply.kind == "malformed":
            content_type = "text/event-stream" if body.get("stream") else "application/json"
            return self._send(req, 200, reply.body, content_type)
        if reply.kind == "hang" and self._stop.wait(reply.seconds):
            return None  # shutting down: drop the connection unanswered
        if body.get("stream"):
            return self._stream_text(req, body, reply)
        return self._send(req, 200, json.dumps(self._completion(reply)).encode())

    def _embeddings(self, body: dict) -> dict:
        """Unscripted: a deterministic bag-of-words vector per input, like a tiny real model."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.embedding_inputs.extend(texts)
        data = []
        for i, text in enumerate(texts):
            vector = [0.0] * EMBEDDING_DIM
            for word in re.findall(r"\w+", text.lower()):
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % EMBEDDING_DIM] += 1.0
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(len(t.split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _send(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        req.send_response(status)
        req.send_header("content-type", content_type)
        req.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(payload)

    def _send_error(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        retry: bool | None = None,
    ) -> None:
        error = {
            "message": message,
            "type": ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request"),
            "param": None,
            "code": ERROR_CODES.get(status),
        }
        extra = dict(headers or {})
        if retry is not None:
            extra["x-should-retry"] = "true" if retry else "false"
        self._send(req, status, json.dumps({"error": error}).encode(), headers=extra)

    def _completion(self, reply: Reply) -> dict:
        return {
            "id": f"chatcmpl-test{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self._usage(reply),
        }

    def _usage(self, reply: Reply) -> dict:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }

    def _stream_text(self, req: BaseHTTPRequestHandler, body: dict, reply: Reply) -> None:
        chunked = reply.quirks.cut_mid_chunk  # HTTP/1.1 chunks, so one can be cut in half
        if chunked:
            req.wfile.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
        else:
            req.send_response(200)
            req.send_header("content-type", "text/event-stream; charset=utf-8")
            req.send_header("cache-control", "no-cache")
            req.end_headers()

        def write(data: bytes) -> None:
            req.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            req.wfile.flush()

        base = {
            "id": f"chatcmpl-test{len(self.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def choice(delta: dict, finish: str | None = None) -> dict:
            return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}

        quirks = reply.quirks
        text = reply.text + (f" ({len(self.requests)})" if quirks.vary else "")
        first = (
            {"role": "assistant"}
            if quirks.role_only_first
            else {"role": "assistant", "content": ""}
        )
        chunks = [base | {"choices": [choice(first)]}]
        if quirks.reasoning_field:
            chunks += [
                base | {"choices": [choice({"content": None, "reasoning_content": piece})]}
                for piece in split_text(quirks.reasoning_field, 3)
            ]
        pieces = split_text(f"<think>{quirks.think}</think>\n\n", 3) if quirks.think else []
        pieces += split_text(text, reply.pieces)
        for n, piece in enumerate(pieces):
            if quirks.cut_after is not None and n == quirks.cut_after:
                break
            chunks.append(base | {"choices": [choice({"content": piece})]})
            if quirks.null_deltas:
                chunks.append(base | {"choices": [choice({"content": None})]})
        cut = quirks.cut_after is not None and quirks.cut_after < len(pieces)
        if not cut:
            chunks.append(base | {"choices": [choice({}, quirks.finish)]})
            if include_usage and quirks.usage:
                chunks.append(base | {"choices": [], "usage": self._usage(reply)})
        for chunk in chunks:
            if include_usage and "usage" not in chunk:
                chunk = chunk | {"usage": None}
            write(f"data: {json.dumps(chunk)}\n\n".encode())
        if cut and quirks.cut_mid_chunk:
            event = f"data: {json.dumps(base | {'choices': [choice({'content': 'and'})]})}\n\n"
            # The chunk announces the whole event, and half of it arrives before the close.
            req.wfile.write(b"%x\r\n%s" % (len(event), event[: len(event) // 2].encode()))
            req.wfile.flush()
        if cut or not quirks.done:
            return  # the connection closes here: no finish reason, no [DONE]
        write(b"data: [DONE]\n\n")
        if chunked:
            req.wfile.write(b"0\r\n\r\n")
            req.wfile.flush()


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAI]:
    """A running scripted server; at teardown it stops, and every queued reply must be used."""
    server = ScriptedOpenAI().start()
    try:
        yield server
    finally:
        server.close()
    assert server.pending == 0, f"{server.pending} scripted repl(ies) were never requested"
