"""Citation markers: parse them, drop the ones that point nowhere, report uncited sentences.

This runs on every answer, whatever produced it, so an invented citation never
reaches the user and an unsupported sentence never passes unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .text import MARKER, is_claim, markers_in, parse_marker, split_sentences


@dataclass
class CitationCheck:
    text: str  # the answer as shown: invalid markers removed
    invalid_markers: list[int] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)  # valid numbers, in order of first use
    claims: int = 0  # sentences that make a claim and so need a citation

    def to_json(self) -> dict:
        return {
            "invalid_markers": self.invalid_markers,
            "uncited_sentences": self.uncited_sentences,
        }


def remove_invalid_markers(text: str, valid: set[int]) -> tuple[str, list[int]]:
    """'[2, 9]' -> '[2]' when 9 is no source, and 'claim [9].' -> 'claim.'.

    Returns the text and the numbers removed. The stream and the final answer
    both go through here, so what the user watched is what the answer says.
    """
    invalid: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = parse_marker(match.group(2))
        invalid.extend(n for n in numbers if n not in valid)
        kept = "".join(f"[{n}]" for n in numbers if n in valid)
        return match.group(1) + kept if kept else ""

    return SPACED_MARKER.sub(keep_valid, text), invalid


SPACED_MARKER = re.compile(r"([ \t]*)" + MARKER.pattern)


def filter_stream(deltas: Iterable[str], valid: set[int]) -> Iterator[str]:
    """Invalid markers never reach the screen: a half-written '[…' waits for its ']'."""
    held = ""
    for delta in deltas:
        held += delta
        cut = held.rfind("[")
        if cut != -1 and "]" not in held[cut:] and len(held) - cut < 32:
            cut = len(held[:cut].rstrip(" \t"))  # hold the space too: it may go with the marker
            ready, held = held[:cut], held[cut:]
        else:
            ready, held = held, ""
        if ready:
            yield remove_invalid_markers(ready, valid)[0]
    if held:
        yield remove_invalid_markers(held, valid)[0]


def check_citations(text: str, valid: set[int], exempt: tuple[str, ...] = ()) -> CitationCheck:
    """Remove markers outside `valid`; list uncited claim sentences (except `exempt` ones)."""
    cleaned, invalid = remove_invalid_markers(text, valid)
    claims = [s for s in split_sentences(cleaned) if is_claim(s) and not s.startswith(exempt)]
    uncited = [s for s in claims if not MARKER.search(s)]
    return CitationCheck(
        text=cleaned,
        invalid_markers=list(dict.fromkeys(invalid)),
        uncited_sentences=uncited,
        cited=list(dict.fromkeys(markers_in(cleaned))),
        claims=len(claims),
    )
