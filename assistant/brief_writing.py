"""Writing a brief from its themed papers: offline from the abstracts' sentences, or
with a model by map (notes per abstract) then reduce (the brief).

Split from summarize.py, which chooses the papers and themes and then checks what
either writer wrote: the same citation check as chat answers, then the reference
list and coverage line. Both writers return the brief's text up to that check;
`literal` is shared with the reference list, so corpus text shows as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from .chat_model import ChatModel
from .errors import TopicError
from .extractive import BACKGROUND, ExtractiveBackend, cite, short_name
from .prompts import Prompt, defuse, source_block
from .settings import Settings
from .text import neutralize_markers
from .themes import Theme, join_words
from .tokens import count_tokens
from .types import Hit, Source, Usage

EXTRACTIVE_NOTE = (
    "_Extractive brief: sentences chosen from the abstracts; no language model wrote it._"
)
NO_OPEN_QUESTIONS = "The abstracts name no open questions or limitations explicitly."
Progress = Callable[[str], None]


def left(hit: Hit | Source, reason: str) -> dict[str, str]:
    """An entry of the brief's left-out list: the paper, and why the brief doesn't cite it."""
    return {"paper_id": hit.paper.paper_id, "title": hit.paper.title, "reason": reason}


# --- writing offline ----------------------------------------------------------------------------

TRADEOFF = re.compile(
    r"\b(trade-?offs?|at the cost of|at the expense of|whereas|in contrast|compared (?:with|to)|"
    r"outperform\w*|while (?:maintaining|preserving|keeping)|without (?:sacrificing|losing))\b",
    re.IGNORECASE,
)
OPEN = re.compile(
    r"\b(remains?|remained|open (?:question|problem|challenge)s?|challeng\w*|unclear|limitations?|"
    r"limited|future work|little is known|not yet|understudied|under-explored|underexplored|"
    r"lack(?:s|ing)?|bottleneck\w*|struggle\w*|suffer\w*)\b",
    re.IGNORECASE,
)
SUBJECT = re.compile(
    r"^((?:[A-Z][^,]{0,40},\s*)?)(we|this paper|this work|this study)\s+"
    r"((?:(?:further|also|then|first|additionally|empirically|theoretically|experimentally|"
    r"systematically|extensively|comprehensively|formally)\s+)*)"
    r"([a-z]+)\b",
    re.IGNORECASE,
)
FINDING = re.compile(
    r"\d+(?:\.\d+)?\s*(?:%|x|×|times)|\b(?:outperform\w*|surpass\w*|speed-?ups?|"
    r"achiev\w*|improv\w* (?:\w+ ){0,3}by|reduc\w* (?:\w+ ){0,3}by|"
    r"we (?:find|found|show|observe))\b",
    re.IGNORECASE,
)


def opens(sentence: str) -> bool:
    """Background ("However, existing methods …") reports no finding of the paper's own."""
    return BACKGROUND.match(sentence) is not None


FIRST_PERSON = [
    (re.compile(r"\bwe\b"), "the authors"),
    (re.compile(r"\bWe\b"), "The authors"),
    (re.compile(r"\bour\b"), "their"),
    (re.compile(r"\bOur\b"), "Their"),
    (re.compile(r"\bus\b"), "them"),
]
IRREGULAR = {"are": "is", "have": "has", "do": "does", "go": "goes"}


def third_person(sentence: str, name: str) -> str:
    """'We propose X; our results …' -> 'EMS proposes X; their results …'.

    An abstract speaks for itself; a brief speaks about several papers, so each
    sentence needs the paper as its subject.
    """
    match = SUBJECT.match(sentence)
    if match:
        lead, who, adverbs, verb = match.groups()
        rest = sentence[match.end() :]
        if name in rest or name.startswith(("“", "One ")):  # "We propose EMS" -> no "EMS … EMS"
            subject = "the authors" if who.lower() == "we" else "the paper"
            subject = subject if lead else subject.capitalize()
        else:
            subject, verb = name, conjugate(verb) if who.lower() == "we" else verb
        sentence = f"{lead}{subject} {adverbs}{verb}{rest}"
    for pattern, replacement in FIRST_PERSON:
        sentence = pattern.sub(replacement, sentence)
    return sentence


