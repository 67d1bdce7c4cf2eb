"""Writing a brief from its themed papers offline, and the sections both writers share.

Offline the brief is made of the abstracts' own sentences: per paper, what it proposes
and what it reports, each cleaned to stand alone (brief_sentences.py) and cited, one
bullet per paper under its theme. Whoever wrote the overview and themes (this module,
or a model in brief_llm.py), the agreements and open questions are read off the
abstracts here: a pair of papers only when the grounding judge confirms it, a question
only when an abstract states a limitation. summarize.py then runs the citation check
and adds the evidence table, references and coverage line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .agreements import Claim, Relation, find_relations, fragment
from .brief_sentences import (
    BACKGROUND,
    STRONG_PROPOSAL,
    SUBJECT,
    brief_sentences,
    clean_sentence,
    is_limitation,
    is_method,
    is_result,
    name_of,
    normalized,
    quantities,
)
from .extractive import cite
from .text import literal, terms
from .themes import Theme, join_words
from .types import Hit, Source

if TYPE_CHECKING:
    from .grounding import Judge

__all__ = ["literal"]  # re-exported: the reference list and tests escape titles with it

EXTRACTIVE_NOTE = (
    "_Extractive brief: sentences chosen from the abstracts; no language model wrote it._"
)
NO_RELATIONS = (
    "No two papers make claims on the same quantity that the grounding judge finds "
    "support or contradict each other."
)
NOT_JUDGED = "Not checked: no grounding judge was available to compare the papers' claims."
# The offline overview's one line ("9 papers in the index address …; they fall into 2
# themes: …"): a count of papers per theme, which no abstract states, so no judge checks it.
TALLY = re.compile(r"^\d+ papers? in the index address ")
# Lines of a brief that claim nothing of a paper: the citation check and the eval skip them.
EXEMPT = (EXTRACTIVE_NOTE, NO_RELATIONS, NOT_JUDGED, "#", "|")
Progress = Callable[[str], None]
MOST_OPEN = 5
CLAIMS_PER_PAPER = 2
# A sentence opening with a bare pronoun leans on the one before: quoted last, if at all.
LEANING = ("This ", "These ", "It ", "They ", "Such ", "That ", "Those ")


def left(hit: Hit | Source, reason: str) -> dict[str, str]:
    """An entry of the brief's left-out list: the paper, and why the brief doesn't cite it."""
    return {"paper_id": hit.paper.paper_id, "title": hit.paper.title, "reason": reason}


@dataclass
class Quoted:
    """One paper as the brief quotes it: its sentences, their closeness to the topic, and
    which of them say what it proposes and what it reports."""

    source: Source
    name: str | None
    sentences: tuple[str, ...]
    scores: np.ndarray
    method: int | None
    result: int | None

    def clean(self, i: int) -> str:
        return clean_sentence(self.sentences[i], self.name)

    def cited(self, i: int) -> str:
        return cite(literal(self.clean(i)), self.source.marker)


def read_papers(topic: str, relevant: list[Source]) -> list[Quoted]:
    """Each paper's sentences scored by the share of the topic's terms they use, with its
    method and result sentences chosen.

    Lexical, not the embedder: the candidates are already narrowed by role ("we propose",
    a number), so closeness to the topic only breaks ties, and embedding every sentence of
    25 abstracts costs seconds on two cores where counting words costs milliseconds.
    """
    wanted = terms(topic)
    quoted = []
    for source in relevant:
        sentences = brief_sentences(source.paper.abstract)
        scores = np.array(
            [len(wanted & terms(s)) / max(len(wanted), 1) for s in sentences], dtype=np.float32
        )
        name = name_of(source.paper)
        method = pick_method(sentences, scores, name)
        result = pick_result(sentences, scores, method)
        quoted.append(Quoted(source, name, sentences, scores, method, result))
    return quoted


def pick_method(sentences: tuple[str, ...], scores: np.ndarray, name: str | None) -> int | None:
    """ "We propose …" (closest to the topic first), else the sentence that names the method
    ("a technique named X"), else "we/this paper <verb>", else the closest sentence that is
    not the opening background."""
    if not sentences:
        return None
    naming = (
        re.compile(rf"\b(?:named|called|dubbed|termed)\s+{re.escape(name)}\b") if name else None
    )
    tests: list[Callable[[str], bool]] = [
        lambda s: is_method(s) and STRONG_PROPOSAL.search(s) is not None,
        lambda s: naming is not None and naming.search(s) is not None,
        is_method,
        lambda s: SUBJECT.match(s) is not None,
    ]
    for test in tests:
        found = [i for i, s in enumerate(sentences) if test(s) and not s.startswith(LEANING)]
        if found:
            return max(found, key=lambda i: float(scores[i]))
    rest = [i for i in range(1, len(sentences)) if not BACKGROUND.match(sentences[i])]
    return max(rest or [0], key=lambda i: float(scores[i]))


def pick_result(sentences: tuple[str, ...], scores: np.ndarray, method: int | None) -> int | None:
    """The finding closest to the topic, one with numbers first; never the method sentence
    or the opening background."""
    found = [
        i
        for i, s in enumerate(sentences)
        if i not in (method, 0) and is_result(s) and not is_limitation(s)
    ]
    if not found:
        return None
    return max(
        found,
        key=lambda i: (
            method is None or i > method,  # background comes before the contribution
            not sentences[i].startswith(LEANING),
            quantities(sentences[i]) > 0,
            float(scores[i]),
        ),
    )


# --- the offline overview and themes --------------------------------------------------------


def write_extractively(
    topic: str, quoted: list[Quoted], themes: list[Theme]
) -> tuple[str, set[str]]:
    """Overview and themes from the abstracts' sentences; returns the text and the
    sentences used (normalised), so no later section repeats one."""
    by_id = {q.source.paper.paper_id: q for q in quoted}
    seen: set[str] = set()
    lines = [f"# Brief: {literal(topic)}", "", EXTRACTIVE_NOTE, "", "## Overview", ""]
    lines.append(overview(topic, [q.source for q in quoted], themes, by_id))
    lines += ["", "## Themes"]
    for theme in themes:
        lines += ["", f"### {literal(capitalized(theme.name))}", ""]
        for paper_id in theme.paper_ids:
            paper = by_id[paper_id]
            picked = [i for i in (paper.method, paper.result) if i is not None]
            said = []
            for i in picked:
                key = normalized(paper.clean(i))
                if key not in seen:
                    seen.add(key)
                    said.append(paper.cited(i))
            if said:
                lines.append("- " + " ".join(said))
    return "\n".join(lines), seen


def overview(topic: str, sources: list[Source], themes: list[Theme], by_id: dict) -> str:
    if len(themes) == 1:
        return (
            f"{len(sources)} paper{'s' if len(sources) != 1 else ''} in the index address "
            f"{literal(topic)} {group_markers([s.marker for s in sources])}."
        )
    parts = [
        f"{literal(t.name)} " + group_markers([by_id[p].source.marker for p in t.paper_ids])
        for t in themes
    ]
    return (
        f"{len(sources)} papers in the index address {literal(topic)}; they fall into "
        f"{len(themes)} themes: {join_words(parts)}."
    )


# --- what both writers share: agreements and open questions --------------------------------


def evidence_sections(
    quoted: list[Quoted], judge: Judge | None, seen: set[str]
) -> tuple[str, list[Relation]]:
    """The agreements section (always: a pair the judge confirms, or one line saying there
    is none) and the open questions section (only when an abstract states one)."""
    relations = find_relations(claims_of(quoted), judge) if judge is not None else []
    lines = ["## Agreements and disagreements", ""]
    if judge is None:
        lines.append(NOT_JUDGED)
    else:
        lines += [relation_line(r) for r in relations] or [NO_RELATIONS]
    gaps = open_questions(quoted, seen)
    if gaps:
        lines += ["", "## Open questions", "", *gaps]
    return "\n".join(lines), relations


def claims_of(quoted: list[Quoted]) -> list[Claim]:
    """Per paper, its findings closest to the topic, as the brief would quote them."""
    claims = []
    for paper in quoted:
        findings = [
            i
            for i, s in enumerate(paper.sentences)
            if i and is_result(s) and not is_method(s) and not is_limitation(s)
        ]
        findings.sort(key=lambda i: (i != paper.result, -float(paper.scores[i])))
        claims += [Claim(paper.source, paper.name, paper.clean(i)) for i in findings]
    per_paper: dict[int, int] = {}
    kept = []
    for claim in claims:
        per_paper[claim.source.marker] = per_paper.get(claim.source.marker, 0) + 1
        if per_paper[claim.source.marker] <= CLAIMS_PER_PAPER:
            kept.append(claim)
    return kept


def relation_line(relation: Relation) -> str:
    a, b = relation.first, relation.second
    verb = "Agree" if relation.kind == "agree" else "Disagree"
    return (
        f"- **{verb}** on {relation.quantity}: "
        f"“{literal(fragment(a.text, relation.quantity))}” [{a.source.marker}]; "
        f"“{literal(fragment(b.text, relation.quantity))}” [{b.source.marker}]."
    )


def open_questions(quoted: list[Quoted], seen: set[str]) -> list[str]:
    """Sentences stating a limitation, a failure or future work, after the paper has said
    what it does (before that, "X remains a bottleneck" is the problem it solves)."""
    found = []
    for paper in quoted:
        start = (paper.method or 0) + 1
        options = [
            i
            for i in range(start, len(paper.sentences))
            if is_limitation(paper.sentences[i]) and normalized(paper.clean(i)) not in seen
        ]
        if options:
            best = max(options, key=lambda i: float(paper.scores[i]))
            found.append((float(paper.scores[best]), paper, best))
    found.sort(key=lambda f: -f[0])
    lines = []
    for _, paper, i in found[:MOST_OPEN]:
        seen.add(normalized(paper.clean(i)))
        lines.append(f"- {paper.cited(i)}")
    return lines


def capitalized(name: str) -> str:
    return name[:1].upper() + name[1:]


def group_markers(markers: list[int]) -> str:
    return "[" + ", ".join(str(m) for m in sorted(markers)) + "]"
