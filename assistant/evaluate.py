"""The eval harness: run the datasets in evals/datasets, score every item, write a report.

Users run it before changing a prompt or a setting, to learn (offline, in minutes) whether
the answers got less grounded. So it is built against the known failure modes of RAGAS,
TruLens and DeepEval:

- identical runs give identical numbers: model replies and judge verdicts are cached on
  disk, each item is judged as one batch whatever ran before it, and nothing is sampled;
- an abstention is scored as an abstention (right or wrong), never as NaN: every metric is
  stored per item as (numerator, denominator) and a metric with nothing to score is "n/a"
  with its count, not a number that poisons an average;
- a claim the sources are merely silent on is *not supported*, and that is a failure;
- retrieval metrics are the tested functions of `assistant.metrics` (duplicates count once,
  short rankings are not padded).

Every metric is defined in `METRICS` below and in evals/README.md. The CLI (`python -m
assistant eval`) only parses arguments and prints; the UI calls `run_eval`,
`load_report` and `compare_reports` directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import AssistantError
from .evalcache import CachedOpenAIBackend, DiskCache, public_url, stable_hash
from .grounding import make_judge
from .metrics import (
    alce_pairs_needed,
    alce_sentence,
    citation_validity,
    hit_at_k,
    ndcg_at_k,
    ratio,
    recall_at_k,
    reciprocal_rank,
    set_coverage,
    set_precision,
)
from .settings import Settings
from .text import claim_text, is_claim, markers_in, neutralize_markers, split_sentences

REPO = Path(__file__).resolve().parents[1]
EVALS_DIR = REPO / "evals"
DATASETS_DIR = EVALS_DIR / "datasets"
GATE_CONFIG = EVALS_DIR / "gate.toml"
HAND_WRITTEN = ("answers.jsonl", "retrieval.jsonl", "subtopics.jsonl")
HARNESS_VERSION = 1  # bump when scoring changes, so resumed runs don't mix old and new items


# --- What is measured ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    group: str  # retrieval | citations | answers | summaries
    description: str
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("hit@1", "retrieval", "a gold paper is ranked first (mean over items with gold)"),
        Metric("hit@5", "retrieval", "a gold paper is in the top 5"),
        Metric("recall@5", "retrieval", "share of the gold papers in the top 5, per item"),
        Metric("recall@10", "retrieval", "share of the gold papers in the top 10, per item"),
        Metric("mrr", "retrieval", "1 / rank of the first gold paper (0 if none in the top 10)"),
        Metric("ndcg@10", "retrieval", "binary-gain nDCG@10 against the gold papers"),
        Metric(
            "citation_validity",
            "citations",
            "markers in the raw answer that resolve to a retrieved source / all markers",
        ),
        Metric(
            "citation_recall",
            "citations",
            "claim sentences that have citations which together support them / claim sentences",
        ),
        Metric(
            "citation_precision",
            "citations",
            "precise citations / citations (ALCE: a citation is imprecise when its sentence's "
            "citations don't support it, or it alone doesn't while the others already do)",
        ),
        Metric(
            "cited_sentences",
            "citations",
            "claim sentences that carry a citation / claim sentences",
        ),
        Metric(
            "faithfulness",
            "answers",
            "claim sentences supported by the sources the answer cites / claim sentences; "
            "not supported (including 'the sources don't say') is a failure",
        ),
        Metric("fact_recall", "answers", "gold facts the answer supports / gold facts"),
        Metric("gold_cited", "answers", "gold papers the answer cites / gold papers"),
        Metric(
            "abstention_accuracy",
            "answers",
            "unanswerable questions abstained and answerable ones answered / questions",
        ),
        Metric("abstained_unanswerable", "answers", "unanswerable questions abstained"),
        Metric(
            "abstained_answerable",
            "answers",
            "answerable questions abstained (lower is better)",
            higher_is_better=False,
        ),
        Metric("summary_coverage", "summaries", "gold papers the summary cites / gold papers"),
        Metric("summary_precision", "summaries", "cited papers in the gold set / cited papers"),
    )
}
RETRIEVAL_K = 10  # papers retrieved for the retrieval metrics (answers use settings.answer_k)
SUMMARY_MAX_PAPERS = 25  # papers a summary may draw on; gold lists have 4-14


# --- Datasets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalItem:
    uid: str  # "<file stem>:<id>", unique across the files of one run
    task: str  # answer | retrieval | summary
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or ("topic" if self.task == "summary" else self.task))

    @property
    def question(self) -> str:
        return str(self.data.get("question") or self.data.get("topic") or "")


def task_of(stem: str, item: dict[str, Any]) -> str:
    """An item's task: its `task` field, else its file's name, else its fields."""
    if item.get("task") in ("answer", "retrieval", "summary"):
        return str(item["task"])
    if stem.startswith("retrieval"):
        return "retrieval"
    if stem.startswith("subtopics") or "topic" in item:
        return "summary"
    return "answer"


def dataset_files(path: Path | None) -> list[Path]:
    """A file, or a folder's *.jsonl files (the hand-written ones only for the default folder:
    generated items are kept apart and run only when asked for by path)."""
    if path is None:
        return [DATASETS_DIR / name for name in HAND_WRITTEN if (DATASETS_DIR / name).is_file()]
    if path.is_dir():
        return sorted(path.glob("*.jsonl"))
    if path.is_file():
        return [path]
    raise AssistantError(f"no dataset at {path}", "give a .jsonl file or a folder of them")


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; anything else is `file:line: …`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise AssistantError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise AssistantError(f"{path}:{number}: an item must be a JSON object")
        yield number, data


def load_dataset(path: Path | None = None) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: set[str] = set()
    for file in dataset_files(path):
        for number, data in json_lines(file):
            if "id" not in data:
                raise AssistantError(f"{file}:{number}: an item needs an `id`")
            task = task_of(file.stem, data)
            text_field = "topic" if task == "summary" else "question"
            if not str(data.get(text_field) or "").strip():
                raise AssistantError(f"{file}:{number}: `{text_field}` is missing or empty")
            check_fields(data, task, f"{file}:{number}")
            uid = f"{file.stem}:{data['id']}"
            if uid in seen:
                raise AssistantError(f"{file}:{number}: duplicate id {data['id']!r}")
            seen.add(uid)
            items.append(EvalItem(uid, task, data))
    if not items:
        raise AssistantError(f"no items in {path or DATASETS_DIR}")
    return items


KINDS = {"single", "multi", "unanswerable", "followup"}
LIST_FIELDS = ("gold_titles", "facts", "turns")


def check_fields(data: dict[str, Any], task: str, where: str) -> None:
    """A misspelt kind flips what an answer is expected to do, and a string where a list
    belongs is read letter by letter: both must stop the run, not skew it."""
    for name in LIST_FIELDS:
        value = data.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(x, str) for x in value)
        ):
            raise AssistantError(f"{where}: `{name}` must be a list of strings, not {value!r}")
    kind = data.get("kind")
    if task == "answer" and kind is not None and kind not in KINDS:
        raise AssistantError(f"{where}: `kind` is {kind!r}, not one of {sorted(KINDS)}")
    if kind == "followup" and len(data.get("turns") or []) < 2:
        raise AssistantError(f"{where}: `turns` must hold the earlier turn(s) and the follow-up")


def load_gate_config(path: Path = GATE_CONFIG) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise AssistantError(f"no gate config at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"{path}: {exc}") from None


def load_tolerances(path: Path = GATE_CONFIG) -> dict[str, float]:
    """Gated metric -> the absolute drop (0-1 scale) it may show before the gate fails."""
    tolerances = load_gate_config(path).get("tolerances", {})
    unknown = set(tolerances) - METRICS.keys()
    if unknown:
        raise AssistantError(f"{path}: unknown metrics {sorted(unknown)}")
    return {name: float(value) for name, value in tolerances.items()}


def select_subset(items: list[EvalItem], strides: dict[str, int]) -> list[EvalItem]:
    """Every n-th item of each file (by file stem; 1 = all, 0 = none): a fixed subset that
    keeps each file's mix of kinds, since the files are ordered by kind."""
    kept: list[EvalItem] = []
    position: dict[str, int] = {}
    for item in items:
        stem = item.uid.split(":", 1)[0]
        i = position.get(stem, 0)
        position[stem] = i + 1
        stride = int(strides.get(stem, 1))
        if stride > 0 and i % stride == 0:
            kept.append(item)
    return kept


