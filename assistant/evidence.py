"""The evidence table: one row per cited paper, what it proposes, reports and evaluates on.

This is the table researchers build by hand before writing a review (Elicit and Ai2
ScholarQA fill it with a model). Here it is read off the abstract deterministically, so
both writers share it and it costs milliseconds: the method sentence cut to its head
phrase, the result sentence with the most quantities cut to the clauses that carry them
(numbers never rewritten), and the datasets and benchmarks the abstract names.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from .brief_sentences import (
    FIRST_PERSON,
    PROPOSAL,
    STRONG_PROPOSAL,
    brief_sentences,
    drop_openers,
    is_method,
    is_result,
    name_of,
    quantities,
    rename_method,
)
from .text import literal, numbers_in, strip_markup
from .types import Source

HEAD_WORDS = 16
REPORT_WORDS = 40
MOST_DATASETS = 6


@dataclass
class EvidenceRow:
    marker: int
    paper_id: str
    title: str
    name: str | None
    proposes: str
    reports: str
    evaluated_on: list[str]

    def to_json(self) -> dict:
        return {
            "marker": self.marker,
            "paper_id": self.paper_id,
            "title": self.title,
            "name": self.name,
            "proposes": self.proposes,
            "reports": self.reports,
            "evaluated_on": self.evaluated_on,
        }


def evidence_table(sources: list[Source]) -> list[EvidenceRow]:
    return [evidence_row(s) for s in sorted(sources, key=lambda s: s.marker)]


def evidence_row(source: Source) -> EvidenceRow:
    paper = source.paper
    sentences = brief_sentences(paper.abstract)
    name = name_of(paper)
    return EvidenceRow(
        marker=source.marker,
        paper_id=paper.paper_id,
        title=strip_markup(paper.title),
        name=name,
        proposes=proposes(sentences, paper.title),
        reports=reports(sentences, name),
        evaluated_on=datasets_named(sentences, name),
    )


# --- what it proposes -----------------------------------------------------------------------

CLAUSE_END = re.compile(
    r",\s*(?:which|where|whereby|allowing|enabling|thereby|so that|while|and (?:show|"
    r"demonstrate|find|evaluate|achieve))\b|;|:\s|\.\s*$|\s+(?:that|which) (?:achieves|"
    r"outperforms|significantly)\b"
)


def proposes(sentences: tuple[str, ...], title: str) -> str:
    """The object of "we propose …" up to its first clause break: its head phrase."""
    strong = [s for s in sentences if is_method(s) and STRONG_PROPOSAL.search(s)]
    for sentence in strong + [s for s in sentences if is_method(s) and s not in strong]:
        match = PROPOSAL.search(sentence)
        if not match:
            continue
        phrase = re.sub(r"^(?:a|an|the)\s+", "", sentence[match.end() :].strip(" ,"))
        cut = CLAUSE_END.search(phrase)
        head = phrase[: cut.start()] if cut else phrase
        if len(head.split()) <= 3 and cut:  # only the name: its description says what it is
            rest = CLAUSE_END.search(phrase, cut.end())
            head = phrase[: rest.start()] if rest else phrase
        head = head.strip(" ,.;:")
        if len(head.split()) >= 2:
            return clip(head, HEAD_WORDS)
    _, sep, rest = strip_markup(title).partition(":")
    return clip(rest.strip() if sep else strip_markup(title), HEAD_WORDS)


def clip(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]).rstrip(",;:") + " …"


# --- what it reports ------------------------------------------------------------------------

UNIT = re.compile(r"\d\s*(?:%|x\b|×|times\b|-fold)")
LEAD_IN = re.compile(
    r"^(?:through|across|on|in|with|using|via|by|after|under)\b[^,]{0,80},\s+(?=the\b|(?-i:[A-Z]))|"
    r"^[^,]{0,90}?\b(?:experiments?|results?|evaluations?|analys[ie]s|we|studies|tests?)\b"
    r"[^,]{0,60}?\b(?:show|shows|showed|demonstrate[sd]?|indicate[sd]?|reveal[sd]?|find|found|"
    r"confirm[sd]?|verif(?:y|ies|ied)|suggest[sd]?)\s+that\s+",
    re.IGNORECASE,
)


def reports(sentences: tuple[str, ...], name: str | None) -> str:
    """The result sentence with the most quantities, its "experiments show that" cut off
    and, when long, cut to the clauses that hold a number; the numbers stay as written."""
    results = [
        (bool(UNIT.search(s)), quantities(s), i)
        for i, s in enumerate(sentences)
        if i and is_result(s) and not is_method(s)
    ]
    if not results:
        return ""
    best = max(results)[2]
    text = LEAD_IN.sub("", drop_openers(sentences[best])).rstrip(" .")
    if len(text.split()) > REPORT_WORDS:
        clauses = re.split(r"(?<=[,;])\s+", text)
        kept = [c for c in clauses if numbers_in(c)] or clauses[:1]
        text = " … ".join(c.rstrip(",;") for c in kept)
    text = rename_method(text, name)
    for pattern, replacement in FIRST_PERSON:
        text = pattern.sub(replacement, text)
    text = clip(text, REPORT_WORDS + 20)
    return text[:1].upper() + text[1:]


# --- what it evaluates on -------------------------------------------------------------------

EVAL_WORD = r"(?:benchmarks?|datasets?|corpus|corpora|suites?|test sets?|leaderboards?|tasks)"
ITEM = r"(?:the\s+)?[A-Z0-9][\w.+-]*(?:\s+[A-Z0-9][\w+-]*){0,2}"
LIST = rf"{ITEM}(?:\s*(?:,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+){ITEM}){{0,9}}"
BEFORE = re.compile(rf"\b(?:on|across|over|using|with|from|in|including)\s+({LIST})\s+{EVAL_WORD}")
AFTER = re.compile(
    rf"\b{EVAL_WORD}\s*(?:\(|:|,?\s+(?:such as|including|like|namely|e\.g\.,?)\s+)({LIST})"
)
NAMED_SET = r"(?:[A-Z][\w-]*[A-Z0-9][\w-]*|[A-Z][a-z]+[A-Z][\w-]*)"
ON_NAME = re.compile(
    rf"\b(?:on|across)\s+(?:the\s+)?({NAMED_SET}(?:\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s+or\s+)"
    rf"(?:the\s+)?{NAMED_SET})*)"
)
EVALUATION = re.compile(
    r"\b(?:evaluat\w*|experiment\w*|benchmark\w*|datasets?|tested|results|accuracy|perplexity|"
    r"scores?|measured|outperform\w*)\b",
    re.IGNORECASE,
)
MODELS = re.compile(
    r"^(?:llama|llava|vicuna|mistral|mixtral|gpt|qwen|opt|bert|roberta|t5|flan|pythia|falcon|"
    r"gemma|phi|bloom|palm|claude|gemini|deepseek|baichuan|internlm|chatglm|olmo|mpt|vit|clip|"
    r"whisper|wav2vec|mamba|stablelm|tinyllama|codellama|starcoder|yi|hubert|conformer|"
    r"deberta|electra|xlnet|bart|mt5|nllb|sam|dino|resnet)\b|-\d+(?:\.\d+)?[BMK]\b",
    re.IGNORECASE,
)
NOT_DATASETS = frozenset({
    "LLM", "LLMs", "KV", "GPU", "GPUs", "CPU", "NLP", "AI", "API", "MoE", "RAG", "VRAM",
    "SOTA", "NLU", "NLG", "ML", "DL", "RL", "The", "A", "An", "Our", "We", "These", "This",
    "English", "Chinese", "Experiments", "Results", "Extensive", "",
})  # fmt: skip


def datasets_named(sentences: tuple[str, ...], name: str | None) -> list[str]:
    """Names the evaluation sentences give to what was tested: "on LongBench and
    Needle-in-a-Haystack benchmarks", "benchmarks such as MMLU", "on WikiText-103".
    Model families ("the Vicuna and LLaMA-2 series") and the paper's own name are not."""
    found: list[str] = []
    for sentence in sentences:
        if not EVALUATION.search(sentence):
            continue
        lists = [m.group(1) for m in BEFORE.finditer(sentence)]
        lists += [m.group(1) for m in AFTER.finditer(sentence)]
        lists += [m.group(1) for m in ON_NAME.finditer(sentence)]
        items = [
            i
            for chunk in lists
            for i in re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+", chunk)
        ]
        for item in items:
            item = re.sub(r"^the\s+", "", item.strip(" .()")).strip()
            if is_dataset_name(item, name) and item not in found:
                found.append(item)
    return found[:MOST_DATASETS]


