"""`ask` (one question, or one per stdin line) and `chat` (a conversation with follow-ups)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..components import Components
from ..errors import AssistantError
from .options import (
    add_index_option,
    announce_retries,
    opened_index,
    positive_int,
    queries,
    terminal_safe,
)

if TYPE_CHECKING:
    from ..answer import Answer
    from ..types import Conversation


def add_parsers(sub: Any) -> None:
    def add_answer_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-k", type=positive_int, default=None, help="papers retrieved as sources (default: 5)"
        )
        add_index_option(p)
        p.add_argument("--json", action="store_true", help="one JSON object per answer")

    p = sub.add_parser("ask", help="a cited answer to one question (or one per stdin line)")
    p.add_argument("question", metavar="QUESTION", help="the question, or - for one per line")
    add_answer_options(p)
    p.set_defaults(func=run_ask)

    p = sub.add_parser("chat", help="a conversation; follow-ups may refer to earlier turns")
    add_answer_options(p)
    p.set_defaults(func=run_chat)


def run_ask(args: argparse.Namespace, components: Components) -> int:
    from ..types import Conversation

    if not args.question.strip():
        raise AssistantError("the question is empty", "ask something, e.g. 'what is MLA?'")
    opened_index(components)
    announce_retries()
    ok = True
    for question in queries(args.question, prompt="ask> "):
        ok = answer_turn(components, question, Conversation(), args) and ok
    return 0 if ok else 1


def run_chat(args: argparse.Namespace, components: Components) -> int:
    from ..types import Conversation

    index = opened_index(components)
    announce_retries()
    conversation = Conversation()
    if sys.stdin.isatty():
        backend = components.backend
        how = (
            f"answers by {backend.model}"
            if backend.chat_model is not None
            else "offline extractive answers; set OPENAI_API_KEY for a model's"
        )
        print(
            f"Chat with {len(index.papers)} papers ({how}). Follow-ups may refer to "
            "earlier answers. An empty line or Ctrl-D quits.",
            file=sys.stderr,
        )
    for question in queries(None, prompt="you> "):
        answer_turn(components, question, conversation, args)
    return 0


def answer_turn(
    components: Components, question: str, conversation: Conversation, args: argparse.Namespace
) -> bool:
    """Answer one turn, streaming to a terminal; an LLM failure costs the turn only."""
    from ..answer import start_answer

    streamed = False
    try:
        pending = start_answer(
            question,
            conversation,
            components.index,
            components.embedder,
            components.backend,
            components.settings,
            args.k,
        )
        if args.json:
            answer = pending.finish()
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            return True
        for delta in pending.deltas():
            streamed = True
            print(terminal_safe(delta), end="", flush=True)
        answer = pending.finish()
    except AssistantError as exc:  # the model failed, or the question can't be asked
        if args.json:
            print(json.dumps({"question": question, "error": str(exc)}), flush=True)
        else:
            if streamed:  # the part that arrived stays, on its own line, marked
                print("\n[the answer above is incomplete]", flush=True)
            print(f"error: {exc}", file=sys.stderr)
        return False
    print_answer_footer(answer)
    return True


def print_answer_footer(answer: Answer) -> None:
    """The cleaned text was streamed already; what follows is what the check found."""
    check = answer.check
    if answer.truncated:
        print("\n[cut off: the model reached its output limit before finishing]")
    if check.invalid_markers:
        print(f"\n[removed citations to no source: {check.invalid_markers}]")
    print()
    if answer.citations:
        print("Sources:")
        for s in answer.citations:
            print(f"  [{s.marker}] {s.paper.title}")
    if check.uncited_sentences:
        print(f"Uncited sentences: {len(check.uncited_sentences)}")
        for sentence in check.uncited_sentences:
            print(f"  - {sentence}")
    model, tokens, cost = answer.cost_parts()
    described = (
        "extractive, no model" if answer.backend == "extractive" else f"{model}; {tokens}, {cost}"
    )
    print(f"({described}; {answer.latency_s:.2f}s)\n")