# --- The run ------------------------------------------------------------------------------------


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
    index: Any = None,
    embedder: Any = None,
    judge_impl: Any = None,
) -> dict:
    """Evaluate, write out_dir/report.json, report.md and report.png, and return the report.

    Resumable: each finished item is appended to out_dir/items.jsonl with a key made of
    everything that determines its result (settings, prompts, judge, index generation, the
    item itself); a re-run skips the items whose key matches. `subset` is "gate" (the strides
    in evals/gate.toml), a {file stem: stride} dict, or None for every item.

    With `prompts_dir`, the current prompts run first (into out_dir/current), then the
    candidate set (into out_dir/candidate); the returned report is the candidate's, with a
    `prompt_comparison` section that sets both side by side, per metric and per item.
    `index`, `embedder` and `judge_impl` let tests and the UI pass objects they already have.
    """
    if backend is not None:
        settings = settings.model_copy(update={"llm": backend})
    if prompts_dir is not None:
        if settings.backend == "extractive":
            raise AssistantError(
                "--prompts needs a model: the extractive backend uses no prompts",
                "set OPENAI_API_KEY (or --backend openai) to compare prompt sets",
            )
        from .prompts import load_prompt

        for name in ("answer", "condense", "summarize_map", "summarize_reduce"):
            load_prompt(name, prompts_dir)  # a broken candidate fails before anything runs
        out_dir = Path(out_dir)
        # One judge, from the current settings, scores both sides: a candidate prompts
        # folder changes what is judged, never the judge.
        judge_impl = judge_impl or make_judge(settings, judge, embedder)
        common = dict(
            dataset=dataset,
            judge=judge,
            progress=progress,
            subset=subset,
            cache_dir=cache_dir,
            show_progress=show_progress,
            index=index,
            embedder=embedder,
            judge_impl=judge_impl,
        )
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

    harness = Harness.open(
        settings,
        judge_name=judge,
        cache_dir=cache_dir,
        index=index,
        embedder=embedder,
        judge_impl=judge_impl,
    )
    items = load_dataset(dataset)
    subset_spec: dict[str, int] | None = None
    if subset == "gate":
        subset_spec = {k: int(v) for k, v in load_gate_config().get("subset", {}).items()}
    elif isinstance(subset, dict):
        subset_spec = subset
    elif subset not in (None, "all"):
        raise AssistantError(f"unknown subset {subset!r}", "use gate or all")
    if subset_spec:
        items = select_subset(items, subset_spec)
    harness.resolve_gold(items)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "items.jsonl"
    keys = {item.uid: harness.item_key(item) for item in items}
    done = read_done(log, keys)
    with open(log, "w", encoding="utf-8") as f:  # drop stale lines; keep what still counts
        for uid, record in done.items():
            f.write(json.dumps({"key": keys[uid], "record": record}, ensure_ascii=False) + "\n")

    started = time.perf_counter()
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

    ordered = [records[item.uid] for item in items]
    report = harness.report(ordered, dataset, subset_spec)
    report["run"] = {
        "items": len(items),
        "items_resumed": len(done),
        "items_run": len(items) - len(done),
        "seconds": round(time.perf_counter() - started, 2),
        **harness.stats(),
    }
    write_report(report, out_dir)
    return report


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