def is_dataset_name(item: str, name: str | None) -> bool:
    first = item.split()[0] if item else ""
    return bool(
        item
        and item[0].isupper() | item[0].isdigit()
        and not item.isdigit()
        and first not in NOT_DATASETS
        and item not in NOT_DATASETS
        and not MODELS.search(item)
        and not (name and (item.startswith(name) or name.startswith(item)))
        and len(item) <= 40
        and not re.search(r"\b(?:models?|series|family|families|backbones?)$", item, re.I)
    )


# --- rendering ------------------------------------------------------------------------------

COLUMNS = ("paper", "proposes", "reports", "evaluated on")


def table_markdown(rows: list[EvidenceRow]) -> str:
    """A Markdown table; corpus text is escaped, so a cell can't turn into markup or end early."""

    def cell(text: str) -> str:
        return literal(text) or "—"

    lines = ["## Evidence table", "", "| " + " | ".join(COLUMNS) + " |", "|---|---|---|---|"]
    for row in rows:
        label = f"[{row.marker}] {row.name or clip(row.title, 6)}"
        values = [label, row.proposes, row.reports, ", ".join(row.evaluated_on)]
        lines.append(
            "| "
            + " | ".join(cell(v) if i else cell_label(v, cell) for i, v in enumerate(values))
            + " |"
        )
    return "\n".join(lines)


def cell_label(label: str, cell: Callable[[str], str]) -> str:
    """The [n] stays a citation marker; only the name after it is escaped."""
    marker, _, rest = label.partition(" ")
    return f"{marker} {cell(rest)}"


def table_csv(rows: list[EvidenceRow]) -> str:
    """CSV for a spreadsheet: a cell that opens with = + - or @ is prefixed with ', so an
    abstract can't smuggle a formula into whoever opens the file."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["marker", "paper_id", "title", "name", "proposes", "reports", "evaluated_on"])
    for row in rows:
        cells = [row.paper_id, row.title, row.name or "", row.proposes, row.reports]
        cells.append("; ".join(row.evaluated_on))
        writer.writerow([row.marker, *(inert(c) for c in cells)])
    return out.getvalue()


def inert(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell
