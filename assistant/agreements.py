"""Where two papers agree or disagree, decided by the grounding judge, not by cue words.

"Compared with", "outperforms" and "trade-off" in one abstract say nothing about another
paper, so a brief that lists such sentences under "agreements" lists neither. Here a pair
of papers is listed only when a claim of one and a claim of the other are about the same
measured quantity (speedup, memory, accuracy, …) and the same subject, and the judge
reads one as evidence for the other. A disagreement is stricter still: the judge finds
no support either way, and the two claims move the same quantity in opposite directions,
or give different numbers in the same unit for the same named method. To stay cheap, only
pairs sharing those terms are judged, in one `judge_many` batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .brief_sentences import GENERIC_NAMES
from .text import english_stemmer, english_stop_words

if TYPE_CHECKING:
    from .grounding import Judge
    from .types import Source

MOST_PAIRS = 8  # candidate claim pairs judged, each both ways: 16 verdicts at most
SHARED_SUBJECT = 2  # stems besides the quantity that both claims must use

QUANTITY = re.compile(
    r"\b(speed-?ups?|latency|throughput|memory|accuracy|perplexity|cost|compression ratio|"
    r"compression|cache size|error rate|word error rate|wer|bleu|rouge|f1|recall|precision|"
    r"acceptance rate|bandwidth|communication|flops|compute|energy|parameters|training time|"
    r"inference time|decoding steps|tokens per second|robustness|calibration|hallucinations?|"
    r"win rate|pass@1|exact match|generation quality|quality|speed)\b",
    re.IGNORECASE,
)
UP = re.compile(
    r"\b(?:increas\w*|higher|more|greater|improv\w*|boost\w*|rais\w*|gains?|better|"
    r"outperform\w*|enhanc\w*|accelerat\w*|faster|worse\w*|degrad\w*|grows?)\b",
    re.IGNORECASE,
)
DOWN = re.compile(
    r"\b(?:decreas\w*|lower|less|fewer|reduc\w*|cut\w*|drops?|declin\w*|slower|shrink\w*|"
    r"sav\w*|diminish\w*|hurts?)\b",
    re.IGNORECASE,
)
UNIT_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(%|x\b|×|times\b)")
NAME = re.compile(r"\b(?:[A-Z][\w-]*[A-Z0-9][\w-]*|[A-Z][a-z]+[A-Z][\w-]*)\b")
GENERIC = frozenset({
    "method", "approach", "model", "models", "result", "results", "paper", "propos", "show",
    "achiev", "improv", "reduc", "significantli", "perform", "comparison", "compar", "baselin",
    "state", "art", "llm", "llms", "larg", "languag", "",
})  # fmt: skip


@dataclass
class Claim:
    source: Source
    name: str | None  # the paper's method name, for the line
    text: str  # as the brief would quote it (cleaned, third person)


@dataclass
class Relation:
    kind: str  # "agree" | "disagree"
    quantity: str
    first: Claim
    second: Claim
    score: float  # the judge's best score over the two directions

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "quantity": self.quantity,
            "markers": [self.first.source.marker, self.second.source.marker],
            "claims": [self.first.text, self.second.text],
            "score": round(self.score, 3),
        }


def find_relations(claims: list[Claim], judge: Judge) -> list[Relation]:
    """Judge the candidate pairs in one batch and keep what the verdicts bear out."""
    candidates = candidate_pairs(claims)
    if not candidates:
        return []
    batch = [(b.text, a.text) for a, b, _ in candidates] + [
        (a.text, b.text) for a, b, _ in candidates
    ]
    verdicts = judge.judge_many(batch)
    forward, backward = verdicts[: len(candidates)], verdicts[len(candidates) :]
    found: list[Relation] = []
    taken: set[tuple[int, int]] = set()
    for (a, b, quantity), one, other in zip(candidates, forward, backward, strict=True):
        pair = (a.source.marker, b.source.marker)
        if pair in taken:
            continue  # one line per pair of papers
        score = max(one.score, other.score)
        conflict = conflicts(a.text, b.text, quantity)
        if (one.supported or other.supported) and not conflict:
            found.append(Relation("agree", quantity, a, b, score))
        elif not (one.supported or other.supported) and conflict:
            found.append(Relation("disagree", quantity, a, b, score))
        else:
            continue
        taken.add(pair)
    return found


def candidate_pairs(claims: list[Claim]) -> list[tuple[Claim, Claim, str]]:
    """Claims of two different papers on one quantity and one subject, most shared first."""
    described = [(c, quantities_in(c.text), subject_stems(c.text)) for c in claims]
    scored = []
    for i, (a, qa, sa) in enumerate(described):
        for b, qb, sb in described[i + 1 :]:
            if a.source.marker == b.source.marker:
                continue
            shared = sorted(qa & qb)
            subject = sa & sb
            if shared and len(subject) >= SHARED_SUBJECT:
                scored.append((-len(subject), a.source.marker, b.source.marker, a, b, shared[0]))
    scored.sort(key=lambda s: s[:3])
    return [(a, b, quantity) for *_, a, b, quantity in scored[:MOST_PAIRS]]


def quantities_in(text: str) -> set[str]:
    return {re.sub(r"speed-?ups?", "speedup", q.lower()) for q in QUANTITY.findall(text)}


def subject_stems(text: str) -> set[str]:
    stem = english_stemmer().stemWord
    stop = english_stop_words()
    words = re.findall(r"[a-z][a-z0-9-]+", QUANTITY.sub(" ", text.lower()))
    return {stem(w) for w in words if w not in stop and len(w) > 2} - GENERIC


def direction(text: str, quantity: str) -> int:
    """+1 if the text says the quantity goes up, -1 down, 0 if it doesn't say or says both:
    the words within a few of the quantity's mention decide, and "not" flips them."""
    for match in re.finditer(re.escape(quantity).replace("speedup", "speed-?ups?"), text, re.I):
        window = text[max(0, match.start() - 60) : match.end() + 40]
        sign = int(bool(UP.search(window))) - int(bool(DOWN.search(window)))
        if sign:
            return -sign if re.search(r"\b(?:not|never|cannot)\b|n't\b", window) else sign
    return 0


def conflicts(first: str, second: str, quantity: str) -> bool:
    """Both claims are about a method they both name (not just the same kind of quantity:
    two papers' own speedups differ without contradicting each other), and they move the
    quantity in opposite directions or give it different numbers in the same unit."""
    named = (set(NAME.findall(first)) & set(NAME.findall(second))) - GENERIC_NAMES
    if not named:
        return False
    a, b = direction(first, quantity), direction(second, quantity)
    if a and b and a != b:
        return True
    units_a = {(u.lower(), n) for n, u in UNIT_NUMBER.findall(first)}
    units_b = {(u.lower(), n) for n, u in UNIT_NUMBER.findall(second)}
    same_unit = {u for u, _ in units_a} & {u for u, _ in units_b}
    return bool(same_unit) and not (units_a & units_b)


def fragment(text: str, quantity: str, most: int = 22) -> str:
    """The clause of a claim that mentions the quantity, for quoting in one line."""
    clauses = re.split(r"(?<=[,;])\s+|\s+(?=while\b|whereas\b)", text.rstrip(" ."))
    pattern = re.compile(re.escape(quantity).replace("speedup", "speed-?ups?"), re.I)
    clause = next((c for c in clauses if pattern.search(c)), text).strip(" ,;")
    words = clause.split()
    return clause if len(words) <= most else " ".join(words[:most]) + " …"
