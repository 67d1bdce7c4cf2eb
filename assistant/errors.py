"""Errors that reach the user. Each one carries a hint saying what to do."""

from __future__ import annotations

from dataclasses import dataclass


class AssistantError(Exception):
    """An error the CLI prints as one line (plus a hint) instead of a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class IndexMissingError(AssistantError):
    pass


class ModelMismatchError(AssistantError):
    pass


class QuestionError(AssistantError):
    """A question that can't be asked as it is (too long, say); the conversation goes on."""


class TopicError(AssistantError):
    """The topic can't be summarised: empty, a paste rather than a topic, or not in the corpus."""


@dataclass(frozen=True)
class Problem:
    """One bad record or file: where it is and what is wrong with it."""

    file: str
    line: int | None
    field: str
    message: str
    kept: bool = False  # the record was kept as repaired (a truncated abstract), not skipped

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class CorpusError(AssistantError):
    """Raised under --strict when any input problem was found; nothing was written."""

    def __init__(self, problems: list[Problem], listed: bool = False) -> None:
        """`listed`: the caller has shown every problem already; this says only how many."""
        lines = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        detail = "" if listed else f":\n{lines}{more}"
        super().__init__(
            f"{len(problems)} problem(s) in the input (above); the index was not changed"
            if listed
            else f"{len(problems)} problem(s) in the input; the index was not changed{detail}",
            "fix the files above, or drop --strict to ingest the good records and skip the bad",
        )
        self.problems = problems
