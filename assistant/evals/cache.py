"""Disk caches for the eval harness: model replies and judge verdicts.

An eval is only useful before a prompt change if re-running it is free and gives the same
numbers. So every chat call the harness makes goes through `CachedOpenAIBackend`, keyed by
everything that determines the reply (server, model, messages, temperature); a hit replays
the recorded text and usage without touching the network. Judge verdicts are cached per
item, keyed by the judge's description and the item's whole list of pairs: a judge may batch
(the local one's scores move in the fourth decimal with batch size), so an item is always
judged as one batch and a cold and a warm run agree exactly.

One JSON file per entry, written aside and renamed into place: a crash or Ctrl-C never
leaves half an entry, and two processes writing the same key just write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..llm import Generation, OpenAIBackend
from ..settings import Settings
from ..types import Usage


def stable_hash(value: Any) -> str:
    """SHA-256 of a canonical JSON rendering: equal values hash equal across runs."""
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class DiskCache:
    """Key -> JSON value, one file per key under `directory/namespace/`."""

    def __init__(self, directory: Path, namespace: str) -> None:
        self.directory = Path(directory) / namespace
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        path = self._path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def public_url(url: str | None) -> str | None:
    """The server address without user:password or query (some servers take a key there)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class CachedOpenAIBackend(OpenAIBackend):
    """The OpenAI backend with every chat call (answer and condense) going through a disk cache.

    `OpenAIBackend.stream` is the one place both calls reach the model, so overriding it
    caches both without touching llm.py. A miss streams from the server as usual and is
    stored only once the stream completed without error; a hit replays the same text in one
    delta with the usage recorded the first time (the tokens the answer cost to produce).
    """

    def __init__(self, settings: Settings, cache: DiskCache, client: Any = None) -> None:
        super().__init__(settings, client)
        self.cache = cache
        self.calls = 0  # requests that actually went to the server

    def cache_key(self, messages: list[dict[str, str]]) -> str:
        return stable_hash(
            {
                "base_url": public_url(self.settings.openai_base_url),
                "model": self.model,
                "messages": messages,
                "temperature": self.settings.temperature,
                "stream_options": {"include_usage": True},
            }
        )

    def stream(self, messages: list[dict[str, str]]) -> Generation:
        key = self.cache_key(messages)
        hit = self.cache.get(key)
        if hit is not None:
            return Generation(iter([hit["text"]]), usage=Usage(**hit["usage"]))
        self.calls += 1
        inner = super().stream(messages)

        def recorded() -> Iterator[str]:
            parts: list[str] = []
            for delta in inner.deltas:
                parts.append(delta)
                yield delta
            self.cache.put(key, {"text": "".join(parts), "usage": inner.usage.to_json()})

        return Generation(recorded(), usage=inner.usage)
