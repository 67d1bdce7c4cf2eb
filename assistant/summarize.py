"""Topic -> a themed literature brief, every claim cited, its coverage stated.

The steps, in order: retrieve broadly for the topic; keep a diverse set (maximal
marginal relevance over the papers' stored vectors, so near-duplicates don't
crowd out other work); keep only the papers whose fused score is close enough to
the best one's (`ASSISTANT_SUMMARY_MIN_SCORE`, calibrated on
evals/datasets/subtopics.jsonl); cluster them into themes named by their
distinctive terms; write. An LLM writes by map (notes per abstract) then reduce
(the brief); offline, the brief is built from the abstracts' own sentences. Either
way the text goes through the same citation check as chat answers, and the
reference list and coverage line are added afterwards from what was cited.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from .answer import relevance_of
from .citations import CitationCheck, check_citations
from .embeddings import Embedder
from .errors import AssistantError
from .extractive import BACKGROUND, ExtractiveBackend, cite, short_name
from .index import PaperIndex
from .llm import Backend, OpenAIBackend
from .prompts import Prompt, defuse, load_prompt, prompt_versions, source_block
from .retrieval import search
from .settings import Settings
from .text import english_stemmer, english_stop_words, neutralize_markers
from .tokens import count_tokens
from .types import Hit, Source, Usage

MAX_TOPIC_CHARS = 300  # a topic is a phrase; a pasted page is something else
MAX_THEMES = 5
EXTRACTIVE_NOTE = (
    "_Extractive brief: sentences chosen from the abstracts; no language model wrote it._"
)
NO_OPEN_QUESTIONS = "The abstracts name no open questions or limitations explicitly."
Progress = Callable[[str], None]


class TopicError(AssistantError):
    """The topic can't be summarised: empty, a paste rather than a topic, or not in the corpus."""


@dataclass
class Theme:
    name: str
    paper_ids: list[str]