def conjugate(verb: str) -> str:
    verb = verb.lower()
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    if verb.endswith("ed"):
        return verb  # past tense: "we introduced" -> "X introduced"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z)$", verb):
        return verb + "es"
    return verb + "s"


MARKDOWN = re.compile(r"([\\`*_\[\]<>])")


def literal(text: str) -> str:
    """Corpus text inside the brief's Markdown, shown as written: a title like
    "[click](javascript:…)" or "**x**" must not become a link or bold."""
    return MARKDOWN.sub(r"\\\1", text)


def subject_for(source: Source) -> str:
    name = short_name(source.paper.title)
    if name:
        return name
    words = source.paper.title.split()
    return f"“{source.paper.title}”" if len(words) <= 8 else "One study"


def write_extractively(
    topic: str, relevant: list[Source], themes: list[Theme], extractive: ExtractiveBackend
) -> str:
    """The abstracts' own sentences, arranged as a brief: overview, themes, trade-offs, gaps.

    Per paper: the sentence closest to the topic among those that say what the paper
    did or found, and a second one that reports a result, when the abstract has one.
    """
    by_id = {s.paper.paper_id: s for s in relevant}
    query = extractive.embedder.embed_query(topic)
    sentences = dict(
        zip(
            [s.paper.paper_id for s in relevant],
            extractive.sentences_of(relevant),
            strict=True,
        )
    )
    used: set[tuple[str, int]] = set()

    def key_sentences(source: Source) -> list[int]:
        texts, vectors = sentences[source.paper.paper_id]
        if not texts:
            return []
        scores = vectors @ query
        order = sorted(range(len(texts)), key=lambda i: -scores[i])
        # An abstract's first sentence is nearly always background, not its own contribution.
        what = next((i for i in order if SUBJECT.match(texts[i])), None)
        what = what if what is not None else next((i for i in order if i > 0), order[0])
        result = next(
            (
                i
                for i in order
                if i not in (what, 0) and FINDING.search(texts[i]) and not opens(texts[i])
            ),
            None,
        )
        picked = sorted({what} | ({result} if result is not None else set()))
        used.update((source.paper.paper_id, i) for i in picked)
        return picked

    def cited(source: Source, i: int) -> str:
        text = third_person(sentences[source.paper.paper_id][0][i], subject_for(source))
        return cite(literal(text), source.marker)

    lines = [f"# Brief: {literal(topic)}", "", EXTRACTIVE_NOTE, "", "## Overview", ""]
    parts = [
        f"{literal(lower_first(t.name))} {group_markers([by_id[p].marker for p in t.paper_ids])}"
        for t in themes
    ]
    lines.append(
        f"{len(relevant)} papers in the index address {topic}; they fall into "
        f"{len(themes)} theme{'s' if len(themes) > 1 else ''}: {join_words(parts)}."
        if len(themes) > 1
        else f"{len(relevant)} papers in the index address {topic} "
        f"{group_markers([s.marker for s in relevant])}."
    )
    lines += ["", "## Themes"]
    for theme in themes:
        lines += ["", f"### {literal(theme.name)}", ""]
        paragraph = []
        for paper_id in theme.paper_ids:
            source = by_id[paper_id]
            paragraph += [cited(source, i) for i in key_sentences(source)]
        lines.append(" ".join(paragraph))

    lines += ["", "## Agreements, disagreements and trade-offs", ""]
    lines += bullets(relevant, sentences, query, TRADEOFF, used, cited)
    lines += ["", "## Open questions", ""]
    gaps = bullets(relevant, sentences, query, OPEN, used, cited, exclude=SUBJECT)
    lines += gaps or [NO_OPEN_QUESTIONS]
    return "\n".join(lines)


