"""A disk cache of JSON values: model replies and judge verdicts, for the eval harness.

An eval is only useful before a prompt change if re-running it is free and gives the same
numbers, so what a model or a judge said is stored under a hash of everything that decided
it. One JSON file per entry, written aside and renamed into place: a crash or Ctrl-C never
leaves half an entry, and two processes writing the same key just write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


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
