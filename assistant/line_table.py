"""JSON Lines files read one row at a time, by byte offset, instead of parsed whole.

The snapshot's paper table and chunk texts grow with the corpus, and a one-shot search
needs ten of them: parsing all of them at every start cost a cold command time in
proportion to the corpus. Rows are read with `os.pread` on a descriptor opened when the
table is, so a reader keeps the generation it opened even after a newer cache is swapped
in under the same name, and threads (the app's) can read at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")


def write_lines(path: Path, rows: Iterable[Any]) -> None:
    """One JSON value per line, and beside it (`.offsets.npy`) where each line starts and the
    last one ends."""
    offsets = [0]
    with path.open("wb") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
            offsets.append(f.tell())
    np.save(offsets_path(path), np.asarray(offsets, dtype=np.int64))


def offsets_path(path: Path) -> Path:
    return path.with_name(path.name + ".offsets.npy")


class LineTable(Sequence[Any]):
    """The rows of a file `write_lines` wrote, parsed when asked for."""

    def __init__(self, path: Path) -> None:
        self.offsets = np.load(offsets_path(path))
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if not 0 <= i < len(self):
            raise IndexError(i)
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return json.loads(os.pread(self._fd, end - start, start))

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


class KeyedRows(Mapping[str, T], Generic[T]):
    """Rows by key (a paper id, a chunk id), each parsed on first use and kept."""

    def __init__(
        self, row_of: Mapping[str, int], rows: Sequence[Any], make: Callable[[Any], T]
    ) -> None:
        self._row_of = row_of
        self._rows = rows
        self._make = make
        self._made: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        if key not in self._made:
            self._made[key] = self._make(self._rows[self._row_of[key]])
        return self._made[key]

    def __contains__(self, key: object) -> bool:
        return key in self._row_of

    def __iter__(self) -> Iterator[str]:
        return iter(self._row_of)

    def __len__(self) -> int:
        return len(self._row_of)