def bullets(
    relevant: list[Source],
    sentences: dict[str, tuple[list[str], np.ndarray]],
    query: np.ndarray,
    cue: re.Pattern[str],
    used: set[tuple[str, int]],
    cited: Callable[[Source, int], str],
    most: int = 4,
    exclude: re.Pattern[str] | None = None,
) -> list[str]:
    """The sentences that carry `cue`, closest to the topic first, one per paper."""
    found = []
    for source in relevant:
        texts, vectors = sentences[source.paper.paper_id]
        scores = vectors @ query if len(texts) else []
        options = [
            (float(scores[i]), i)
            for i, text in enumerate(texts)
            if cue.search(text)
            and not (exclude and exclude.match(text))
            and (source.paper.paper_id, i) not in used
        ]
        if options:
            score, i = max(options)
            found.append((score, source, i))
    found.sort(key=lambda f: -f[0])
    picked = found[:most]
    used.update((s.paper.paper_id, i) for _, s, i in picked)
    return [f"- {cited(s, i)}" for _, s, i in picked]


def lower_first(name: str) -> str:
    """'Eviction and merging' -> 'eviction and merging', but 'MQA and GQA' stays."""
    first = name.split(" ", 1)[0]
    return (
        name
        if first.isupper() or any(c.isupper() for c in first[1:])
        else name[:1].lower() + name[1:]
    )


def group_markers(markers: list[int]) -> str:
    return "[" + ", ".join(str(m) for m in sorted(markers)) + "]"


# --- writing with a model: map, then reduce -----------------------------------------------------


def write_with_llm(
    settings: Settings,
    chat_model: ChatModel,
    prompts: dict[str, Prompt],
    topic: str,
    relevant: list[Source],
    themes: list[Theme],
    usage: Usage,
    say: Progress,
) -> tuple[str, list[dict[str, str]]]:
    """Map: notes on each abstract. Reduce: the notes that fit the budget, into the brief."""
    map_prompt, reduce_prompt = prompts["summarize_map"], prompts["summarize_reduce"]
    notes: list[tuple[Source, str]] = []
    dropped: list[dict[str, str]] = []
    for i, source in enumerate(relevant, start=1):
        say(f"reading papers: {i}/{len(relevant)}")
        block = f"<source>\n{defuse(neutralize_markers(source.paper.abstract))}\n</source>"
        generation = chat_model.stream(
            [{"role": "user", "content": map_prompt.render(topic=topic, source=block)}]
        )
        text = generation.finish().strip()
        usage.add(generation.usage)
        if not text or text.upper().startswith("NOT RELEVANT"):
            dropped.append(left(source, "the model found nothing on the topic in its abstract"))
        else:
            notes.append((source, neutralize_markers(text)))

    packed: list[str] = []
    kept: set[int] = set()
    used = 0
    for source, text in notes:
        block = source_block(source.marker, source.paper.title, text)
        cost = count_tokens(block, chat_model.model)
        if used + cost > settings.summary_tokens:
            dropped.append(left(source, "over the token budget for the summary prompt"))
            continue
        packed.append(block)
        kept.add(source.marker)
        used += cost
    if not packed:
        raise TopicError(
            f"no paper had anything on {topic!r} once read",
            "try a broader topic, or `search` to see what the index holds",
        )
    by_id = {s.paper.paper_id: s for s in relevant}
    theme_lines = []
    for theme in themes:
        markers = [by_id[p].marker for p in theme.paper_ids if by_id[p].marker in kept]
        if markers:
            theme_lines.append(f"- {theme.name}: {group_markers(markers)}")
    say("writing")
    prompt = reduce_prompt.render(
        topic=topic, themes="\n".join(theme_lines), notes="\n\n".join(packed)
    )
    generation = chat_model.stream([{"role": "user", "content": prompt}])
    text = strip_references(generation.finish())
    usage.add(generation.usage)
    return f"# Brief: {literal(topic)}\n\n{text.strip()}", dropped


def strip_references(text: str) -> str:
    """The model was told not to write a reference list; if it did, ours replaces it."""
    return re.split(r"^#+\s*(?:References|Bibliography|Sources)\b.*$", text, flags=re.M | re.I)[0]
