"""Words, sentences, numbers and citation markers: the text handling every stage shares.

This is the bottom of the import graph: it imports nothing from the package, so any
stage can use it and no two stages need to import each other for a regex. BM25, the
abstention check, the grounding judge and the summary all tokenise and stem the same
way because they all call the functions here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import Stemmer

# --- words: BM25 tokens, stems and stop words ------------------------------------------------

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default token pattern


@functools.cache
def english_stemmer() -> Stemmer.Stemmer:
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.cache
def english_stop_words() -> frozenset[str]:
    """bm25s's English list: what BM25 leaves out is what every other word count leaves out."""
    import bm25s

    return frozenset(bm25s.stopwords.STOPWORDS_EN)


def bm25_tokenize(texts: list[str], stopwords: str | None = "en") -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(
        texts, stopwords=stopwords, stemmer=english_stemmer(), return_ids=False, show_progress=False
    )  # type: ignore[return-value]


# Words that frame a question rather than name its subject ("what do the papers say
# about X?"). bm25s's English stop words keep most of them, and the rarer ones
# ("say" is in one abstract of the seed corpus) would outweigh the subject itself.
QUESTION_WORDS = (
    "what which who whom whose when where why how do does did done can could would should "
    "will shall may might must is are was were be been being about tell told say says said "
    "us you your me my i we our paper papers literature study studies work works research "
    "summarize summarise summary findings find found explain describe discuss know known "
    "show shows there any some anything something they them their it its this that these those "
    "give list mention mentions approach approaches propose proposed please"
)


@functools.cache
def question_words() -> frozenset[str]:
    return frozenset(bm25_tokenize([QUESTION_WORDS], stopwords=None)[0])


def query_terms(question: str) -> list[str]:
    """A question's subject terms: BM25 tokens without the words that frame the question."""
    framing = question_words()
    return [t for t in bm25_tokenize([question])[0] if t not in framing]


def content_words(text: str) -> list[str]:
    """Lower-cased words without stop words, first occurrence order, no repeats."""
    stop = english_stop_words()
    return list(dict.fromkeys(w for w in TOKEN.findall(text.lower()) if w not in stop))


def terms(text: str) -> frozenset[str]:
    """The stemmed content words, exactly as BM25 indexes them (a test checks it)."""
    stem: Callable[[str], str] = english_stemmer().stemWord
    return frozenset(stem(w) for w in content_words(text))


# --- numbers ---------------------------------------------------------------------------------

# A quantity, not the digits of a name: COVID-19, SARS-CoV-2, IL-6, p53, OCT3/4, 5G are skipped.
NUMBER = re.compile(r"(?<![\w/-])\d+(?:[.,]\d+)*(?![A-Z])")


def numbers_in(text: str) -> set[str]:
    """The text's quantities, with thousands separators dropped (2,400 = 2400)."""
    return {n.replace(",", "") for n in NUMBER.findall(text)}


# --- citation markers ------------------------------------------------------------------------

# [1]  [1, 3]  [1-3]  [1–3]  [1,2-4]; adjacent groups like [1][2] are separate matches.
MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–|—)\s*\d+)*)\s*\]")
MAX_RANGE = 50  # "[1-1000]" is not a citation anyone meant


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


def neutralize_markers(text: str) -> str:
    """An abstract's own reference '[1]' must not pass for one of our citations."""
    # "(ref 7)", not "(ref. 7)": a full stop before the number would end a sentence there.
    return MARKER.sub(lambda m: f"(ref {m.group(1)})", text)


# --- sentences -------------------------------------------------------------------------------

# Sentence ends: ., ! or ? (optionally followed by markers) then space and an uppercase start.
SENTENCE_END = re.compile(r"(?<=[.!?])((?:\s*\[[^\]]*\])*)\s+(?=[\"'(\[]?[A-Z0-9])")
ABBREVIATION = re.compile(r"\b(e\.g|i\.e|et al|etc|vs|cf|fig|eq|approx|no)\.$", re.IGNORECASE)


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


@functools.lru_cache(maxsize=1024)
def abstract_sentences(abstract: str) -> tuple[str, ...]:
    """An abstract's sentences, whitespace folded: the numbering that highlights and evidence
    refer to. Cached: a chat page splits the same few abstracts for every answer."""
    return tuple(split_sentences(" ".join(abstract.split())))


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


BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# The extractive answer's "- Medusa: <quoted sentence> [1]": the label names the paper its
# marker already cites (a title's head, up to 40 characters: "Think Before You Act"), and
# the abstract sentence doesn't repeat it, so a judge would read the name as a claim the
# evidence lacks; a judge trained on added clauses reads it as one.
LABEL = re.compile(r"^([^:\n]{2,40}): (?=[A-Z0-9])")
LABEL_SMALL_WORDS = frozenset(
    {"a", "an", "the", "of", "in", "on", "for", "to", "and", "or", "with", "from", "by"}
    | {"at", "as", "via", "vs", "is", "are", "be", "not", "but"}
)


def is_label(text: str) -> bool:
    """Written as a title: each word capitalised, a name (GPT-4, xLSTM) or a small word,
    which "We find that x" is not."""
    words = [w.strip(",.&()'\"") for w in text.split()]
    return all(
        not w
        or w[0].isupper()
        or w[0].isdigit()
        or any(c.isupper() for c in w)
        or w.lower() in LABEL_SMALL_WORDS
        for w in words
    )


def claim_text(sentence: str) -> str:
    """What a sentence claims, as a judge reads it: without its markers, list bullet and
    the paper label of a bullet."""
    bulleted = BULLET.match(sentence)
    text = BULLET.sub("", sentence)
    label = LABEL.match(text) if bulleted else None
    text = text[label.end() :] if label and is_label(label.group(1)) else text
    text = MARKER.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return " ".join(text.split())


# --- markup ----------------------------------------------------------------------------------

# HTML pasted into a corpus file (a scraped page, an injected record): its tags and their
# attributes are not words of the paper, so nothing that names or quotes it may use them.
SCRIPT_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
TAG = re.compile(
    r"<!--.*?-->|</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>|<[A-Za-z][\w:-]*\s[^<>]*$", re.DOTALL
)


def strip_markup(text: str) -> str:
    """The text without HTML tags, their attributes or script bodies; entities decoded first,
    so an escaped '&lt;img&gt;' goes too. Plain text comes back unchanged."""
    if "<" not in text and "&" not in text:
        return text
    import html

    text = TAG.sub(" ", SCRIPT_BLOCK.sub(" ", html.unescape(text)))
    return re.sub(r"[ \t]{2,}", " ", text).strip()


MARKDOWN = re.compile(r"([\\`*_\[\]<>|])")


def literal(text: str) -> str:
    """Corpus text inside a brief's Markdown, shown as written: a title like
    "[click](javascript:…)" or "**x**" must not become a link or bold, nor a "|" end a
    table cell."""
    return MARKDOWN.sub(r"\\\1", text)


# --- model replies ---------------------------------------------------------------------------

FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)


def strip_fence(reply: str) -> str:
    """A reply asked to be JSON often comes in a ```json fence: the text inside it."""
    text = reply.strip()
    fenced = FENCE.match(text)
    return fenced.group(1) if fenced else text
