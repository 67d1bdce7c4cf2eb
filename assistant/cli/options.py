"""What several commands share: argument types, the --index option, reading queries, and
output that is safe for a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..components import Components
    from ..index import PaperIndex

INCOMPLETE_WARNING = (
    "warning: the last ingest into this index was cut short; some papers may be missing "
    "(run `python -m assistant ingest` to finish it)"
)


def add_index_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index", type=Path, metavar="DIR", help="index directory (default: .assistant/index)"
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def iso_date(text: str) -> str:
    """Dates compare as ISO strings, so '2024-3-1' must become '2024-03-01' or be refused."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-03-01") from None


def opened_index(components: Components) -> PaperIndex:
    """The index, with a warning on stderr when the last ingest into it was cut short."""
    index = components.index
    if not index.complete:
        print(INCOMPLETE_WARNING, file=sys.stderr)
    return index


def queries(query: str | None, prompt: str) -> Iterator[str]:
    """The query given, or one per stdin line with '-', or typed at a prompt when None."""
    if query == "-" or (query is None and not sys.stdin.isatty()):
        yield from (line.strip() for line in sys.stdin if line.strip())
    elif query is not None:
        yield query
    else:
        while True:
            try:
                line = input(prompt).strip()
            except EOFError:
                return
            if not line:
                return
            yield line


def terminal_safe(text: str) -> str:
    """A model can be talked into emitting escape sequences; a terminal would obey them."""
    from ..corpus import strip_control

    return strip_control(text)


def announce_retries() -> None:
    """Say on stderr when the openai client retries a request: with the defaults a silent
    model server costs three timeouts, and a user staring at nothing deserves to know."""
    import logging

    class RetryNotice(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if str(record.msg).startswith("Retrying request") and len(record.args or ()) == 3:
                _, n, total = record.args  # type: ignore[misc]
                print(
                    f"… no answer from the model server yet; retry {n} of {total}",
                    file=sys.stderr,
                    flush=True,
                )

    logger = logging.getLogger("openai._base_client")
    if not any(isinstance(h, RetryNotice) for h in logger.handlers):
        logger.addHandler(RetryNotice())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # its other INFO lines are not for the user
