"""Running an eval: open what the items need once, run each item, resume, write the report.

`run_eval` is the entry point (the CLI's and the UI's). `Harness` holds what is opened once,
the index, embedder, backend, judge and caches, and runs one item at a time; what an item
scores is decided in `scoring`, from what the harness ran.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import DiskCache, stable_hash
from ..chat_model import CachingChatModel, CountingChatModel
from ..components import Components
from ..errors import AssistantError
from ..llm import Backend, OpenAIBackend
from ..settings import Settings, public_url
from . import scoring
from .compare import aggregate, aggregate_by_kind, compare_reports, cost_summary
from .datasets import (
    EvalItem,
    gold_ids,
    load_dataset,
    load_tolerances,
    select_subset,
    subset_strides,
)
from .report import (
    describe_judge,
    prompt_records,
    provenance,
    public_settings,
    source_hash,
    volatile_free,
    write_report,
)

if TYPE_CHECKING:
    from ..grounding import Judge

HARNESS_VERSION = 1  # bump when scoring changes, so resumed runs don't mix old and new items
SUMMARY_MAX_PAPERS = 25  # papers a summary may draw on; gold lists have 4-14


def run_eval(
    settings: Settings,
    *,
    dataset: Path | None = None,
    judge: str = "local",
    backend: str | None = None,
    out_dir: Path,
    prompts_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    subset: str | dict[str, int] | None = None,
    cache_dir: Path | None = None,
    show_progress: bool = False,
    components: Components | None = None,
) -> dict:
    """Evaluate, write out_dir/report.json, report.md and report.png, and return the report.

    Resumable: each finished item is appended to out_dir/items.jsonl with a key made of
    everything that determines its result (settings, prompts, judge, index generation, the
    item itself); a re-run skips the items whose key matches. `subset` is "gate" (the strides
    in evals/gate.toml), a {file stem: stride} dict, or None for every item.

    With `prompts_dir`, the current prompts run first (into out_dir/current), then the
    candidate set (into out_dir/candidate); the returned report is the candidate's, with a
    `prompt_comparison` section that sets both side by side, per metric and per item.
    `components` hands in what the caller has open already (the UI's index, a test's fake
    judge); anything it doesn't hold is opened from the settings.
    """
    if backend is not None:
        settings = settings.model_copy(update={"llm": backend})
    if prompts_dir is not None:
        return run_prompt_comparison(
            settings,
            Path(prompts_dir),
            out_dir=Path(out_dir),
            dataset=dataset,
            judge=judge,
            progress=progress,
            subset=subset,
            cache_dir=cache_dir,
            show_progress=show_progress,
            components=components,
        )

    harness = Harness.open(settings, judge_name=judge, cache_dir=cache_dir, components=components)
    items = load_dataset(dataset)
    strides = subset_strides(subset)
    if strides:
        items = select_subset(items, strides)
    harness.gold = gold_ids(items, harness.index.papers)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "items.jsonl"
    keys = {item.uid: harness.item_key(item) for item in items}
    done = resume(log, keys)
    started = time.perf_counter()
    records = run_items(harness, items, keys, done, log, progress, show_progress)
    report = harness.report([records[item.uid] for item in items], dataset, strides)
    report["run"] = {
        "items": len(items),
        "items_resumed": len(done),
        "items_run": len(items) - len(done),
        "seconds": round(time.perf_counter() - started, 2),
        **harness.stats(),
    }
    write_report(report, out_dir)
    return report


def run_prompt_comparison(
    settings: Settings,
    prompts_dir: Path,
    *,
    out_dir: Path,
    judge: str = "local",
    components: Components | None = None,
    **options: Any,
) -> dict:
    """`run_eval --prompts`: the current prompts, then the candidate set, by one judge; the
    candidate's report with a `prompt_comparison` section. `options` are run_eval's others."""
    if settings.backend == "extractive":
        raise AssistantError(
            "--prompts needs a model: the extractive backend uses no prompts",
            "set OPENAI_API_KEY (or --backend openai) to compare prompt sets",
        )
    from ..prompts import load_prompt

    for name in ("answer", "condense", "summarize_map", "summarize_reduce"):
        load_prompt(name, prompts_dir)  # a broken candidate fails before anything runs
    # One judge, from the current settings, scores both sides: a candidate prompts
    # folder changes what is judged, never the judge.
    opened = components or Components(settings)
    shared = Components(
        settings,
        index=opened.index,
        embedder=opened.embedder,
        chat_model=opened.chat_model,
        judge=opened.make_judge(judge),
    )
    common = dict(options, judge=judge, components=shared)
    current = run_eval(settings, out_dir=out_dir / "current", **common)
    candidate_settings = settings.model_copy(update={"prompts_dir": Path(prompts_dir)})
    candidate = run_eval(candidate_settings, out_dir=out_dir / "candidate", **common)
    comparison = compare_reports(current, candidate, load_tolerances())
    report = dict(candidate)
    report["prompt_comparison"] = {
        "current": {k: current[k] for k in ("prompts", "metrics", "git")},
        "current_report": str(out_dir / "current" / "report.json"),
        "candidate_report": str(out_dir / "candidate" / "report.json"),
        **comparison.to_json(),
    }
    write_report(report, out_dir, comparison)
    return report


def run_items(
    harness: Harness,
    items: list[EvalItem],
    keys: dict[str, str],
    done: dict[str, dict],
    log: Path,
    progress: Callable[[int, int], None] | None = None,
    show_progress: bool = False,
) -> dict[str, dict]:
    """Every item's record: the `done` ones as they are, the others run now, each appended
    to the log (and synced) as it finishes, so an interrupted run loses no finished item."""
    records: dict[str, dict] = dict(done)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(done), file=sys.stderr, unit="item", desc="eval")
    try:
        finished = len(done)
        if progress is not None:
            progress(finished, len(items))
        with open(log, "a", encoding="utf-8") as f:
            for item in items:
                if item.uid in records:
                    continue
                record = harness.evaluate(item)
                records[item.uid] = record
                f.write(json.dumps({"key": keys[item.uid], "record": record}) + "\n")
                f.flush()
                os.fsync(f.fileno())
                finished += 1
                if bar is not None:
                    bar.update(1)
                if progress is not None:
                    progress(finished, len(items))
    finally:
        if bar is not None:
            bar.close()
    return records


def resume(log: Path, keys: dict[str, str]) -> dict[str, dict]:
    """The items a previous run of this configuration finished; the log keeps only those."""
    done = read_done(log, keys)
    with open(log, "w", encoding="utf-8") as f:  # drop stale lines; keep what still counts
        for uid, record in done.items():
            f.write(json.dumps({"key": keys[uid], "record": record}, ensure_ascii=False) + "\n")
    return done


def read_done(log: Path, keys: dict[str, str]) -> dict[str, dict]:
    """Records of a previous run of this same configuration; a torn last line is ignored."""
    done: dict[str, dict] = {}
    if not log.is_file():
        return done
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            uid = entry["record"]["uid"]
        except (ValueError, KeyError, TypeError):
            continue
        if keys.get(uid) == entry.get("key"):
            done[uid] = entry["record"]
    return done


@dataclass
class AnswerRun:
    """What answering one item produced, before any scoring."""

    answer: Any  # answer.Answer
    raw: str  # the backend's text, before the citation check removed invalid markers
    usage: Any  # types.Usage, over every turn
    latency: float
    calls: int  # model requests that reached the server


class Harness:
    """The opened index, embedder, backend, judge and caches: one item at a time."""

    def __init__(
        self, settings: Settings, components: Components, judge: Judge, cache_dir: Path
    ) -> None:
        self.settings = settings
        self.index = components.index
        self.embedder = components.embedder
        self.judge = judge
        self.judge_fingerprint = volatile_free(describe_judge(judge))
        self.judge_cache = DiskCache(cache_dir, "judge")
        self.llm_cache = DiskCache(cache_dir, "llm")
        self.gold: dict[str, list[str]] = {}  # uid -> gold paper ids
        self.llm_calls = 0
        self.judge_pairs = 0  # pairs the judge actually scored (cache misses)
        self.judge_seconds = 0.0
        self.backend_name = settings.backend
        self.model_calls: CountingChatModel | None = None
        self.openai: OpenAIBackend | None = None
        if self.backend_name == "openai":
            # Every model call is counted where it reaches the model and cached in front of
            # that, so an identical re-run makes no request at all.
            self.model_calls = CountingChatModel(components.chat_model)
            chat = CachingChatModel(self.model_calls, self.llm_cache)
            self.openai = OpenAIBackend(settings, chat)
        self.prompts = dict(self.make_backend().prompts)
        if self.backend_name == "openai":  # summaries use theirs; a resume must see them change
            from ..prompts import load_prompt

            for name in ("summarize_map", "summarize_reduce"):
                self.prompts[name] = load_prompt(name, settings.prompts_dir)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        judge_name: str = "local",
        cache_dir: Path | None = None,
        components: Components | None = None,
    ) -> Harness:
        components = components or Components(settings)
        cache = (
            Path(cache_dir) if cache_dir is not None else settings.index_dir.parent / "eval-cache"
        )
        return cls(settings, components, components.make_judge(judge_name), cache)

    # --- set-up --------------------------------------------------------------------------

    def make_backend(self) -> Backend:
        """A fresh extractive backend per item: its sentence-vector cache would otherwise make
        an item's batch (and so, in bf16, its vectors) depend on which items ran before it.
        The OpenAI backend is shared: its cache is keyed by the exact request."""
        if self.openai is not None:
            return self.openai
        from ..extractive import ExtractiveBackend

        return ExtractiveBackend(self.embedder)

    @property
    def calls(self) -> int:
        """Model requests that reached the server so far."""
        return self.model_calls.calls if self.model_calls is not None else 0

    def fingerprint(self) -> dict[str, Any]:
        """Everything besides the item that decides an item's result (resume key)."""
        return {
            "harness": HARNESS_VERSION,
            "settings": public_settings(self.settings, for_key=True),
            "backend": self.backend_name,
            "prompts": prompt_records(self.prompts),
            "judge": self.judge_fingerprint,
            "index": getattr(getattr(self.index, "snapshot", None), "generation", None),
            "code": source_hash(),
        }

    def item_key(self, item: EvalItem) -> str:
        return stable_hash({"run": self.fingerprint(), "item": item.data, "uid": item.uid})

    # --- one item ------------------------------------------------------------------------

    def evaluate(self, item: EvalItem) -> dict:
        if item.task == "retrieval":
            return self.evaluate_retrieval(item)
        if item.task == "summary":
            return self.evaluate_summary(item)
        return self.evaluate_answer(item)

    def retrieve(self, question: str) -> list[str]:
        """The ids of the papers retrieved for a question, best first."""
        from ..retrieval import search

        hits = search(self.index, self.embedder, question, k=scoring.RETRIEVAL_K)
        return [h.paper.paper_id for h in hits]

    def evaluate_retrieval(self, item: EvalItem) -> dict:
        record = item.record(self.gold.get(item.uid, []))
        started = time.perf_counter()
        record["retrieved"] = self.retrieve(item.question)
        record["scores"] = scoring.retrieval_scores(record["retrieved"], record["gold"])
        record["cost"] = {"latency_s": round(time.perf_counter() - started, 4)}
        return record

    def evaluate_answer(self, item: EvalItem) -> dict:
        record = item.record(self.gold.get(item.uid, []))
        run = self.run_answer(item)
        record["turns"] = item.data.get("turns")
        record |= scoring.score_answer(
            run.answer,
            run.raw,
            ranked=self.retrieve(run.answer.standalone_question),
            gold=record["gold"],
            facts=[str(f) for f in item.data.get("facts", [])],
            expected_abstain=item.kind == "unanswerable",
            judge=self.judge_pairs_cached,
        )
        record["cost"] = {
            "latency_s": round(run.latency, 4),
            "prompt_tokens": run.usage.prompt_tokens,
            "completion_tokens": run.usage.completion_tokens,
            "cost_usd": None if run.usage.cost_usd is None else round(run.usage.cost_usd, 6),
            "llm_calls": run.calls,
        }
        return record

    def run_answer(self, item: EvalItem) -> AnswerRun:
        """Answer the item's question, after its earlier turns (a follow-up) if it has any."""
        from ..answer import start_answer
        from ..types import Conversation, Usage

        backend = self.make_backend()
        calls_before = self.calls
        conversation = Conversation()
        usage = Usage()
        started = time.perf_counter()
        turns = [str(t) for t in item.data.get("turns", [])][:-1]
        try:
            for turn in turns:
                first = start_answer(
                    turn, conversation, self.index, self.embedder, backend, self.settings
                ).finish()
                usage.add(first.usage)
            pending = start_answer(
                item.question, conversation, self.index, self.embedder, backend, self.settings
            )
            answer = pending.finish()
        except Exception as exc:
            from ..chat_model import LLMError

            if isinstance(exc, LLMError):
                raise AssistantError(f"{item.uid}: {exc}") from exc
            raise
        usage.add(answer.usage)
        latency = time.perf_counter() - started
        calls = self.calls - calls_before
        self.llm_calls += calls
        return AnswerRun(answer, pending.generation.text, usage, latency, calls)

    def judge_answer(
        self, text: str, papers: dict[int, Any], facts: list[str]
    ) -> tuple[list[dict], list[dict], int]:
        """`scoring.judge_answer` with this harness's cached judge."""
        return scoring.judge_answer(text, papers, facts, self.judge_pairs_cached)

    def judge_pairs_cached(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Verdicts for the distinct pairs, as one judge batch, cached under the whole batch."""
        from ..grounding import Verdict

        unique = list(dict.fromkeys(pairs))
        if not unique:
            return {}
        key = stable_hash({"judge": self.judge_fingerprint, "pairs": unique})
        hit = self.judge_cache.get(key)
        if hit is None:
            started = time.perf_counter()
            verdicts = self.judge.judge_many(unique)
            self.judge_seconds += time.perf_counter() - started
            self.judge_pairs += len(unique)
            hit = [[float(v.score), v.label] for v in verdicts]
            self.judge_cache.put(key, hit)
        return {
            pair: Verdict(score, label) for pair, (score, label) in zip(unique, hit, strict=True)
        }

    def evaluate_summary(self, item: EvalItem) -> dict:
        from ..summarize import TopicError, summarize

        record = item.record(self.gold.get(item.uid, []))
        started = time.perf_counter()
        try:
            brief = summarize(
                self.settings,
                item.question,
                index=self.index,
                embedder=self.embedder,
                backend=self.make_backend(),
                judge=scoring.CachedJudge(self.judge, self.judge_pairs_cached),
                max_papers=SUMMARY_MAX_PAPERS,
            )
        except TopicError as exc:
            record |= scoring.score_declined_summary(exc.message, record["gold"])
            usage: dict = {}  # a declined topic is recorded at no token cost
        else:
            record |= scoring.score_summary(brief, record["gold"], self.judge_pairs_cached)
            usage = brief.usage.to_json()
        record["cost"] = {
            "latency_s": round(time.perf_counter() - started, 4),
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "cost_usd": usage.get("cost_usd"),
        }
        return record

    # --- the report ----------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        return {
            "llm_calls": self.llm_calls,
            "llm_cache_hits": self.llm_cache.hits,
            "judge_pairs_scored": self.judge_pairs,
            "judge_cache_hits": self.judge_cache.hits,
            "judge_seconds": round(self.judge_seconds, 2),
        }

    def report(self, records: list[dict], dataset: Path | None, subset: dict | None) -> dict:
        backend = {
            "name": self.backend_name,
            "model": self.openai.model if self.openai else "extractive",
            "base_url": public_url(self.settings.openai_base_url) if self.openai else None,
        }
        made = provenance(
            self.settings,
            backend=backend,
            prompts=self.prompts,
            judge=self.judge,
            index=self.index,
            dataset=dataset,
            subset=subset,
            items=len(records),
        )
        return made | {
            "metrics": aggregate(records),
            "by_kind": aggregate_by_kind(records),
            "cost": cost_summary(records),
            "items": records,
        }