@dataclass
class Brief:
    topic: str
    markdown: str
    themes: list[Theme]
    citations: list[Source]  # the papers the brief cites, as numbered in it
    relevant: list[Source]  # every paper judged on the topic
    left_out: list[dict[str, str]]  # {"paper_id", "title", "reason"}
    check: CitationCheck
    backend: str
    model: str
    prompt_versions: dict[str, str]
    usage: Usage
    seconds: float

    def to_json(self) -> dict:
        return {
            "topic": self.topic,
            "markdown": self.markdown,
            "themes": [{"name": t.name, "paper_ids": t.paper_ids} for t in self.themes],
            "citations": [
                {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
                for s in self.citations
            ],
            "relevant_papers": [s.to_json() for s in self.relevant],
            "left_out": self.left_out,
            "citation_check": self.check.to_json(),
            "backend": self.backend,
            "model": self.model,
            "prompt_versions": self.prompt_versions,
            "usage": self.usage.to_json(),
            "seconds": round(self.seconds, 3),
        }


def summarize(
    settings: Settings,
    topic: str,
    *,
    index: PaperIndex,
    embedder: Embedder,
    backend: Backend,
    max_papers: int = 25,
    progress: Progress | None = None,
) -> Brief:
    started = time.perf_counter()
    say = progress or (lambda message: None)
    topic = clean_topic(topic)

    say("retrieving papers")
    hits = search(index, embedder, topic, k=max(3 * max_papers, 30))
    relevance = relevance_of(index, embedder, topic, hits)
    if not hits or relevance.too_low(settings):
        nearest = "; ".join(h.paper.title for h in hits[:3]) or "none"
        missing = f" (none mentions {', '.join(relevance.unknown_names)})"
        raise TopicError(
            f"the indexed papers don't cover {topic!r}"
            + (missing if relevance.unknown_names else ""),
            f"the nearest papers are: {nearest}",
        )

    vectors = index.vectors([h.chunk_id for h in hits])
    chosen = diverse(hits, vectors, max_papers)
    top = hits[0].score
    on_topic = [i for i in chosen if hits[i].score >= settings.summary_min_score * top]
    left_out = [
        left(hits[i], f"less related to the topic (score {hits[i].score / top:.2f} of the best)")
        for i in chosen
        if i not in on_topic
    ]
    relevant = [
        Source(n, hits[i].paper, hits[i].score, hits[i].snippet)
        for n, i in enumerate(on_topic, start=1)
    ]
    say(f"{len(relevant)} relevant papers of {len(hits)} retrieved")

    groups = cluster(vectors[on_topic], themes_for(len(on_topic)))
    names = theme_names(
        [[relevant[i] for i in group] for group in groups],
        [vectors[[on_topic[i] for i in group]] for group in groups],
        topic,
        embedder,
    )
    themes = [
        Theme(name, [relevant[i].paper.paper_id for i in group])
        for name, group in zip(names, groups, strict=True)
    ]
    say(f"{len(themes)} themes: {'; '.join(names)}")

    usage = Usage()
    prompts: dict[str, Prompt] = {}
    if backend.name == "openai":  # anything that streams chat completions, cached or not
        prompts = {
            name: load_prompt(name, settings.prompts_dir)
            for name in ("summarize_map", "summarize_reduce")
        }
        text, dropped = write_with_llm(
            settings, cast(OpenAIBackend, backend), prompts, topic, relevant, themes, usage, say
        )
        left_out += dropped
    else:
        say("writing")
        extractive = (
            backend if isinstance(backend, ExtractiveBackend) else ExtractiveBackend(embedder)
        )
        text = write_extractively(topic, relevant, themes, extractive)

    check = check_citations(text, {s.marker for s in relevant}, exempt=EXEMPT)
    cited = [s for s in relevant if s.marker in check.cited]
    accounted = {x["paper_id"] for x in left_out}
    left_out += [
        left(s, "not cited in the brief")
        for s in relevant
        if s.marker not in check.cited and s.paper.paper_id not in accounted
    ]
    markdown = (
        check.text.rstrip()
        + "\n\n"
        + references(cited)
        + "\n\n"
        + coverage(relevant, cited, left_out)
    )
    return Brief(
        topic=topic,
        markdown=markdown,
        themes=themes,
        citations=cited,
        relevant=relevant,
        left_out=left_out,
        check=check,
        backend=backend.name,
        model=backend.model,
        prompt_versions=prompt_versions(prompts),
        usage=usage,
        seconds=time.perf_counter() - started,
    )


def clean_topic(topic: str) -> str:
    topic = " ".join(topic.split())
    if not topic:
        raise TopicError("the topic is empty", 'name a subject, e.g. "KV-cache compression"')
    if len(topic) > MAX_TOPIC_CHARS:
        raise TopicError(
            f"the topic is {len(topic):,} characters long; a topic is a phrase of at most "
            f"{MAX_TOPIC_CHARS}",
            "name the subject in a few words; to ask about a passage, use `ask` with a question",
        )
    return topic


def left(hit: Hit | Source, reason: str) -> dict[str, str]:
    return {"paper_id": hit.paper.paper_id, "title": hit.paper.title, "reason": reason}


# --- choosing and grouping the papers -----------------------------------------------------------


def diverse(hits: list[Hit], vectors: np.ndarray, k: int, balance: float = 0.7) -> list[int]:
    """Maximal marginal relevance: the best papers, each unlike the ones already taken.

    Returns positions in `hits`, best first. Relevance is the fused score scaled by
    the best; redundancy is the cosine of the papers' best-matching chunks.
    """
    top = hits[0].score or 1.0
    relevance = np.array([h.score / top for h in hits])
    chosen: list[int] = []
    rest = list(range(len(hits)))
    while rest and len(chosen) < k:
        if chosen:
            redundancy = (vectors[rest] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(rest))
        gain = balance * relevance[rest] - (1 - balance) * redundancy
        best = rest[int(np.argmax(gain))]
        chosen.append(best)
        rest.remove(best)
    return sorted(chosen, key=lambda i: -hits[i].score)


def themes_for(n: int) -> int:
    """About four papers a theme: one theme for a handful, at most five."""
    return max(1, min(MAX_THEMES, round(n / 4)))


def cluster(vectors: np.ndarray, k: int) -> list[list[int]]:
    """Ward's agglomerative clustering: deterministic, no seeds, and fine for 25 points.

    Ward merges the pair whose union grows the within-theme spread least, which
    keeps themes of comparable size where average linkage leaves singletons.
    Groups come back ordered by their best member (lowest index = most relevant).
    """
    groups = [[i] for i in range(len(vectors))]
    centroids = [vectors[i].astype(np.float64) for i in range(len(vectors))]
    while len(groups) > k:
        best, pair = math.inf, (0, 1)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                na, nb = len(groups[a]), len(groups[b])
                cost = na * nb / (na + nb) * float(np.sum((centroids[a] - centroids[b]) ** 2))
                if cost < best:
                    best, pair = cost, (a, b)
        a, b = pair
        na, nb = len(groups[a]), len(groups[b])
        centroids[a] = (na * centroids[a] + nb * centroids.pop(b)) / (na + nb)
        groups[a] = sorted(groups[a] + groups.pop(b))
    return sorted(groups, key=min)


WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]")
PHRASE_BREAK = re.compile(r"[.,;:!?()\[\]\"]+|\s-+\s|https?://\S+|\S+\.(?:com|org|io)\S*")
PHRASES_PER_THEME = 30


