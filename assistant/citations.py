"""Citation markers: parse them, drop the ones that point nowhere, report uncited sentences.

This runs on every answer, whatever produced it, so an invented citation never
reaches the user and an unsupported sentence never passes unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# [1]  [1, 3]  [1-3]  [1–3]  [1,2-4]; adjacent groups like [1][2] are separate matches.
MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–|—)\s*\d+)*)\s*\]")
MAX_RANGE = 50  # "[1-1000]" is not a citation anyone meant
# Sentence ends: ., ! or ? (optionally followed by markers) then space and an uppercase start.
SENTENCE_END = re.compile(r"(?<=[.!?])((?:\s*\[[^\]]*\])*)\s+(?=[\"'(\[]?[A-Z0-9])")


def parse_marker(inner: str) -> list[int]:
    """'1, 3' -> [1, 3]; '1-3' -> [1, 2, 3]. Order kept, duplicates dropped."""
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", inner.strip()):
        bounds = re.split(r"\s*[-–—]\s*", part)
        if len(bounds) == 2:
            low, high = int(bounds[0]), int(bounds[1])
            span = range(low, high + 1) if 0 <= high - low < MAX_RANGE else [low, high]
            numbers += span
        else:
            numbers.append(int(bounds[0]))
    return list(dict.fromkeys(numbers))


def markers_in(text: str) -> list[int]:
    return [n for m in MARKER.finditer(text) for n in parse_marker(m.group(1))]


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing markers attached; list items and lines stay separate."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        pieces = SENTENCE_END.split(line)
        # split() interleaves the captured markers; glue each back onto its sentence.
        current = pieces[0]
        for i in range(1, len(pieces), 2):
            current += pieces[i]
            sentences.append(current.strip())
            current = pieces[i + 1]
        sentences.append(current.strip())
    return merge_abbreviations([s for s in sentences if s])


ABBREVIATION = re.compile(r"\b(e\.g|i\.e|et al|etc|vs|cf|fig|eq|approx|no)\.$", re.IGNORECASE)


def merge_abbreviations(pieces: list[str]) -> list[str]:
    """'E.g.' and 'et al.' end no sentence: glue what follows back on."""
    merged: list[str] = []
    for piece in pieces:
        if merged and ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def is_claim(sentence: str) -> bool:
    """Headings, list labels and one-word lines make no claim that needs a citation."""
    bare = MARKER.sub("", sentence).strip(" -*#>:").strip()
    return len(bare.split()) >= 4 and not sentence.lstrip().startswith("#")


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


def neutralize_markers(text: str) -> str:
    """An abstract's own reference '[1]' must not pass for one of our citations."""
    return MARKER.sub(lambda m: f"(ref. {m.group(1)})", text)


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
