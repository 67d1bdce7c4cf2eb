"""Draft more eval items from the corpus with the configured model (`eval --generate N`).

Hand-written items are the ground truth; generated ones are drafts a person reviews. So they
are marked `"generated": true` with the model and prompt that wrote them, and go to
evals/datasets/generated/, which a default eval run never reads (`--dataset
evals/datasets/generated` runs them). A draft is kept only if it passes the checks a
hand-written item was held to: a question, 1-3 facts, no copied title, and every number in
a fact present in the abstract.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..cache import DiskCache
from ..chat_model import CachingChatModel, OpenAIChat
from ..errors import AssistantError
from ..settings import Settings
from ..text import numbers_in, strip_fence
from .datasets import DATASETS_DIR, json_lines

GENERATED_DIR = DATASETS_DIR / "generated"


def parse_draft(reply: str) -> dict[str, Any] | None:
    """`{"question": str, "facts": [str, ...]}` from the reply (a code fence allowed), or None."""
    text = strip_fence(reply)
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    question, facts = value.get("question"), value.get("facts")
    if not isinstance(question, str) or not question.strip():
        return None
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        return None
    return {"question": " ".join(question.split()), "facts": [" ".join(f.split()) for f in facts]}


def problems(draft: dict[str, Any], title: str, abstract: str) -> list[str]:
    """Why a draft can't be used; empty when it can."""
    found = []
    if not 1 <= len(draft["facts"]) <= 3:
        found.append(f"{len(draft['facts'])} facts (want 1-3)")
    head = title.split(":")[0].strip()
    if head and len(head) > 3 and head.casefold() in draft["question"].casefold():
        found.append(f"the question names the paper ({head!r})")
    numbers = numbers_in(abstract)
    for fact in draft["facts"]:
        missing = numbers_in(fact) - numbers
        if missing:
            found.append(f"a fact has numbers the abstract lacks: {sorted(missing)}")
    return found


def generate_items(
    settings: Settings,
    n: int,
    *,
    index: Any = None,
    out_path: Path | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    skipped: Callable[[str], None] | None = None,
) -> tuple[Path, int]:
    """Draft up to n single-paper items from papers not drafted before; append them to
    out_path (default evals/datasets/generated/answers.jsonl). Paper choice is seeded, and
    model calls go through the eval cache, so the same command drafts the same items.
    `skipped` gets a line for each draft rejected, saying why (the CLI prints them)."""
    if settings.backend != "openai":
        raise AssistantError(
            "drafting eval items needs a model", "set OPENAI_API_KEY (and OPENAI_BASE_URL)"
        )
    from ..prompts import load_prompt, prompt_versions

    if index is None:
        from ..index import PaperIndex

        index = PaperIndex.open(settings)
    out_path = Path(out_path or GENERATED_DIR / "answers.jsonl")
    existing = read_existing(out_path)
    used = {item.get("generator", {}).get("paper_id") for item in existing}
    papers = sorted(
        (
            p for p in index.papers.values() if p.paper_id not in used and len(p.abstract) >= 100
        ),  # too short to ask about
        key=lambda p: p.paper_id,
    )
    random.Random(seed).shuffle(papers)
    cache = DiskCache(cache_dir or settings.index_dir.parent / "eval-cache", "llm")
    chat = CachingChatModel(OpenAIChat(settings), cache)
    prompt = load_prompt("generate", settings.prompts_dir)
    label = prompt_versions({"generate": prompt})["generate"]
    rows: list[dict[str, Any]] = []
    # After the highest id, not the count: a draft deleted by review must not free its id.
    number = max((int(m.group(1)) for m in map(ID.fullmatch, ids_of(existing)) if m), default=0)
    for paper in papers:
        if len(rows) == n:
            break
        text = prompt.render(title=paper.title, abstract=paper.abstract)
        reply = chat.stream([{"role": "user", "content": text}]).finish()
        draft = parse_draft(reply)
        why = ["the reply is not the JSON asked for"] if draft is None else []
        why = why or problems(draft or {}, paper.title, paper.abstract)
        if why:
            if skipped is not None:
                skipped(f"skipped {paper.paper_id}: {'; '.join(why)}")
            continue
        number += 1
        rows.append(
            {
                "id": f"gen-single-{number:04d}",
                "kind": "single",
                "question": draft["question"],  # type: ignore[index]
                "gold_titles": [paper.title, *paper.aliases],
                "facts": draft["facts"],  # type: ignore[index]
                "generated": True,
                "generator": {
                    "model": settings.model,
                    "prompt": f"generate@{label}",
                    "paper_id": paper.paper_id,
                    "created": datetime.now(UTC).date().isoformat(),
                },
            }
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out_path, len(rows)


ID = re.compile(r"gen-single-(\d+)")


def ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [str(item.get("id", "")) for item in items]


def read_existing(path: Path) -> list[dict[str, Any]]:
    """The drafts already written; a line a reviewer broke is named, not a bare parse error."""
    return [item for _, item in json_lines(path)] if path.is_file() else []
