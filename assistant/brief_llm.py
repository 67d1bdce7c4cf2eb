"""Writing a brief with a model: map (notes on each abstract), then reduce (the brief).

The model writes the overview and the themes from its notes; everything a model could
get wrong without anyone noticing is left to the code that reads the abstracts: the
agreements (only what the grounding judge confirms), the open questions (only what an
abstract states as a limitation) and the evidence table, so both writers produce the
same brief around different prose. The citation check in summarize.py then runs on it.
"""

from __future__ import annotations

import re

from .brief_sentences import normalized
from .brief_writing import Progress, group_markers, left
from .chat_model import ChatModel
from .errors import TopicError
from .prompts import Prompt, defuse, source_block
from .settings import Settings
from .text import literal, neutralize_markers, split_sentences
from .themes import Theme
from .tokens import count_tokens
from .types import Source, Usage


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
    text = drop_repeats(strip_references(generation.finish()))
    usage.add(generation.usage)
    return f"# Brief: {literal(topic)}\n\n{text.strip()}", dropped


OURS = re.compile(
    r"^#+\s*(?:References|Bibliography|Sources|Agreements|Disagreements|Trade-?offs|Open "
    r"questions|Limitations|Evidence)\b.*$",
    re.MULTILINE | re.IGNORECASE,
)


def strip_references(text: str) -> str:
    """The model writes the overview and themes only; a reference list, agreements, open
    questions or a table it wrote anyway are cut, since ours are built from the abstracts."""
    return OURS.split(text)[0]


def drop_repeats(text: str) -> str:
    """A sentence the model wrote twice (the overview restating a theme) is kept once."""
    seen: set[str] = set()
    lines = []
    for line in text.splitlines():
        bullet = re.match(r"^\s*(?:[-*]|\d+[.)])\s+", line)
        lead = bullet.group(0) if bullet else ""
        kept = []
        for sentence in split_sentences(line[len(lead) :]):
            key = normalized(sentence)
            if len(key.split()) < 4 or key not in seen:
                seen.add(key)
                kept.append(sentence)
        if kept or not line.strip():
            lines.append(lead + " ".join(kept))
    return "\n".join(lines)
