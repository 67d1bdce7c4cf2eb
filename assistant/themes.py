"""Which of the retrieved papers a brief covers, and the themes it groups them into.

Split from summarize.py, which runs the pipeline: this is the part that works on
the papers' vectors and words rather than on the brief's text. `diverse` keeps a
set of papers unlike each other (maximal marginal relevance), `cluster` groups
them (Ward) and `theme_names` names each group by the phrases its papers share.
The writers in brief_writing.py take the resulting `Theme`s; nothing here knows
how a brief is written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .embeddings import Embedder
from .extractive import short_name
from .text import english_stemmer, english_stop_words
from .types import Hit, Source

MAX_THEMES = 5


@dataclass
class Theme:
    name: str
    paper_ids: list[str]


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
