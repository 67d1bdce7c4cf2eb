"""Command line: parse arguments, call the library, print. No pipeline logic lives here.

Each command is a module of this package with two functions: `add_parser`, which declares
its arguments, and `run`, which does the work with the `Components` it is handed. Heavy
libraries are imported inside the commands, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..components import Components
from ..errors import AssistantError
from ..settings import Settings, load_settings
from . import answering, corpus_commands, evaluating, judging, searching, summarizing

COMMANDS = (corpus_commands, searching, answering, summarizing, judging, evaluating)
READ_ONLY_COMMANDS = {"search", "papers", "ask", "chat", "summarize"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant",
        description="Search and chat with a corpus of paper abstracts, with checked citations.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub)
    return parser


def main(
    argv: list[str] | None = None,
    exit_fast: bool = False,
    make_components: Callable[[Settings], Components] = Components,
) -> int:
    """`make_components` builds what the commands use from the settings; tests pass one
    that hands in a fake embedder or a model aimed at their scripted server."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if getattr(args, "index", None):
            settings = settings.model_copy(update={"index_dir": args.index})
        code = args.func(args, make_components(settings))
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    if exit_fast and args.command in READ_ONLY_COMMANDS:
        # Tearing down torch and transformers at exit costs ~0.9 s, a fifth of a
        # cold search. A read-only command has nothing left to flush but stdio.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