def theme_names(
    groups: list[list[Source]], vectors: list[np.ndarray], topic: str, embedder: Embedder
) -> list[str]:
    """Each theme named by the phrases its papers share and the other themes' papers don't.

    Candidates are runs of one to three content words that at least two of the
    theme's papers use (titles count double); the local model then ranks them by
    closeness to the theme's centroid less closeness to the other themes' and to
    the topic itself, which every theme shares. KeyBERT does much the same.
    """
    stop = stop_words()
    stem = english_stemmer().stemWord
    topic_stems = {stem(w.lower()) for w in WORD.findall(topic)}
    centroids = np.stack([v.mean(axis=0) for v in vectors])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
    topic_vector = embedder.embed_query(topic)

    def phrases_of(source: Source) -> dict[str, tuple[str, float]]:
        """Lowercased phrase -> (as written, 2 if in the title else 1)."""
        found: dict[str, tuple[str, float]] = {}
        for text, weight in ((source.paper.abstract, 1.0), (source.paper.title, 2.0)):
            for piece in PHRASE_BREAK.split(text):
                run: list[str] = []
                for word in [*WORD.findall(piece), ""]:
                    if word and word.lower() not in stop and len(word) > 2:
                        run.append(word)
                        continue
                    for size in (1, 2, 3):
                        for i in range(len(run) - size + 1):
                            phrase = " ".join(run[i : i + size])
                            stems = {stem(p) for p in re.split(r"[\s-]+", phrase.lower())}
                            if not stems <= topic_stems:
                                found[phrase.lower()] = (phrase, weight)
                    run = []
        return found

    per_group = [[phrases_of(s) for s in group] for group in groups]
    candidates: list[list[str]] = []
    for papers in per_group:
        count: Counter[str] = Counter()  # papers using it, a title counting double
        users: Counter[str] = Counter()
        for phrases in papers:
            count.update({p: w for p, (_, w) in phrases.items()})
            users.update(phrases.keys())
        need = 2 if len(papers) > 1 else 1  # a name the theme's papers share
        ranked = sorted((p for p in count if users[p] >= need), key=lambda p: (-count[p], p))
        candidates.append(ranked[:PHRASES_PER_THEME])

    flat = sorted({p for c in candidates for p in c})
    if not flat:
        return [short_name(g[0].paper.title) or "Other work" for g in groups]
    vecs = dict(zip(flat, embedder.embed_documents(flat), strict=True))
    names = []
    for g, options in enumerate(candidates):
        surface = {p: w for phrases in per_group[g] for p, (w, _) in phrases.items()}
        others = np.delete(centroids, g, axis=0)

        def score(p: str, g: int = g, others: np.ndarray = others) -> float:
            v = vecs[p]
            rival = float((others @ v).max()) if len(others) else 0.0
            return float(centroids[g] @ v) - 0.5 * rival - 0.3 * float(topic_vector @ v)

        picked: list[str] = []
        for phrase in sorted(options, key=lambda p: (-score(p), p)):
            words = {stem(w) for w in re.split(r"[\s-]+", phrase)}
            if any(words & {stem(w) for w in re.split(r"[\s-]+", q)} for q in picked):
                continue  # "cache eviction" after "eviction" says nothing new
            picked.append(phrase)
            if len(picked) == 2:
                break
        words = [surface[p] for p in picked] or [
            short_name(groups[g][0].paper.title) or "Other work"
        ]
        names.append(join_words(words))
    return dedupe_names(names)


