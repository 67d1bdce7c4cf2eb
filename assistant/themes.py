"""The themes a brief groups its papers into.

Split from summarize.py, which runs the pipeline: this is the part that works on
the papers' vectors and words rather than on the brief's text. `cluster` groups
them (Ward) and `theme_names` names each group by the phrases its papers share.
The writers in brief_writing.py take the resulting `Theme`s; nothing here knows
how a brief is written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .brief_sentences import GENERIC_NAMES, name_of
from .embeddings import Embedder
from .text import english_stemmer, english_stop_words, strip_markup
from .types import Source


@dataclass
class Theme:
    name: str
    paper_ids: list[str]


# --- choosing and grouping the papers -----------------------------------------------------------


MOST_PER_THEME = 6  # a theme of more is a list, not a theme


def themes_for(n: int) -> int:
    """About four papers a theme, at most six; one theme for four papers or fewer."""
    if n < 5:
        return 1
    return max(2, math.ceil(n / MOST_PER_THEME), round(n / 4))


def theme_groups(vectors: np.ndarray) -> list[list[int]]:
    """The papers (rows) in themes of two to six, or one theme when there are few.

    A theme of one paper is a paper, and a theme of twelve is a list: Ward's merges
    stop at six, and a paper left alone joins the nearest theme with room (or takes
    the nearest paper of a full one, so neither is left alone).
    """
    n = len(vectors)
    if n <= 2:
        return [list(range(n))]
    groups = cluster(vectors, themes_for(n), most=MOST_PER_THEME)
    return sorted(no_singletons(groups, vectors), key=min)


def cluster(vectors: np.ndarray, k: int, most: int | None = None) -> list[list[int]]:
    """Ward's agglomerative clustering: deterministic, no seeds, and fine for 25 points.

    Ward merges the pair whose union grows the within-theme spread least, which
    keeps themes of comparable size where average linkage leaves singletons. With
    `most`, no merge makes a group larger, so it may stop above k groups.
    Groups come back ordered by their best member (lowest index = most relevant).
    """
    groups = [[i] for i in range(len(vectors))]
    centroids = [vectors[i].astype(np.float64) for i in range(len(vectors))]
    while len(groups) > k:
        best, pair = math.inf, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                na, nb = len(groups[a]), len(groups[b])
                if most is not None and na + nb > most:
                    continue
                cost = ward_cost(centroids[a], na, centroids[b], nb)
                if cost < best:
                    best, pair = cost, (a, b)
        if pair is None:
            break
        a, b = pair
        na, nb = len(groups[a]), len(groups[b])
        centroids[a] = (na * centroids[a] + nb * centroids.pop(b)) / (na + nb)
        groups[a] = sorted(groups[a] + groups.pop(b))
    return sorted(groups, key=min)


def ward_cost(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> float:
    return na * nb / (na + nb) * float(np.sum((a - b) ** 2))


def no_singletons(groups: list[list[int]], vectors: np.ndarray) -> list[list[int]]:
    """Each lone paper joins the cheapest group with room, else takes the nearest paper of
    the nearest full group."""
    groups = [list(g) for g in groups]
    while len(groups) > 1 and (alone := next((g for g in groups if len(g) == 1), None)):
        point = vectors[alone[0]].astype(np.float64)
        others = [g for g in groups if g is not alone]
        room = [g for g in others if len(g) < MOST_PER_THEME]
        if room:
            target = min(room, key=lambda g: ward_cost(point, 1, vectors[g].mean(axis=0), len(g)))
            target += alone
        else:
            nearest = min(others, key=lambda g: ward_cost(point, 1, vectors[g].mean(axis=0), 6))
            taken = min(nearest, key=lambda i: float(np.sum((vectors[i] - point) ** 2)))
            nearest.remove(taken)
            alone.append(taken)
            continue
        groups.remove(alone)
    return [sorted(g) for g in groups]


WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]")
PHRASE_BREAK = re.compile(r"[.,;:!?()\[\]\"]+|\s-+\s|https?://\S+|\S+\.(?:com|org|io)\S*")
PHRASES_PER_THEME = 30
RERANKED = 6  # per theme, the phrases the local model re-ranks


def theme_names(
    groups: list[list[Source]],
    vectors: list[np.ndarray],
    topic: str,
    embedder: Embedder,
    corpus: list[str] | None = None,
) -> list[str]:
    """Each theme named by phrases distinctive for its papers that still belong to the topic.

    Candidates are runs of one to three content words (markup and stop words never among
    them) that at least two of the theme's papers use, titles counting double. Each is
    scored by how much more the theme's papers use it than the other themes' papers, how
    rare it is in the whole corpus (`corpus`, lower-cased abstracts: "memory" names no
    theme of a corpus about LLMs), how close the local model puts it to the theme's
    centroid rather than the others', and how close to the topic: a theme of a brief on
    speculative decoding is named by "draft model", not by "expert parallelism".
    """
    stop = stop_words()
    stem = english_stemmer().stemWord
    topic_stems = topic_words(topic, stem)
    centroids = np.stack([v.mean(axis=0) for v in vectors])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
    per_group = [[phrases_of(s, stop, stem, topic_stems) for s in group] for group in groups]
    candidates, share = shared_phrases(per_group)
    rarity = corpus_rarity(sorted({p for c in candidates for p in c}), corpus or [])

    def lexical(p: str, g: int) -> float:
        rest = max((share[h].get(p, 0.0) for h in range(len(groups)) if h != g), default=0.0)
        return (min(share[g][p], 1.0) - rest) * rarity[p] + 0.1 * (p.count(" ") > 0)

    # Words first (cheap), the model only for each theme's best few.
    short = [
        sorted(c, key=lambda p, g=g: (-lexical(p, g), p))[:RERANKED]
        for g, c in enumerate(candidates)
    ]
    flat = sorted({p for c in short for p in c})
    if not flat:
        return dedupe_names([fallback_name(g) for g in groups])
    vecs = dict(zip(flat, embedder.embed_documents(flat), strict=True))
    topic_vector = embedder.embed_query(topic)
    names = []
    for g, options in enumerate(short):
        surface = {p: w for phrases in per_group[g] for p, (w, _) in phrases.items()}
        others = np.delete(centroids, g, axis=0)

        def score(p: str, g: int = g, others: np.ndarray = others) -> float:
            v = vecs[p]
            rival = float((others @ v).max()) if len(others) else 0.0
            semantic = float(centroids[g] @ v) - 0.5 * rival
            return lexical(p, g) + 0.5 * semantic + 0.4 * float(topic_vector @ v)

        picked = pick_phrases(sorted(options, key=lambda p: (-score(p), p)), stem)
        words = [as_written(surface[p]) for p in picked] or [fallback_name(groups[g])]
        names.append(join_words(words))
    return dedupe_names(names)


def topic_words(topic: str, stem: Callable[[str], str]) -> set[str]:
    """The topic's stems, hyphenated words split ("Mixture-of-Experts"), and its initials
    as an acronym might spell them ("moe"): a theme is never named by the topic itself."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", topic.lower()) if w]
    initials = "".join(w[0] for w in words)
    acronyms = {
        initials[i:j] for i in range(len(initials)) for j in range(i + 2, len(initials) + 1)
    }
    return {stem(w) for w in words} | acronyms | {stem(a) for a in acronyms}


