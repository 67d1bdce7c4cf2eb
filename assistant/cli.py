"""Command line: parse arguments, call the library, print. No pipeline logic lives here.

Heavy libraries are imported inside the commands, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import AssistantError, CorpusError
from .settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant",
        description="Search and chat with a corpus of paper abstracts, with checked citations.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_index_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--index", type=Path, metavar="DIR", help="index directory (default: .assistant/index)"
        )

    p = sub.add_parser("ingest", help="read corpus files into the index (incremental)")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders (default: data/papers)",
    )
    add_index_option(p)
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="start from scratch; the old index stays usable until the new one is complete",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail on any bad input instead of skipping it; the index is left unchanged",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="hybrid search; with no QUERY, an interactive prompt")
    p.add_argument(
        "query",
        nargs="?",
        metavar="QUERY",
        help="the query, or - to read one query per line from stdin",
    )
    p.add_argument("-k", type=positive_int, default=None, help="papers to return (default: 10)")
    add_index_option(p)
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.add_argument("--source", help="only papers from a source file whose path contains this")
    p.add_argument("--date-from", metavar="YYYY-MM-DD", type=iso_date)
    p.add_argument("--date-to", metavar="YYYY-MM-DD", type=iso_date)
    p.add_argument("--category", help="only papers with this category (e.g. cs.CL)")
    p.set_defaults(func=cmd_search)

    def add_answer_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-k", type=positive_int, default=None, help="papers retrieved as sources (default: 5)"
        )
        add_index_option(p)
        p.add_argument("--json", action="store_true", help="one JSON object per answer")

    p = sub.add_parser("ask", help="a cited answer to one question (or one per stdin line)")
    p.add_argument("question", metavar="QUESTION", help="the question, or - for one per line")
    add_answer_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="a conversation; follow-ups may refer to earlier turns")
    add_answer_options(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("papers", help="corpus statistics; list, find or show papers")
    add_index_option(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list every paper")
    group.add_argument("--find", metavar="TEXT", help="papers whose title contains TEXT")
    group.add_argument("--show", metavar="PAPER_ID", help="one paper in full")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_papers)

    p = sub.add_parser("summarize", help="a themed brief on a topic, every claim cited")
    p.add_argument("topic", metavar="TOPIC", help='e.g. "KV-cache compression"; - reads stdin')
    p.add_argument(
        "--max-papers",
        type=positive_int,
        default=25,
        metavar="N",
        help="papers considered at most (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, metavar="FILE.md", help="also write the brief here")
    p.add_argument("--json", action="store_true", help="one JSON object instead of Markdown")
    add_index_option(p)
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("judge", help="does each evidence support its claim? (JSONL in and out)")
    p.add_argument(
        "--pairs",
        type=Path,
        required=True,
        metavar="FILE",
        help='JSONL, one {"id", "claim", "evidence"} per line',
    )
    p.add_argument(
        "--judge",
        choices=["local", "llm"],
        default="local",
        help="local: offline cross-encoder (default); llm: the configured OpenAI-compatible model",
    )
    p.add_argument(
        "--out", type=Path, metavar="FILE", help='{"id", "score", "label"} lines (default: stdout)'
    )
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("eval", help="score retrieval, citations and answers on the eval datasets")
    p.add_argument(
        "--dataset",
        type=Path,
        metavar="PATH",
        help="a .jsonl file or a folder of them (default: the hand-written evals/datasets)",
    )
    p.add_argument("--judge", choices=["local", "llm"], default="local", help="default: local")
    p.add_argument(
        "--backend",
        choices=["extractive", "openai"],
        default=None,
        help="answer backend (default: ASSISTANT_LLM)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("evals/out/latest"),
        metavar="DIR",
        help="report.json, report.md, report.png; a re-run resumes here (default: %(default)s)",
    )
    p.add_argument(
        "--subset",
        choices=["all", "gate"],
        default="all",
        help="gate: the fixed subset in evals/gate.toml, a few minutes (default: all)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="REPORT",
        help="compare with this report; exit 1 if a gated metric drops beyond its tolerance",
    )
    p.add_argument(
        "--prompts",
        type=Path,
        metavar="DIR",
        help="also run this candidate prompt set on the same items, side by side",
    )
    p.add_argument(
        "--generate",
        type=positive_int,
        metavar="N",
        help="instead: draft N new items with the configured model into evals/datasets/generated/",
    )
    add_index_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)
    return parser


READ_ONLY_COMMANDS = {"search", "papers", "ask", "chat", "summarize"}
INCOMPLETE_WARNING = (
    "warning: the last ingest into this index was cut short; some papers may be missing "
    "(run `python -m assistant ingest` to finish it)"
)


def open_index(settings: Settings):
    from .index import PaperIndex

    index = PaperIndex.open(settings)
    if not index.complete:
        print(INCOMPLETE_WARNING, file=sys.stderr)
    return index


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def iso_date(text: str) -> str:
    """Dates compare as ISO strings, so '2024-3-1' must become '2024-03-01' or be refused."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-03-01") from None


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{env_name(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors())
        raise AssistantError(
            f"bad setting: {problems}", "fix the environment variable or the .env line"
        ) from None


def env_name(field: str) -> str:
    """A field's environment variable: its alias (CHROMA_PORT) or ASSISTANT_ plus its name."""
    return field if field.isupper() else f"ASSISTANT_{field.upper()}"


def main(argv: list[str] | None = None, exit_fast: bool = False) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if getattr(args, "index", None):
            settings = settings.model_copy(update={"index_dir": args.index})
        code = args.func(args, settings)
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


# --- ingest -------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from .corpus import read_corpus
    from .embeddings import make_embedder
    from .index import ingest

    roots = args.paths or [settings.data_dir]
    read = read_corpus(roots)
    for problem in read.problems:
        print(f"{'error' if args.strict else 'skipped'}: {problem}", file=sys.stderr)
    if read.problems and args.strict:
        raise CorpusError(read.problems)
    print(
        f"Read {read.records} records from {len(read.files)} file(s): {len(read.papers)} papers"
        + (f", {len(read.problems)} problem(s) skipped" if read.problems else ""),
        file=sys.stderr,
    )
    try:
        report = ingest(
            settings,
            read,
            roots,
            make_embedder(settings),
            rebuild=args.rebuild,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the index holds whole papers only; run ingest again to resume",
            file=sys.stderr,
        )
        return 130
    print(report.summary())
    return 0


# --- search -------------------------------------------------------------------


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from .embeddings import make_embedder
    from .retrieval import Filters, search

    index = open_index(settings)
    embedder = make_embedder(settings)
    filters = Filters(args.source, args.date_from, args.date_to, args.category)
    if args.query is None and not sys.stdin.isatty():
        raise AssistantError("search needs a QUERY", "give one, or - to read queries from stdin")
    if args.query is None:
        print("Search the papers. An empty line or Ctrl-D quits.", file=sys.stderr)
    for query in queries(args.query, prompt="search> "):
        hits = search(index, embedder, query, k=args.k, mode=args.mode, filters=filters)
        if args.json:
            print(
                json.dumps(
                    {"query": query, "results": [h.to_json() for h in hits]}, ensure_ascii=False
                )
            )
        else:
            print_hits(query, hits)
        sys.stdout.flush()
    return 0


def queries(query: str | None, prompt: str) -> Iterator[str]:
    """The query given, or one per stdin line with '-', or typed at a prompt when None."""
    if query == "-" or (query is None and not sys.stdin.isatty()):
        yield from (line.strip() for line in sys.stdin if line.strip())
    elif query is not None:
        yield query
    else:
        while True:
            try:
                line = input(prompt).strip()
            except EOFError:
                return
            if not line:
                return
            yield line


def print_hits(query: str, hits: list) -> None:
    import textwrap

    if not hits:
        print(f"No papers match {query!r}.")
        return
    for hit in hits:
        print(f"{hit.rank:>2}. {hit.paper.title}  [{hit.paper.paper_id}, {hit.score:.3f}]")
        snippet = textwrap.shorten(hit.snippet, 240, placeholder=" …")
        print(textwrap.indent(textwrap.fill(snippet, 96), "    "))
    print()


# --- ask and chat -------------------------------------------------------------


class Session:
    """What answering needs, opened once per command."""

    def __init__(self, settings: Settings, k: int | None) -> None:
        from .embeddings import make_embedder
        from .llm import make_backend

        self.settings = settings
        self.k = k
        self.index = open_index(settings)
        self.embedder = make_embedder(settings)
        self.backend = make_backend(settings, lambda: self.embedder)

    def turn(self, question: str, conversation, as_json: bool) -> bool:
        """Answer one turn, streaming to a terminal; an LLM failure costs the turn only."""
        from .answer import start_answer
        from .llm import LLMError

        try:
            pending = start_answer(
                question,
                conversation,
                self.index,
                self.embedder,
                self.backend,
                self.settings,
                self.k,
            )
            if as_json:
                answer = pending.finish()
                print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
                return True
            for delta in pending.deltas():
                print(terminal_safe(delta), end="", flush=True)
            answer = pending.finish()
        except LLMError as exc:
            if as_json:
                print(json.dumps({"question": question, "error": str(exc)}), flush=True)
            else:
                print(f"\nerror: {exc}", file=sys.stderr)
            return False
        print_answer_footer(answer)
        return True


def terminal_safe(text: str) -> str:
    """A model can be talked into emitting escape sequences; a terminal would obey them."""
    from .corpus import strip_control

    return strip_control(text)


def print_answer_footer(answer) -> None:
    """The cleaned text was streamed already; what follows is what the check found."""
    check = answer.check
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
    print(f"({describe_cost(answer)}; {answer.latency_s:.2f}s)\n")


def describe_cost(answer) -> str:
    if answer.backend == "extractive":
        return "extractive, no model"
    usage = answer.usage
    cost = "cost unknown" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    return (
        f"{answer.model}; {usage.prompt_tokens} prompt + {usage.completion_tokens} "
        f"completion tokens, {cost}"
    )


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .types import Conversation

    if not args.question.strip():
        raise AssistantError("the question is empty", "ask something, e.g. 'what is MLA?'")
    session = Session(settings, args.k)
    ok = True
    for question in queries(args.question, prompt="ask> "):
        ok = session.turn(question, Conversation(), args.json) and ok
    return 0 if ok else 1


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from .types import Conversation

    session = Session(settings, args.k)
    conversation = Conversation()
    if sys.stdin.isatty():
        how = (
            f"answers by {session.backend.model}"
            if session.backend.name == "openai"
            else "offline extractive answers; set OPENAI_API_KEY for a model's"
        )
        print(
            f"Chat with {len(session.index.papers)} papers ({how}). Follow-ups may refer to "
            "earlier answers. An empty line or Ctrl-D quits.",
            file=sys.stderr,
        )
    for question in queries(None, prompt="you> "):
        session.turn(question, conversation, args.json)
    return 0


# --- summarize ----------------------------------------------------------------


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from .embeddings import make_embedder
    from .llm import make_backend
    from .summarize import summarize

    topic = sys.stdin.read() if args.topic == "-" else args.topic
    index = open_index(settings)
    embedder = make_embedder(settings)
    backend = make_backend(settings, lambda: embedder)
    brief = summarize(
        settings,
        topic,
        index=index,
        embedder=embedder,
        backend=backend,
        max_papers=args.max_papers,
        progress=lambda message: print(f"… {message}", file=sys.stderr, flush=True),
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(brief.markdown + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(brief.to_json(), ensure_ascii=False))
        return 0
    print(terminal_safe(brief.markdown))
    check = brief.check
    if check.invalid_markers:
        print(f"\nRemoved invalid markers: {check.invalid_markers}", file=sys.stderr)
    if check.uncited_sentences:
        print(f"Uncited sentences: {len(check.uncited_sentences)}", file=sys.stderr)
        for sentence in check.uncited_sentences:
            print(f"  - {terminal_safe(sentence)}", file=sys.stderr)
    return 0


# --- papers -------------------------------------------------------------------


def cmd_papers(args: argparse.Namespace, settings: Settings) -> int:

    index = open_index(settings)
    papers = sorted(index.papers.values(), key=lambda p: p.title.casefold())
    if args.show:
        paper = index.papers.get(args.show)
        if paper is None:
            raise AssistantError(
                f"no paper with id {args.show!r}", "find ids with `papers --find TEXT`"
            )
        print(json.dumps(paper.to_dict(), ensure_ascii=False, indent=None if args.json else 2))
        return 0
    if args.find or args.list:
        needle = (args.find or "").casefold()
        found = [p for p in papers if needle in " ".join([p.title, *p.aliases]).casefold()]
        for paper in found:
            if args.json:
                print(
                    json.dumps(
                        {"paper_id": paper.paper_id, "title": paper.title}, ensure_ascii=False
                    )
                )
            else:
                print(f"{paper.paper_id}  {paper.title}")
        if not found and not args.json:
            print("No titles match.", file=sys.stderr)
        return 0
    stats = corpus_stats(index)
    if args.json:
        print(json.dumps(stats))
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


def corpus_stats(index) -> dict:
    from collections import Counter

    papers = list(index.papers.values())
    from .corpus import display_path

    per_source = Counter(display_path(s) for p in papers for s in p.sources)
    dates = sorted(p.date for p in papers if p.date)
    snap = index.snapshot
    return {
        "papers": len(papers),
        "chunks": len(snap.chunk_ids),
        "chunks per paper": round(len(snap.chunk_ids) / max(len(papers), 1), 2),
        "papers in several files": sum(1 for p in papers if len(p.sources) > 1),
        "papers with several titles": sum(1 for p in papers if p.aliases),
        "embedding model": (index.collection.metadata or {}).get("embedding_model"),
        "index": str(index.settings.index_dir),
        "dates": f"{dates[0]} to {dates[-1]}" if dates else "none given",
        "source files": dict(sorted(per_source.items())),
    }


# --- judge --------------------------------------------------------------------


def cmd_judge(args: argparse.Namespace, settings: Settings) -> int:
    from .grounding import make_judge, read_pairs

    rows = read_pairs(args.pairs)  # every line checked before any model loads
    judge = make_judge(settings, args.judge)
    verdicts = judge.judge_many([(row.claim, row.evidence) for row in rows])
    lines = [
        json.dumps({"id": row.id, "score": round(v.score, 4), "label": v.label}, ensure_ascii=False)
        for row, v in zip(rows, verdicts, strict=True)
    ]
    text = "".join(line + "\n" for line in lines)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"judged {len(rows)} pair(s): {json.dumps(judge.describe())}", file=sys.stderr)
    return 0


# --- eval ---------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from .evals import compare_reports, load_report, load_tolerances, run_eval

    if args.generate:
        from .evals.generate import generate_items

        path, count = generate_items(
            settings, args.generate, skipped=lambda line: print(line, file=sys.stderr)
        )
        if count < args.generate:
            print(
                f"drafted {count} of {args.generate}: the rest were skipped (above)",
                file=sys.stderr,
            )
        print(f"wrote {count} draft item(s) to {path}; review them before use")
        return 0
    baseline = load_report(args.baseline) if args.baseline else None  # fail before running
    try:
        report = run_eval(
            settings,
            dataset=args.dataset,
            judge=args.judge,
            backend=args.backend,
            out_dir=args.out,
            prompts_dir=args.prompts,
            subset=args.subset,
            show_progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished items are kept in {args.out}/items.jsonl; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print_summary(report, args.out)
    candidate_regressed = bool(report.get("prompt_comparison", {}).get("regressed"))
    if candidate_regressed:
        print("FAILED: the candidate prompts regress a gated metric", file=sys.stderr)
    if baseline is None:
        return 1 if candidate_regressed else 0
    comparison = compare_reports(baseline, report, load_tolerances())
    print(f"\nAgainst the baseline {args.baseline}:\n")
    print(comparison.to_markdown())
    (args.out / "comparison.md").write_text(comparison.to_markdown(), encoding="utf-8")
    if comparison.judge_changed:
        print(
            "FAILED: the baseline was scored by another judge, so the gate can't compare; "
            "remake the baseline with this judge (evals/README.md, 'The gate')",
            file=sys.stderr,
        )
        return 1
    if comparison.regressed:
        failed = ", ".join(r.metric for r in comparison.rows if r.regressed)
        print(f"FAILED: {failed} dropped beyond tolerance (evals/gate.toml)", file=sys.stderr)
        return 1
    return 1 if candidate_regressed else 0


def print_summary(report: dict, out_dir: Path) -> None:
    """What the CLI prints: the metrics, then (with --prompts) both prompt sets side by side."""
    from .evals.compare import Comparison, Row
    from .evals.report import fmt

    width = max((len(n) for n in report["metrics"]), default=0)
    run = report.get("run", {})
    print(
        f"{report['dataset']['items']} items, {report['backend']['name']} backend, "
        f"{report['judge'].get('judge', '?')} judge ({run.get('items_resumed', 0)} resumed, "
        f"{run.get('llm_calls', 0)} model calls, {run.get('seconds', 0):.0f} s)"
    )
    for name, m in report["metrics"].items():
        print(f"  {name:<{width}}  {fmt(m['value'])}  ({m['numerator']:g}/{m['denominator']:g})")
    cost = report.get("cost", {})
    if cost.get("answer_items"):
        print(
            f"  per answer: p50 {fmt(cost['latency_p50_s'])} s, "
            f"{cost['prompt_tokens_per_item']} prompt + {cost['completion_tokens_per_item']} "
            "completion tokens"
        )
    comparison = report.get("prompt_comparison")
    if comparison:
        rows = [Row(**r) for r in comparison["rows"]]
        table = Comparison(rows, comparison["items"], comparison["notes"]).to_markdown(
            "current", "candidate"
        )
        print(f"\nCandidate prompts against the current ones:\n\n{table}")
    print(f"report: {Path(out_dir) / 'report.md'} (and report.json, report.png)")
