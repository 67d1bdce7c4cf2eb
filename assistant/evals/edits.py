"""Small edits that make a grounded sentence subtly wrong, and rewordings that don't.

These are the errors that model answers and SummEdits show: a changed number, a negation, an
opposite direction, another method's name, a hedge stated as fact, a clause the source never
says. Two places need them: the judge's training data (a supported sentence, edited, is a
hard negative against the same abstract) and the gate's test (a candidate prompt whose
answers keep their [n] markers but carry these edits must fail). Every edit is deterministic
for a given `random.Random`, and returns None where the sentence offers nothing to edit, so
callers can try the next kind.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Not the digits of a name (GPT-2, LLaMA-2-7B, A100) or a list label ("1.)"): changing those
# renames a model or breaks a list, not a quantity. Sizes with a unit (8B, 150m) are numbers.
NUMBER = re.compile(r"(?<![\w./-])(\d+(?:[.,]\d+)?)(?!\.\))(\s?(?:%|x|×|-fold|fold)?)")

# Word -> its opposite; both directions are added below. Only words whose swap reverses the
# finding, not its topic.
OPPOSITES = {
    "increase": "decrease",
    "increases": "decreases",
    "increased": "decreased",
    "increasing": "decreasing",
    "improves": "degrades",
    "improve": "degrade",
    "improved": "degraded",
    "improving": "degrading",
    "outperforms": "underperforms",
    "outperform": "underperform",
    "outperformed": "underperformed",
    "higher": "lower",
    "more": "fewer",
    "better": "worse",
    "faster": "slower",
    "larger": "smaller",
    "reduces": "raises",
    "reduce": "raise",
    "reduced": "raised",
    "gains": "losses",
    "positive": "negative",
    "best": "worst",
    "strong": "weak",
    "stronger": "weaker",
    "robust": "fragile",
    "efficient": "inefficient",
    "accurate": "inaccurate",
    "consistently": "rarely",
    "significantly": "barely",
    "easier": "harder",
    "superior": "inferior",
    "success": "failure",
}
OPPOSITES |= {v: k for k, v in list(OPPOSITES.items())}

AUXILIARY = re.compile(
    r"\b(is|are|was|were|can|could|may|might|will|would|should|has|have|does|do|did)\b(?! not\b)"
)
# Third-person verbs common in abstracts' findings, and their base form for "does not X".
VERBS = {
    "achieves": "achieve",
    "enables": "enable",
    "shows": "show",
    "improves": "improve",
    "outperforms": "outperform",
    "reduces": "reduce",
    "increases": "increase",
    "yields": "yield",
    "provides": "provide",
    "leads": "lead",
    "requires": "require",
    "generalizes": "generalize",
    "matches": "match",
    "surpasses": "surpass",
    "demonstrates": "demonstrate",
    "supports": "support",
    "allows": "allow",
    "helps": "help",
    "boosts": "boost",
    "preserves": "preserve",
}
HEDGES = (
    (r"\bmay\b", "will"),
    (r"\bmight\b", "will"),
    (r"\bcould\b", "will"),
    (r"\bcan\b", "always"),
    (r"\bsuggests?\b", "proves"),
    (r"\bsuggesting\b", "proving"),
    (r"\bindicates?\b", "proves"),
    (r"\bpotentially\b", "certainly"),
    (r"\blikely\b", "certainly"),
    (r"\bsome\b", "all"),
    (r"\boften\b", "always"),
    (r"\bpartially\b", "fully"),
    (r"\bcompetitive\b", "state-of-the-art"),
    (r"\bcomparable\b", "superior"),
    (r"\bup to\b", "at least"),
    (r"\bapproximately\b", "exactly"),
    (r"\btypically\b", "always"),
    (r"\bgenerally\b", "always"),
    (r"\bmostly\b", "entirely"),
    (r"\blargely\b", "entirely"),
    (r"\bmany\b", "all"),
)
CLAUSES = (
    "outperforming all prior methods by a wide margin",
    "while halving the training cost",
    "without any labelled data",
    "on every benchmark tested",
    "and the gains grow with model size",
    "at no loss of accuracy",
    "in a randomised controlled trial of 10,000 participants",
    "which the authors attribute to the larger training set",
    "across more than 40 languages",
    "and it does so in real time on a single CPU",
)
# Rewordings that keep the meaning: the gate must not fail a candidate for these.
SYNONYMS = (
    (r"\bpropose\b", "introduce"),
    (r"\bproposes\b", "introduces"),
    (r"\bWe propose\b", "The authors propose"),
    (r"\bwe show\b", "the authors show"),
    (r"\bshow that\b", "demonstrate that"),
    (r"\bapproach\b", "method"),
    (r"\bresults\b", "findings"),
    (r"\bsubstantially\b", "considerably"),
    (r"\bnovel\b", "new"),
    (r"\butilize\b", "use"),
    (r"\butilizes\b", "uses"),
    (r"\bIn this (?:paper|work),? we\b", "Here the authors"),
    (r"\b[Ww]e (present|introduce|find|study|propose|show)\b", r"the authors \1"),
    (r"\bdemonstrate\b", "show"),
    (r"\bmethods\b", "techniques"),
    (r"\bmultiple\b", "several"),
    (r"\bcrucial\b", "essential"),
    (r"\benables\b", "allows"),
    (r"\bto address\b", "to tackle"),
    (r"\btherefore\b", "thus"),
)
NAME = re.compile(r"\b(?:[A-Z][a-z]*[A-Z][\w-]*|[A-Z]{2,}[\w-]*)\b")


@dataclass(frozen=True)
class Edit:
    kind: str  # "number", "negation", "direction", "entity", "hedge", "clause", "reword"
    text: str


def scale_number(sentence: str, rng: random.Random) -> str | None:
    """One number multiplied or divided by 10, or shifted by a few units: 3x -> 30x,
    85.2% -> 58.2%-like changes are what a misreading model does."""
    found = [m for m in NUMBER.finditer(sentence) if not _is_year(m.group(1))]
    if not found:
        return None
    match = rng.choice(found)
    value = match.group(1).replace(",", "")
    decimals = len(value.split(".")[1]) if "." in value else 0
    number = float(value)
    choices = [number * 10, number + rng.choice((1, 2, 3, 5)) * (10**-decimals or 1)]
    if number >= 2:
        choices.append(number / 2 if decimals else float(int(number) // 2))
    new = rng.choice(choices)
    text = f"{new:.{decimals}f}" if decimals else str(round(new))
    if text == value:
        return None
    return sentence[: match.start(1)] + text + sentence[match.end(1) :]


def _is_year(value: str) -> bool:
    return value.isdigit() and len(value) == 4 and 1900 <= int(value) <= 2100


def negate(sentence: str, rng: random.Random) -> str | None:
    """The claim turned around: 'is' -> 'is not', 'improves' -> 'does not improve'."""
    aux = list(AUXILIARY.finditer(sentence))
    if aux:
        match = rng.choice(aux)
        return sentence[: match.end()] + " not" + sentence[match.end() :]
    for verb, base in VERBS.items():
        match = re.search(rf"\b{verb}\b", sentence)
        if match:
            return sentence[: match.start()] + f"does not {base}" + sentence[match.end() :]
    return None


def flip_direction(sentence: str, rng: random.Random) -> str | None:
    """One direction word swapped for its opposite (increases -> decreases)."""
    found = [m for m in re.finditer(r"\b[a-z]+\b", sentence) if m.group(0) in OPPOSITES]
    if not found:
        return None
    match = rng.choice(found)
    return sentence[: match.start()] + OPPOSITES[match.group(0)] + sentence[match.end() :]


def swap_entity(sentence: str, rng: random.Random, names: Sequence[str] = ()) -> str | None:
    """A method, model or dataset name replaced by another from the same corpus."""
    found = [m for m in NAME.finditer(sentence) if len(m.group(0)) > 1]
    present = {spelling(m.group(0)) for m in found}
    others = [n for n in names if n not in sentence and spelling(n) not in present]
    if not found or not others:
        return None
    match = rng.choice(found)
    return sentence[: match.start()] + rng.choice(others) + sentence[match.end() :]


def spelling(name: str) -> str:
    """GPT2, GPT-2 and gpt-2 are one name: swapping one for another changes nothing."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def overstate(sentence: str, rng: random.Random) -> str | None:
    """A hedge stated as fact: "may improve" -> "will improve", "suggests" -> "proves"."""
    found = [(p, r) for p, r in HEDGES if re.search(p, sentence)]
    if not found:
        return None
    pattern, replacement = rng.choice(found)
    return re.sub(pattern, replacement, sentence, count=1)