def phrases_of(
    source: Source, stop: frozenset[str], stem: Callable[[str], str], topic_stems: set[str]
) -> dict[str, tuple[str, float]]:
    """Lowercased phrase -> (as written, 2 if in the title else 1), markup stripped first."""
    found: dict[str, tuple[str, float]] = {}
    texts = ((strip_markup(source.paper.abstract), 1.0), (strip_markup(source.paper.title), 2.0))
    for text, weight in texts:
        for piece in PHRASE_BREAK.split(text):
            run: list[str] = []
            for word in [*WORD.findall(piece), ""]:
                if word and word.lower() not in stop and len(word) > 2:
                    run.append(word)
                    continue
                for size in (1, 2, 3):
                    for i in range(len(run) - size + 1):
                        phrase = " ".join(run[i : i + size])
                        parts = re.split(r"[\s-]+", phrase.lower())
                        if not all(
                            stem(w) in topic_stems or w.rstrip("s") in topic_stems for w in parts
                        ):
                            found[phrase.lower()] = (
                                phrase,
                                max(weight, found.get(phrase.lower(), ("", 0.0))[1]),
                            )
                run = []
    return found


def shared_phrases(
    per_group: list[list[dict[str, tuple[str, float]]]],
) -> tuple[list[list[str]], list[dict[str, float]]]:
    """Per theme: the phrases at least two of its papers use (best first), and for every
    phrase the share of the theme's papers using it (a title use counting double)."""
    candidates, shares = [], []
    for papers in per_group:
        count: Counter[str] = Counter()
        users: Counter[str] = Counter()
        for phrases in papers:
            count.update({p: w for p, (_, w) in phrases.items()})
            users.update(phrases.keys())
        need = 2 if len(papers) > 1 else 1
        surface = {p: w for phrases in papers for p, (w, _) in phrases.items()}
        titled = Counter(p for phrases in papers for p, (_, w) in phrases.items() if w > 1)
        ranked = sorted(
            (p for p in count if users[p] >= need and nameable(surface[p], titled[p] >= need)),
            key=lambda p: (-count[p], p),
        )
        candidates.append(ranked[:PHRASES_PER_THEME])
        shares.append({p: c / (2 * len(papers)) for p, c in count.items()})
    return candidates, shares


