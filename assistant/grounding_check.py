"""Is each sentence of an answer supported by the papers it cites? The one check for that.

The chat page flags the sentences this finds unsupported and highlights the evidence it
names; the eval harness turns the same verdicts into citation recall, citation precision
and faithfulness. Both call `check_grounding`, so a sentence the app shows as supported is
a sentence the eval counts as supported.

The rules are ALCE's (Gao et al., 2023): a sentence is supported when its citations, read
together, support it; a citation is imprecise when it alone does not support the sentence
and the others already do, or when the citations together don't support it at all. A
sentence its own citations don't support is faithful only if the union of everything the
answer cites supports it; "the sources don't say" is a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .text import (
    abstract_sentences,
    claim_text,
    is_claim,
    markers_in,
    neutralize_markers,
    split_sentences,
    terms,
)

if TYPE_CHECKING:
    from .answer import Answer
    from .grounding import Judge, Verdict
    from .types import Paper

Pair = tuple[str, str]  # (claim, evidence)
JudgePairs = Callable[[list[Pair]], dict[Pair, "Verdict"]]


# --- ALCE, for one sentence ----------------------------------------------------------------


@dataclass(frozen=True)
class SentenceCitations:
    """ALCE citation recall and precision for one sentence."""

    recall: int  # 1 when the sentence has citations and they, together, support it
    precise: frozenset[int]  # its citations that count as precise
    imprecise: frozenset[int]


def alce_sentence(
    markers: Collection[int], supports: Callable[[frozenset[int]], bool]
) -> SentenceCitations:
    """Citation recall and precision of one sentence, as ALCE (Gao et al., 2023) defines them.

    `supports(S)` says whether the sources S, read together, support the sentence. Recall is
    1 when the sentence has citations and all of them together support it. A citation c is
    imprecise when (a) it alone does not support the sentence and the other citations already
    do (it adds nothing), or (b) the citations together don't support the sentence at all (then
    every one of them is imprecise). A single citation is therefore precise exactly when it
    supports the sentence. An uncited sentence has recall 0 and no citations to be precise.
    """
    cited = frozenset(markers)
    if not cited or not supports(cited):
        return SentenceCitations(0, frozenset(), cited)
    imprecise = frozenset(
        c
        for c in cited
        if len(cited) > 1 and not supports(frozenset({c})) and supports(cited - {c})
    )
    return SentenceCitations(1, cited - imprecise, imprecise)


def alce_pairs_needed(markers: Collection[int]) -> list[frozenset[int]]:
    """The source sets `alce_sentence` may ask about, so a harness can judge them in one batch:
    all citations together, and for several citations each one alone and all but each one."""
    cited = frozenset(markers)
    if not cited:
        return []
    sets = [cited]
    if len(cited) > 1:
        for c in sorted(cited):
            sets += [frozenset({c}), cited - {c}]
    return list(dict.fromkeys(sets))


# --- a whole answer ------------------------------------------------------------------------


@dataclass
class SentenceSupport:
    """The check's verdict on one claim sentence of an answer."""

    text: str  # the sentence as the answer shows it
    markers: list[int]  # its citations that point to a source
    supported: bool  # its own citations, together, support it (ALCE citation recall)
    score: float  # the judge's score for the sentence against its own citations
    precise: list[int]
    imprecise: list[int]
    faithful: bool  # supported by what the answer cites as a whole
    faithful_score: float
    evidence: str = ""  # the source sentence closest to the claim, for the reader to check
    evidence_marker: int | None = None  # the source it is in

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class GroundingCheck:
    sentences: list[SentenceSupport] = field(default_factory=list)
    facts: list[dict] = field(default_factory=list)  # {"fact", "supported", "score"} per fact
    pairs_judged: int = 0  # distinct (claim, evidence) pairs the judge was asked about

    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if not s.supported]


def claim_sentences(text: str, exempt: tuple[str, ...] = ()) -> list[str]:
    """The sentences that state something and so need support: headers, labels and the
    backends' fixed lines (`exempt`, e.g. "Extractive answer: ...") are not claims."""
    return [s for s in split_sentences(text) if is_claim(s) and not s.startswith(exempt)]


def evidence_text(papers: Iterable[Paper]) -> str:
    """Sources as the judge reads them: each paper's title, then its abstract."""
    return "\n\n".join(f"{p.title}.\n{neutralize_markers(p.abstract)}" for p in papers)