def join_words(words: list[str]) -> str:
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return text[:1].upper() + text[1:]


def dedupe_names(names: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def stop_words() -> frozenset[str]:
    generic = {
        "paper", "propose", "proposed", "approach", "method", "methods", "results", "show",
        "shows", "model", "models", "based", "using", "use", "new", "work", "study", "also",
        "existing", "performance", "experiments", "demonstrate", "significantly", "however",
        "while", "large", "language", "llm", "llms", "achieves", "achieve", "introduce",
        "despite", "grows", "grow", "novel", "various", "different", "significant", "key",
        "effective", "effectively", "efficient", "efficiently", "improve", "improves",
        "improved", "improving", "enable", "enables", "enabling", "remains", "recent",
        "recently", "state-of-the-art", "crucial", "challenging", "able", "often", "well",
        "finally", "further", "first", "address", "addresses", "explore", "explores",
        "evaluate", "present", "presents", "framework", "via", "towards", "toward", "including",
        "include", "includes", "produce", "produces", "input", "inputs", "output", "outputs",
    }  # fmt: skip
    return english_stop_words() | generic


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
    backend: OpenAIBackend,
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
        generation = backend.chat_model.stream(
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
        cost = count_tokens(block, settings.model)
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
    generation = backend.chat_model.stream([{"role": "user", "content": prompt}])
    text = strip_references(generation.finish())
    usage.add(generation.usage)
    return f"# Brief: {literal(topic)}\n\n{text.strip()}", dropped


def strip_references(text: str) -> str:
    """The model was told not to write a reference list; if it did, ours replaces it."""
    return re.split(r"^#+\s*(?:References|Bibliography|Sources)\b.*$", text, flags=re.M | re.I)[0]


# --- the parts added after the check ------------------------------------------------------------

EXEMPT = (EXTRACTIVE_NOTE, NO_OPEN_QUESTIONS, "#")


def references(cited: list[Source]) -> str:
    lines = ["## References", ""]
    lines += [
        f"[{s.marker}] {literal(s.paper.title)}  " for s in sorted(cited, key=lambda s: s.marker)
    ]
    return "\n".join(lines).rstrip()


def coverage(relevant: list[Source], cited: list[Source], left_out: list[dict[str, str]]) -> str:
    line = (
        f"**Coverage:** {len(relevant)} paper{'s' if len(relevant) != 1 else ''} found relevant, "
        f"{len(cited)} cited."
    )
    relevant_ids = {s.paper.paper_id for s in relevant}
    uncited = [x for x in left_out if x["paper_id"] in relevant_ids]
    if uncited:
        line += " Left out: " + "; ".join(f"{x['title']} ({x['reason']})" for x in uncited) + "."
    below = len(left_out) - len(uncited)
    if below:
        line += (
            f" {below} more retrieved paper{'s' if below != 1 else ''} fell below the "
            "relevance threshold."
        )
    return line