def nameable(phrase: str, in_titles: bool) -> bool:
    """Two or three words, or one that is a name ("KV", "MoE", "GPT-4") or that the theme's
    titles use: a plain word alone ("little", "reaches") is too often not even a noun."""
    if " " in phrase:
        return True
    if phrase in GENERIC_NAMES or ADJECTIVE.search(phrase.lower()):
        return False
    return coined(phrase) or in_titles


def coined(word: str) -> bool:
    """'KV', 'MoE', 'GPT-4': capitals after the first letter, or digits."""
    return any(c.isupper() for c in word[1:]) or any(c.isdigit() for c in word)


def corpus_rarity(phrases: list[str], corpus: list[str]) -> dict[str, float]:
    """1 for a phrase no other paper of the corpus uses, falling to 0 as all of them do."""
    if not corpus:
        return dict.fromkeys(phrases, 0.5)
    top = math.log(len(corpus) + 1)
    return {
        p: math.log((len(corpus) + 1) / (1 + sum(p in text for text in corpus))) / top
        for p in phrases
    }


def as_written(phrase: str) -> str:
    """'Decoding Heads' (a title's capitals) -> 'decoding heads'; 'KV cache', 'MoE' stay."""
    return " ".join(w.lower() if w[:1].isupper() and w[1:].islower() else w for w in phrase.split())


def pick_phrases(ranked: list[str], stem: Callable[[str], str]) -> list[str]:
    picked: list[str] = []
    for phrase in ranked:
        if ADJECTIVE.search(phrase.split()[-1]):
            continue
        words = {stem(w) for w in re.split(r"[\s-]+", phrase)}
        if any(words & {stem(w) for w in re.split(r"[\s-]+", q)} for q in picked):
            continue  # "cache eviction" after "eviction" says nothing new
        picked.append(phrase)
        if len(picked) == 2:
            break
    return picked


def fallback_name(group: list[Source]) -> str:
    """No phrase the theme's papers share: the methods it holds, by name ("SpeCache and
    Speculative MoE"), which says more than "Other work"."""
    names = [n for n in (name_of(s.paper) for s in group) if n]
    if not names:
        return "Other work"
    if len(names) == 1:
        return f"{names[0]} and related work"
    more = len(group) - 2
    return join_words(names[:2]) + (f" and {more} more" if more > 0 else "")


def join_words(words: list[str]) -> str:
    """'a', 'b', 'c' -> 'a, b and c'; a name keeps its case, so it can sit mid-sentence
    (headings capitalise it)."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


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
        "more", "less", "many", "much", "several", "other", "others", "make", "makes", "way",
        "ways", "across", "without", "within", "thus", "yet", "still", "even", "given",
    } | MARKUP_WORDS  # fmt: skip
    return english_stop_words() | generic | FUNCTION_WORDS


# bm25s's list is Lucene's 33 words; a theme's name must not be "our" or "beyond" either.
FUNCTION_WORDS = frozenset({
    "about", "above", "after", "again", "against", "all", "almost", "along", "already", "also",
    "although", "always", "am", "among", "another", "any", "anyone", "anything", "around",
    "because", "been", "before", "being", "below", "between", "beyond", "both", "can", "could",
    "did", "do", "does", "doing", "done", "down", "during", "each", "either", "else", "enough",
    "ever", "every", "few", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "its", "itself",
    "just", "least", "like", "may", "me", "might", "mine", "more", "most", "much", "must",
    "my", "myself", "neither", "never", "nor", "now", "off", "often", "once", "one", "only",
    "onto", "other", "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps",
    "quite", "rather", "same", "she", "should", "since", "so", "some", "something",
    "sometimes", "still", "than", "them", "themselves", "therefore", "those", "though",
    "through", "thus", "too", "toward", "towards", "under", "unless", "until", "upon", "us",
    "very", "via", "was", "we", "were", "what", "whatever", "when", "where", "whether",
    "which", "while", "who", "whom", "whose", "why", "would", "yet", "you", "your", "yours",
    "yourself", "overview", "fast", "faster", "simple", "simply", "well",
})  # fmt: skip
# A name is a noun phrase: one that ends in an adjective ("fast and scalable") names nothing.
ADJECTIVE = re.compile(r"(?:able|ible|ive|ous|ful|less|ly|est)$")


# Tag and attribute names: stripped with the markup, and never a theme's name even if some
# survive in text that only looks like markup ("<img" cut off mid-tag, "onerror=").
MARKUP_WORDS = frozenset({
    "script", "img", "src", "href", "onerror", "onload", "onclick", "iframe", "div", "span",
    "html", "http", "https", "www", "alt", "style", "class", "nbsp", "amp", "quot", "svg",
    "javascript", "alert", "title", "titles", "td", "tr", "br", "hr", "url", "uri", "xml",
    "css", "png", "jpg",
})  # fmt: skip