def add_clause(sentence: str, rng: random.Random) -> str | None:
    """A clause the source never says, joined before the final full stop."""
    body = sentence.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else ""
    body = body[:-1] if end else body
    if not body:
        return None
    return f"{body}, {rng.choice(CLAUSES)}{end or '.'}"


def reword(sentence: str, rng: random.Random) -> str | None:
    """A harmless rewording: synonyms that keep every fact."""
    found = [(p, r) for p, r in SYNONYMS if re.search(p, sentence)]
    if not found:
        return None
    pattern, replacement = rng.choice(found)
    text = re.sub(pattern, replacement, sentence, count=1)
    return text[0].upper() + text[1:]  # "We show" -> "the authors show" opens a sentence


EDITS: dict[str, Callable[..., str | None]] = {
    "number": scale_number,
    "negation": negate,
    "direction": flip_direction,
    "entity": swap_entity,
    "hedge": overstate,
    "clause": add_clause,
}


def corrupt(
    sentence: str, rng: random.Random, names: Sequence[str] = (), kinds: Sequence[str] = ()
) -> Edit | None:
    """One edit that changes what the sentence claims, of a kind drawn from `kinds` (all by
    default) among those the sentence allows; None if it allows none."""
    order = list(kinds or EDITS)
    rng.shuffle(order)
    for kind in order:
        edit = EDITS[kind]
        text = edit(sentence, rng, names) if kind == "entity" else edit(sentence, rng)
        if text and text != sentence:
            return Edit(kind, text)
    return None


def names_in(texts: Sequence[str]) -> list[str]:
    """Method, model and dataset names (CamelCase or acronyms) found in `texts`, sorted, for
    `swap_entity`."""
    return sorted({m.group(0) for t in texts for m in NAME.finditer(t) if len(m.group(0)) > 2})