def check_grounding(
    text: str,
    papers: dict[int, Paper],
    judge_pairs: JudgePairs,
    facts: list[str] = (),  # type: ignore[assignment]
    exempt: tuple[str, ...] = (),
) -> GroundingCheck:
    """Per-sentence verdicts (citation recall and precision, faithfulness) and per-fact ones.

    First batch: each claim sentence against the sources its own citations name (all
    together, and for several citations each alone and all but each, as ALCE needs), and
    each gold fact against the answer. Second batch, only for the sentences their own
    citations don't support: the sentence against every source the answer cites, which
    is what faithfulness asks (a sentence supported by its own citations is supported by
    any superset of them, so it needs no second look). `judge_pairs` returns a verdict per
    distinct pair; the eval harness passes one that caches.
    """
    sentences = claim_sentences(text, exempt)
    claims = [(claim_text(s), frozenset(markers_in(s))) for s in sentences]
    cited_all = frozenset(m for _, markers in claims for m in markers if m in papers)
    answer_text = "\n".join(claim for claim, _ in claims)

    def evidence(markers: frozenset[int]) -> str:
        return evidence_text([papers[m] for m in sorted(markers) if m in papers])

    first: list[Pair] = []
    for claim, markers in claims:
        first += [(claim, evidence(s)) for s in alce_pairs_needed(markers)]
    first += [(fact, answer_text) for fact in facts]
    verdicts = judge_pairs(first)

    rows = []
    for (claim, markers), sentence in zip(claims, sentences, strict=True):
        result = alce_sentence(markers, lambda s, c=claim: verdicts[(c, evidence(s))].supported)
        own = verdicts.get((claim, evidence(markers))) if markers else None
        rows.append(
            SentenceSupport(
                text=sentence,
                markers=sorted(markers),
                supported=bool(result.recall),
                score=round(own.score, 4) if own else 0.0,
                precise=sorted(result.precise),
                imprecise=sorted(result.imprecise),
                faithful=False,
                faithful_score=0.0,
            )
        )
    union = evidence(cited_all)
    second = list(
        dict.fromkeys(
            (claim, union)
            for (claim, _), row in zip(claims, rows, strict=True)
            if not row.supported and cited_all and (claim, union) not in verdicts
        )
    )
    verdicts |= judge_pairs(second)
    for (claim, markers), row in zip(claims, rows, strict=True):
        if row.supported:
            row.faithful, row.faithful_score = True, row.score
            row.evidence, row.evidence_marker = closest_sentence(claim, markers, papers)
        elif cited_all:
            v = verdicts[(claim, union)]
            row.faithful, row.faithful_score = v.supported, round(v.score, 4)
            row.evidence, row.evidence_marker = closest_sentence(claim, cited_all, papers)
        # else: nothing cited, nothing to be faithful to
    fact_rows = [
        {
            "fact": fact,
            "supported": verdicts[(fact, answer_text)].supported,
            "score": round(verdicts[(fact, answer_text)].score, 4),
        }
        for fact in facts
    ]
    return GroundingCheck(rows, fact_rows, len(set(first)) + len(second))


def closest_sentence(
    claim: str, markers: Collection[int], papers: dict[int, Paper]
) -> tuple[str, int | None]:
    """The cited abstracts' sentence sharing the most stemmed content words with the claim:
    what a reader should look at to check the verdict (a quote matches itself exactly)."""
    wanted = terms(claim)
    best: tuple[int, str, int | None] = (-1, "", None)
    for marker in sorted(markers):
        if marker not in papers:
            continue
        for sentence in abstract_sentences(papers[marker].abstract):
            overlap = len(wanted & terms(sentence))
            if overlap > best[0]:
                best = (overlap, sentence, marker)
    return best[1], best[2]


def judged_by(judge: Judge) -> JudgePairs:
    """A judge's verdicts for the distinct pairs, asked as one batch."""

    def judge_pairs(pairs: list[Pair]) -> dict[Pair, Verdict]:
        unique = list(dict.fromkeys(pairs))
        return dict(zip(unique, judge.judge_many(unique), strict=True)) if unique else {}

    return judge_pairs


# --- what the chat page shows beside an answer -----------------------------------------------


@dataclass
class AnswerEvidence:
    """The abstract sentences that back an answer, and the answer sentences to check."""

    supporting: dict[int, set[int]] = field(default_factory=dict)  # marker -> sentence indices
    flags: dict[str, str] = field(default_factory=dict)  # answer sentence -> reason
    check: GroundingCheck | None = None  # the judge's verdicts, when a judge ran


def explain_answer(answer: Answer, judge: Judge | None) -> AnswerEvidence:
    """Flags and highlights for one answer. With a judge, `check_grounding` decides which
    sentences are supported (the eval's rule) and names the evidence sentence of each;
    without one (an extractive answer quotes its sources) each cited sentence's evidence is
    the abstract sentence it quotes."""
    from .answer import ABSTAIN_HEADER
    from .extractive import EXTRACTIVE_HEADER

    found = AnswerEvidence(flags={s: "no citation" for s in answer.check.uncited_sentences})
    if answer.abstained:
        return found
    papers = {s.marker: s.paper for s in answer.sources}
    exempt = (EXTRACTIVE_HEADER, ABSTAIN_HEADER)
    if judge is None:
        for sentence in claim_sentences(answer.text, exempt):
            markers = [m for m in dict.fromkeys(markers_in(sentence)) if m in papers]
            for marker in markers:
                quoted, _ = closest_sentence(claim_text(sentence), [marker], papers)
                mark_supporting(found, papers, marker, quoted)
        return found
    found.check = check_grounding(answer.text, papers, judged_by(judge), exempt=exempt)
    for row in found.check.sentences:
        if not row.markers:
            continue
        if row.supported and row.evidence_marker is not None:
            mark_supporting(found, papers, row.evidence_marker, row.evidence)
        elif not row.supported:
            refs = ", ".join(f"[{n}]" for n in row.markers)
            found.flags[row.text] = f"not supported by {refs}"
    return found


def mark_supporting(found: AnswerEvidence, papers: dict[int, Paper], marker: int, sentence: str):
    sentences = abstract_sentences(papers[marker].abstract)
    if sentence in sentences:
        found.supporting.setdefault(marker, set()).add(sentences.index(sentence))