class Harness:
    """The opened index, embedder, backend, judge and caches: one item at a time."""

    def __init__(
        self,
        settings: Settings,
        index: Any,
        embedder: Any,
        judge: Any,
        cache_dir: Path,
    ) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.judge = judge
        self.judge_fingerprint = volatile_free(describe_judge(judge))
        self.judge_cache = DiskCache(cache_dir, "judge")
        self.llm_cache = DiskCache(cache_dir, "llm")
        self.gold: dict[str, list[str]] = {}  # uid -> gold paper ids
        self.llm_calls = 0
        self.judge_pairs = 0  # pairs the judge actually scored (cache misses)
        self.judge_seconds = 0.0
        self._openai: CachedOpenAIBackend | None = None
        self.backend_name = settings.backend
        self.prompts = dict(self.make_backend().prompts)
        if self.backend_name == "openai":  # summaries use theirs; a resume must see them change
            from .prompts import load_prompt

            for name in ("summarize_map", "summarize_reduce"):
                self.prompts[name] = load_prompt(name, settings.prompts_dir)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        judge_name: str = "local",
        cache_dir: Path | None = None,
        index: Any = None,
        embedder: Any = None,
        judge_impl: Any = None,
    ) -> Harness:
        if index is None:
            from .index import PaperIndex

            index = PaperIndex.open(settings)
        if embedder is None:
            from .embeddings import make_embedder

            embedder = make_embedder(settings)
        judge = judge_impl if judge_impl is not None else make_judge(settings, judge_name, embedder)
        cache = (
            Path(cache_dir) if cache_dir is not None else settings.index_dir.parent / "eval-cache"
        )
        return cls(settings, index, embedder, judge, cache)

    # --- set-up --------------------------------------------------------------------------

    def make_backend(self) -> Any:
        """A fresh extractive backend per item: its sentence-vector cache would otherwise make
        an item's batch (and so, in bf16, its vectors) depend on which items ran before it.
        The OpenAI backend is shared: its cache is keyed by the exact request."""
        if self.backend_name == "openai":
            if self._openai is None:
                self._openai = CachedOpenAIBackend(self.settings, self.llm_cache)
            return self._openai
        from .extractive import ExtractiveBackend

        return ExtractiveBackend(self.embedder)

    def resolve_gold(self, items: list[EvalItem]) -> None:
        """Gold titles -> paper ids (every title of a paper counts as that paper), checked all
        at once so a dataset typo is reported before anything runs."""
        by_title: dict[str, str] = {}
        for paper in self.index.papers.values():
            for title in (paper.title, *paper.aliases):
                by_title[title] = paper.paper_id
        missing = []
        for item in items:
            ids = []
            for title in item.data.get("gold_titles", []):
                if title in by_title:
                    ids.append(by_title[title])
                else:
                    missing.append(f"{item.uid}: {title!r}")
            ids += [p for p in item.data.get("gold_ids", []) if p in self.index.papers]
            self.gold[item.uid] = list(dict.fromkeys(ids))
        if missing:
            raise AssistantError(
                f"{len(missing)} gold title(s) match no paper in the index, e.g. {missing[0]}",
                "is the index built from data/papers? (python -m assistant ingest)",
            )

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

    def base_record(self, item: EvalItem) -> dict:
        return {
            "uid": item.uid,
            "id": item.data["id"],
            "task": item.task,
            "kind": item.kind,
            "question": item.question,
            "gold": self.gold.get(item.uid, []),
            "scores": {},
        }

    def retrieval_scores(self, question: str, gold: list[str]) -> tuple[list[str], dict]:
        from .retrieval import search

        ranked = [
            h.paper.paper_id for h in search(self.index, self.embedder, question, k=RETRIEVAL_K)
        ]
        if not gold:
            return ranked, {}
        scores = {
            "hit@1": hit_at_k(ranked, gold, 1),
            "hit@5": hit_at_k(ranked, gold, 5),
            "recall@5": recall_at_k(ranked, gold, 5),
            "recall@10": recall_at_k(ranked, gold, 10),
            "mrr": reciprocal_rank(ranked, gold),
            "ndcg@10": ndcg_at_k(ranked, gold, 10),
        }
        return ranked, {name: [round(value, 6), 1] for name, value in scores.items()}

    def evaluate_retrieval(self, item: EvalItem) -> dict:
        record = self.base_record(item)
        started = time.perf_counter()
        record["retrieved"], record["scores"] = self.retrieval_scores(item.question, record["gold"])
        record["cost"] = {"latency_s": round(time.perf_counter() - started, 4)}
        return record

    def evaluate_answer(self, item: EvalItem) -> dict:
        from .answer import start_answer
        from .types import Conversation, Usage

        record = self.base_record(item)
        backend = self.make_backend()
        calls_before = self._openai.calls if self._openai else 0
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
            from .chat_model import LLMError

            if isinstance(exc, LLMError):
                raise AssistantError(f"{item.uid}: {exc}") from exc
            raise
        usage.add(answer.usage)
        latency = time.perf_counter() - started
        calls = (self._openai.calls if self._openai else 0) - calls_before
        self.llm_calls += calls
        raw = pending.generation.text

        expected_abstain = item.kind == "unanswerable"
        abstained, how = abstention(answer)
        by_marker = {s.marker: s.paper for s in answer.sources}
        record.update(
            {
                "turns": item.data.get("turns"),
                "standalone": answer.standalone_question,
                "answer": answer.text,
                "abstained": abstained,
                "abstained_by": how,
                "expected_abstain": expected_abstain,
                "citations": [
                    {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
                    for s in answer.citations
                ],
                "sources": [s.to_json() for s in answer.sources],
                "invalid_markers": answer.check.invalid_markers,
                "prompt_versions": answer.prompt_versions,
            }
        )
        scores: dict[str, list[float]] = {
            "abstention_accuracy": [int(abstained == expected_abstain), 1],
            ("abstained_unanswerable" if expected_abstain else "abstained_answerable"): [
                int(abstained),
                1,
            ],
        }
        gold = record["gold"]
        record["retrieved"], retrieval = self.retrieval_scores(answer.standalone_question, gold)
        scores |= retrieval
        facts = [str(f) for f in item.data.get("facts", [])]
        if abstained:
            record["sentences"] = []
            record["facts"] = [{"fact": f, "supported": False, "score": 0.0} for f in facts]
            record["not_scored"] = "abstained: no sentences or citations to judge"
            if facts:
                scores["fact_recall"] = [0, len(facts)]
            if gold:
                scores["gold_cited"] = [0, len(gold)]
        else:
            valid = {s.marker for s in answer.sources}
            scores["citation_validity"] = list(citation_validity(markers_in(raw), valid))
            sentences, fact_rows, judged = self.judge_answer(answer.text, by_marker, facts)
            record["sentences"] = sentences
            record["facts"] = fact_rows
            claims = len(sentences)
            scores["citation_recall"] = [sum(s["supported"] for s in sentences), claims]
            scores["citation_precision"] = [
                sum(len(s["precise"]) for s in sentences),
                sum(len(s["markers"]) for s in sentences),
            ]
            scores["cited_sentences"] = [sum(bool(s["markers"]) for s in sentences), claims]
            scores["faithfulness"] = [sum(s["faithful"] for s in sentences), claims]
            if facts:
                scores["fact_recall"] = [sum(f["supported"] for f in fact_rows), len(facts)]
            if gold:
                cited_ids = [c["paper_id"] for c in record["citations"]]
                scores["gold_cited"] = list(set_coverage(cited_ids, gold))
            record["judge_pairs"] = judged
        record["scores"] = scores
        record["cost"] = {
            "latency_s": round(latency, 4),
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": None if usage.cost_usd is None else round(usage.cost_usd, 6),
            "llm_calls": calls,
        }
        return record

    def judge_answer(
        self, text: str, papers: dict[int, Any], facts: list[str]
    ) -> tuple[list[dict], list[dict], int]:
        """Per-sentence verdicts (citation recall and precision, faithfulness) and per-fact ones.

        First batch: each claim sentence against the sources its own citations name (all
        together, and for several citations each alone and all but each, as ALCE needs), and
        each gold fact against the answer. Second batch, only for the sentences their own
        citations don't support: the sentence against every source the answer cites, which
        is what faithfulness asks (a sentence supported by its own citations is supported by
        any superset of them, so it needs no second look).
        """
        claims = answer_claims(text)
        cited_all = frozenset(m for _, markers in claims for m in markers if m in papers)
        answer_text = answer_evidence(text)

        def evidence(markers: frozenset[int]) -> str:
            return evidence_text([papers[m] for m in sorted(markers) if m in papers])

        first: list[tuple[str, str]] = []
        for claim, markers in claims:
            first += [(claim, evidence(s)) for s in alce_pairs_needed(markers)]
        first += [(fact, answer_text) for fact in facts]
        verdicts = self.judge_pairs_cached(first)

        def supports(claim: str, markers: frozenset[int]) -> bool:
            return verdicts[(claim, evidence(markers))].label == "supported"

        rows: list[dict] = []
        for (claim, markers), sentence in zip(claims, claim_sentences(text), strict=True):
            result = alce_sentence(markers, lambda s, c=claim: supports(c, s))
            own = verdicts.get((claim, evidence(markers))) if markers else None
            rows.append(
                {
                    "text": sentence,
                    "claim": claim,
                    "markers": sorted(markers),
                    "supported": bool(result.recall),
                    "score": round(own.score, 4) if own else 0.0,
                    "precise": sorted(result.precise),
                    "imprecise": sorted(result.imprecise),
                }
            )
        second = list(
            dict.fromkeys(
                (row["claim"], evidence(cited_all))
                for row in rows
                if not row["supported"]
                and cited_all
                and (row["claim"], evidence(cited_all)) not in verdicts
            )
        )
        verdicts |= self.judge_pairs_cached(second)
        for row in rows:
            if row["supported"]:
                row["faithful"], row["faithful_score"] = True, row["score"]
            elif cited_all:
                v = verdicts[(row["claim"], evidence(cited_all))]
                row["faithful"], row["faithful_score"] = v.label == "supported", round(v.score, 4)
            else:  # nothing cited: nothing to be faithful to
                row["faithful"], row["faithful_score"] = False, 0.0
            del row["claim"]
        fact_rows = [
            {
                "fact": fact,
                "supported": verdicts[(fact, answer_text)].label == "supported",
                "score": round(verdicts[(fact, answer_text)].score, 4),
            }
            for fact in facts
        ]
        return rows, fact_rows, len(set(first)) + len(second)

    def judge_pairs_cached(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Verdicts for the distinct pairs, as one judge batch, cached under the whole batch."""
        from .grounding import Verdict

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
        from .summarize import TopicError, summarize

        record = self.base_record(item)
        started = time.perf_counter()
        try:
            brief = summarize(
                self.settings,
                item.question,
                index=self.index,
                embedder=self.embedder,
                backend=self.make_backend(),
                max_papers=SUMMARY_MAX_PAPERS,
            ).to_json()
        except TopicError as exc:
            # Declining a topic with gold papers is a miss, scored as one, not a crash.
            record.update({"abstained": True, "answer": exc.message, "cited": []})
            record["scores"] = {
                "summary_coverage": list(set_coverage([], record["gold"])),
                "summary_precision": list(set_precision([], record["gold"])),
            }
            record["cost"] = {
                "latency_s": round(time.perf_counter() - started, 4),
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": None,
            }
            return record
        cited = list(dict.fromkeys(c["paper_id"] for c in brief.get("citations", [])))
        record.update(
            {
                "answer": brief.get("markdown", ""),
                "citations": brief.get("citations", []),
                "themes": brief.get("themes", []),
                "cited": cited,
                "prompt_versions": brief.get("prompt_versions", {}),
            }
        )
        gold = record["gold"]
        record["scores"] = {
            "summary_coverage": list(set_coverage(cited, gold)),
            "summary_precision": list(set_precision(cited, gold)),
        }
        usage = brief.get("usage") or {}
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
        files = dataset_files(dataset)
        return {
            "schema": 1,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": git_state(),
            "dataset": {
                "files": [
                    {"path": display(f), "sha256": stable_hash(f.read_text(encoding="utf-8"))[:16]}
                    for f in files
                ],
                "subset": subset,
                "items": len(records),
            },
            "backend": {
                "name": self.backend_name,
                "model": self._openai.model if self._openai else "extractive",
                "base_url": public_url(self.settings.openai_base_url) if self._openai else None,
            },
            "settings": public_settings(self.settings),
            "prompts": prompt_records(self.prompts),
            "judge": describe_judge(self.judge),
            "index": {
                "generation": getattr(getattr(self.index, "snapshot", None), "generation", None),
                "papers": len(self.index.papers),
            },
            "metrics": aggregate(records),
            "by_kind": {
                kind: aggregate([r for r in records if f"{r['task']}/{r['kind']}" == kind])
                for kind in sorted({f"{r['task']}/{r['kind']}" for r in records})
            },
            "cost": cost_summary(records),
            "items": records,
        }


# --- Answer text -> claims and evidence ---------------------------------------------------


def exempt_headers() -> tuple[str, ...]:
    from .answer import ABSTAIN_HEADER
    from .extractive import EXTRACTIVE_HEADER

    return (EXTRACTIVE_HEADER, ABSTAIN_HEADER)


def claim_sentences(text: str) -> list[str]:
    """The sentences that state something and so need support: headers, labels and the
    backends' fixed lines ("Extractive answer: ...") are not claims."""
    headers = exempt_headers()
    return [s for s in split_sentences(text) if is_claim(s) and not s.startswith(headers)]


def answer_claims(text: str) -> list[tuple[str, frozenset[int]]]:
    return [(claim_text(s), frozenset(markers_in(s))) for s in claim_sentences(text)]


def answer_evidence(text: str) -> str:
    """The answer as evidence for gold facts: its claims, without markers or fixed lines."""
    return "\n".join(claim_text(s) for s in claim_sentences(text))


def evidence_text(papers: Iterable[Any]) -> str:
    """Sources as the judge reads them: each paper's title, then its abstract."""
    return "\n\n".join(f"{p.title}.\n{neutralize_markers(p.abstract)}" for p in papers)


DECLINES = re.compile(
    r"\b(?:(?:do|does|did)\s*n[o']t|cannot|can't|don't|doesn't)\s+(?:\w+\s+){0,3}?"
    r"(?:cover|answer|address|mention|discuss|contain|describe|provide|say|explain)\b"
    r"|\bnot (?:covered|addressed|mentioned|discussed)\b|\bno (?:information|mention)\b",
    re.IGNORECASE,
)


def abstention(answer: Any) -> tuple[bool, str | None]:
    """Did the answer abstain, and who decided: the pipeline (nothing relevant retrieved) or
    the model (an answer that cites nothing and says the sources don't cover the question)."""
    if answer.abstained:
        return True, "pipeline"
    if not answer.citations and DECLINES.search(answer.text):
        return True, "model"
    return False, None


# --- Aggregation: per-item (numerator, denominator) -> metrics -------------------------------


def aggregate(records: list[dict]) -> dict[str, dict]:
    """Each metric as sum(numerators) / sum(denominators) over the items that have it.

    For retrieval metrics every item adds (value, 1), so this is the mean over items; for
    sentence and citation metrics it is the share over all sentences or citations (micro).
    A metric no item has is left out; one whose denominators sum to 0 has value None.
    """
    sums: dict[str, list[float]] = {}
    for record in records:
        for name, (num, den) in record.get("scores", {}).items():
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] += num
            acc[1] += den
            acc[2] += 1
    ordered = [n for n in METRICS if n in sums] + sorted(n for n in sums if n not in METRICS)
    result = {}
    for name in ordered:
        num, den, n = sums[name]
        value = ratio(num, den)
        result[name] = {
            "value": None if value is None else round(value, 6),
            "numerator": round(num, 6),
            "denominator": round(den, 6),
            "items": int(n),
        }
    return result


def cost_summary(records: list[dict]) -> dict[str, Any]:
    """Latency and tokens per item. Latency is measured, so unlike the metrics it varies
    between runs (and a cached model reply is faster than the first one)."""
    answered = [r for r in records if r["task"] == "answer" and "cost" in r]
    latencies = [r["cost"]["latency_s"] for r in answered]
    costs = [r["cost"].get("cost_usd") for r in answered]
    return {
        "answer_items": len(answered),
        "latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "latency_mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
        "latency_max_s": round(max(latencies), 4) if latencies else None,
        "prompt_tokens_per_item": (
            round(statistics.fmean(r["cost"]["prompt_tokens"] for r in answered), 1)
            if answered
            else None
        ),
        "completion_tokens_per_item": (
            round(statistics.fmean(r["cost"]["completion_tokens"] for r in answered), 1)
            if answered
            else None
        ),
        "cost_usd_total": (
            None if any(c is None for c in costs) else round(sum(c for c in costs if c), 6)
        ),
    }


# --- Comparing two reports ----------------------------------------------------------------


@dataclass
class Row:
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    gated: bool
    tolerance: float | None
    regressed: bool
    items: int  # items the candidate's value rests on

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Comparison:
    rows: list[Row]
    items: list[dict]  # per-item differences
    notes: list[str] = field(default_factory=list)
    common_items: int = 0
    judge_changed: bool = False  # then the judged metrics can't vouch for anything

    @property
    def regressed(self) -> bool:
        """A gated metric dropped, or went unmeasured, or there was nothing to compare."""
        return self.common_items == 0 or any(r.regressed for r in self.rows)

    def to_json(self) -> dict:
        return {
            "regressed": self.regressed,
            "common_items": self.common_items,
            "judge_changed": self.judge_changed,
            "notes": self.notes,
            "rows": [r.to_json() for r in self.rows],
            "items": self.items,
        }

    def table(self, left: str = "baseline", right: str = "candidate") -> str:
        lines = [
            f"| metric | {left} | {right} | delta | gate |",
            "|---|---:|---:|---:|---|",
        ]
        for r in self.rows:
            gate = ""
            if r.gated:
                gate = (
                    f"REGRESSED (tolerance {r.tolerance:g})"
                    if r.regressed
                    else f"ok (±{r.tolerance:g})"
                )
            lines.append(
                f"| {r.metric} | {fmt(r.baseline)} | {fmt(r.candidate)} | "
                f"{fmt(r.delta, signed=True)} | {gate} |"
            )
        return "\n".join(lines)

    def to_markdown(self, left: str = "baseline", right: str = "candidate") -> str:
        out = [self.table(left, right), ""]
        out += [f"- {note}" for note in self.notes]
        if self.items:
            out += ["", f"### Items that differ ({len(self.items)})", ""]
            out += ["| item | what changed |", "|---|---|"]
            for item in self.items[:60]:
                changes = "; ".join(
                    f"{k}: {fmt(v[0])} → {fmt(v[1])}" for k, v in item["changes"].items()
                )
                out.append(f"| {item['uid']} | {changes} |")
            if len(self.items) > 60:
                out.append(f"| … | {len(self.items) - 60} more in report.json |")
        return "\n".join(out) + "\n"


def compare_reports(baseline: dict, candidate: dict, tolerances: dict | None = None) -> Comparison:
    """Both reports' metrics over the items they share (same id, same question), per item too.

    Recomputing on the shared items is what makes a gate run on a subset comparable with a
    full baseline, and keeps an added or removed dataset item from passing for a change in
    quality. A gated metric regresses when it falls by more than its tolerance (rises, for a
    lower-is-better metric).
    """
    tolerances = tolerances if tolerances is not None else {}
    base_items = {r["uid"]: r for r in baseline.get("items", [])}
    cand_items = {r["uid"]: r for r in candidate.get("items", [])}
    common = [
        uid
        for uid in cand_items
        if uid in base_items and base_items[uid].get("question") == cand_items[uid].get("question")
    ]
    notes: list[str] = []
    if not common:
        notes.append("the reports share no items, so nothing was compared: that fails the gate")
    only_base = len(base_items) - len(common)
    only_cand = len(cand_items) - len(common)
    if only_base or only_cand:
        notes.append(
            f"compared on the {len(common)} items both reports have "
            f"({only_base} only in the baseline, {only_cand} only in the candidate)"
        )
    judge_changed = same_judge(baseline.get("judge", {})) != same_judge(candidate.get("judge", {}))
    if judge_changed:
        notes.append(
            "the judges differ, so the judged metrics measure different things: "
            f"{baseline.get('judge')} vs {candidate.get('judge')}"
        )
    if baseline.get("index", {}).get("generation") != candidate.get("index", {}).get("generation"):
        notes.append("the reports were made on different index builds")
    b_metrics = aggregate([base_items[u] for u in common])
    c_metrics = aggregate([cand_items[u] for u in common])
    names = [n for n in METRICS if n in b_metrics or n in c_metrics]
    names += sorted((set(b_metrics) | set(c_metrics)) - set(names))
    rows = []
    for name in names:
        b = b_metrics.get(name, {}).get("value")
        c = c_metrics.get(name, {}).get("value")
        delta = None if b is None or c is None else round(c - b, 6)
        gated = name in tolerances
        tolerance = float(tolerances[name]) if gated else None
        regressed = False
        if gated and delta is not None:
            better = METRICS[name].higher_is_better if name in METRICS else True
            drop = -delta if better else delta
            regressed = drop > tolerance + 1e-9  # type: ignore[operator]
        elif gated and b is not None:
            regressed = True  # the baseline measured it and the candidate can't: not a pass
        items = c_metrics.get(name, {}).get("items", 0)
        rows.append(Row(name, b, c, delta, gated, tolerance, regressed, items))
    for name in tolerances:
        if name not in b_metrics and name not in c_metrics:
            notes.append(f"gated metric {name} is in neither report")
    diffs = item_differences(base_items, cand_items, common)
    return Comparison(rows, diffs, notes, len(common), judge_changed)


def item_differences(base: dict[str, dict], cand: dict[str, dict], common: list[str]) -> list[dict]:
    diffs = []
    for uid in common:
        b, c = base[uid], cand[uid]
        changes: dict[str, list] = {}
        if b.get("abstained") != c.get("abstained"):
            changes["abstained"] = [b.get("abstained"), c.get("abstained")]
        for name in sorted(set(b.get("scores", {})) | set(c.get("scores", {}))):
            bv = item_value(b, name)
            cv = item_value(c, name)
            if bv != cv:
                changes[name] = [bv, cv]
        if changes or b.get("answer") != c.get("answer"):
            diffs.append(
                {
                    "uid": uid,
                    "question": c.get("question"),
                    "changes": changes,
                    "baseline_answer": b.get("answer"),
                    "candidate_answer": c.get("answer"),
                }
            )
    return diffs


def item_value(record: dict, name: str) -> float | None:
    pair = record.get("scores", {}).get(name)
    if pair is None:
        return None
    value = ratio(pair[0], pair[1])
    return None if value is None else round(value, 4)


def load_report(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssistantError(
            f"no report at {path}", "run `python -m assistant eval` first"
        ) from None
    except ValueError as exc:
        raise AssistantError(f"{path}: not a report ({exc})") from None


# --- Writing ------------------------------------------------------------------------------------


def write_report(report: dict, out_dir: Path, comparison: Comparison | None = None) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    atomic_write(out_dir / "report.md", render_markdown(report, comparison))
    write_chart(report, out_dir / "report.png")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    return str(value)


def render_markdown(report: dict, comparison: Comparison | None = None) -> str:
    metrics = report["metrics"]
    lines = [
        "# Eval report",
        "",
        f"- created {report['created']}, commit {report['git'].get('commit') or 'unknown'}"
        + (" (uncommitted changes)" if report["git"].get("dirty") else ""),
        f"- backend {report['backend']['name']} ({report['backend']['model']}), "
        f"judge {json.dumps(report['judge'])}",
        "- prompts: "
        + (
            ", ".join(f"{k} {v['version']} ({v['sha']})" for k, v in report["prompts"].items())
            or "none (the extractive backend uses no prompt)"
        ),
        f"- {report['dataset']['items']} items from "
        + ", ".join(f["path"] for f in report["dataset"]["files"])
        + (f", subset {report['dataset']['subset']}" if report["dataset"].get("subset") else ""),
        "",
        "| metric | value | over | items | meaning |",
        "|---|---:|---:|---:|---|",
    ]
    for name, m in metrics.items():
        meaning = METRICS[name].description if name in METRICS else ""
        lines.append(
            f"| {name} | {fmt(m['value'])} | {m['numerator']:g}/{m['denominator']:g} | "
            f"{m['items']} | {meaning} |"
        )
    cost = report.get("cost", {})
    if cost.get("answer_items"):
        total = cost.get("cost_usd_total")
        lines += [
            "",
            f"Cost per answer ({cost['answer_items']} answers): latency p50 "
            f"{fmt(cost.get('latency_p50_s'))} s, mean {fmt(cost.get('latency_mean_s'))} s; "
            f"{cost.get('prompt_tokens_per_item')} prompt + "
            f"{cost.get('completion_tokens_per_item')} completion tokens; total cost "
            + ("unknown (a model without a price)" if total is None else f"${total:.4f}")
            + ". Latency varies between runs; the other numbers don't.",
        ]
    lines += ["", "## By kind", ""]
    kinds = report.get("by_kind", {})
    shown = [n for n in METRICS if any(n in v for v in kinds.values())]
    lines.append("| kind | " + " | ".join(shown) + " |")
    lines.append("|---|" + "---:|" * len(shown))
    for kind, values in kinds.items():
        cells = [fmt(values[n]["value"]) if n in values else "" for n in shown]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    problems = worst_items(report.get("items", []))
    if problems:
        lines += ["", "## Items to look at", ""]
        lines += [f"- {p}" for p in problems]
    if comparison is not None:
        lines += ["", "## Candidate prompts against the current ones", ""]
        lines.append(comparison.to_markdown("current", "candidate"))
    return "\n".join(lines) + "\n"


def worst_items(records: list[dict], limit: int = 40) -> list[str]:
    """What a person should read first: wrong abstentions, then unsupported sentences."""
    out = []
    for r in records:
        if r["task"] != "answer":
            continue
        if r.get("abstained") != r.get("expected_abstain"):
            what = "abstained" if r.get("abstained") else "answered"
            should = "abstained" if r.get("expected_abstain") else "answered"
            out.append(f"{r['uid']}: {what}, should have {should}: {r['question']}")
    for r in records:
        bad = [s for s in r.get("sentences", []) if not s["faithful"]]
        if bad:
            example = bad[0]["text"][:160]
            total = len(r["sentences"])
            out.append(
                f"{r['uid']}: {len(bad)} of {total} sentences not supported, e.g. “{example}”"
            )
    return out[:limit]


CHART_METRICS = (
    "recall@5",
    "ndcg@10",
    "citation_validity",
    "citation_recall",
    "citation_precision",
    "faithfulness",
    "fact_recall",
    "abstention_accuracy",
    "summary_coverage",
    "summary_precision",
)


def write_chart(report: dict, path: Path) -> None:
    """A horizontal bar per main metric (0-1); n/a metrics are left out, not drawn as 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["metrics"]
    names = [n for n in CHART_METRICS if metrics.get(n, {}).get("value") is not None]
    values = [metrics[n]["value"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.2), dpi=100)
    ax.barh(names[::-1], values[::-1], color="#4c72b0")
    for y, v in enumerate(values[::-1]):
        inside = v > 0.85  # a long bar carries its label inside, in white
        x, colour, align = (v - 0.01, "white", "right") if inside else (v + 0.01, "black", "left")
        ax.text(x, y, f"{v:.3f}", va="center", ha=align, color=colour, fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_title(f"{report['backend']['name']} backend, {report['dataset']['items']} items")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# --- Small helpers ------------------------------------------------------------------------------


VOLATILE_JUDGE_KEYS = ("retries", "errors")  # counters an LLM judge updates as it works


def describe_judge(judge: Any) -> dict:
    describe = getattr(judge, "describe", None)
    if describe is not None:
        return dict(describe())
    return {"judge": getattr(judge, "name", type(judge).__name__)}


def volatile_free(description: dict) -> dict:
    return {k: v for k, v in description.items() if k not in VOLATILE_JUDGE_KEYS}


def same_judge(description: dict) -> dict:
    """What makes two reports' judges the same judge: not the counters, nor the numeric
    precision (`auto` picks bf16 or fp32 by CPU, so CI and a laptop differ; that is noise
    for the tolerances, not another judge). Caches and resume keys do keep the precision."""
    return {k: v for k, v in volatile_free(description).items() if k != "precision"}


SECRET_FIELDS = {"openai_api_key"}
LOCAL_FIELDS = {"index_dir", "data_dir", "prompts_dir"}  # paths: not part of a result's identity


def public_settings(settings: Settings, for_key: bool = False) -> dict[str, Any]:
    """The settings a report may show: no key (not even whether one is set), no credentials
    in a URL. For a resume key, also without local paths (prompts count by content)."""
    data = settings.model_dump(mode="json", exclude=SECRET_FIELDS)
    data["openai_base_url"] = public_url(settings.openai_base_url)
    data["backend"] = settings.backend
    if for_key:
        for name in LOCAL_FIELDS:
            data.pop(name, None)
    return data


def prompt_records(prompts: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        name: {"version": p.version, "sha": p.sha, "path": display(p.path)}
        for name, p in sorted(prompts.items())
    }


def display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(REPO))
    return str(path)


@lru_cache(maxsize=1)
def source_hash() -> str:
    """A hash of the package's code and every prompt file: a resumed item must have been made
    by the same code (an edit to answer.py changes answers while settings stay the same)."""
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py")) + sorted((REPO / "prompts").glob("*.md"))
    return stable_hash([[display(f), f.read_text(encoding="utf-8")] for f in files if f.is_file()])


def git_state() -> dict[str, Any]:
    """The commit the report was made from, and whether the tree had changes (read-only git)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def print_summary(report: dict, out_dir: Path) -> None:
    """What the CLI prints: the metrics, then (with --prompts) both prompt sets side by side."""
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
