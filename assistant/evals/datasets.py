"""The eval items: the dataset files, their checks, the gate's subset and tolerances.

Every path the harness reads lives here: the repository, evals/, its datasets and the gate
config (evals/gate.toml).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AssistantError
from .metrics import METRICS

REPO = Path(__file__).resolve().parents[2]
EVALS_DIR = REPO / "evals"
DATASETS_DIR = EVALS_DIR / "datasets"
GATE_CONFIG = EVALS_DIR / "gate.toml"
HAND_WRITTEN = ("answers.jsonl", "retrieval.jsonl", "subtopics.jsonl")


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

    def record(self, gold: list[str]) -> dict[str, Any]:
        """The start of this item's record in a report: what it is, with its gold paper ids."""
        return {
            "uid": self.uid,
            "id": self.data["id"],
            "task": self.task,
            "kind": self.kind,
            "question": self.question,
            "gold": gold,
            "scores": {},
        }


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


def gold_ids(items: list[EvalItem], papers: dict[str, Any]) -> dict[str, list[str]]:
    """Each item's gold paper ids, from its gold titles (every title of a paper counts as that
    paper) and gold ids, checked all at once so a dataset typo is reported before anything
    runs. `papers` is the index's, by id."""
    by_title: dict[str, str] = {}
    for paper in papers.values():
        for title in (paper.title, *paper.aliases):
            by_title[title] = paper.paper_id
    gold: dict[str, list[str]] = {}
    missing = []
    for item in items:
        ids = []
        for title in item.data.get("gold_titles", []):
            if title in by_title:
                ids.append(by_title[title])
            else:
                missing.append(f"{item.uid}: {title!r}")
        ids += [p for p in item.data.get("gold_ids", []) if p in papers]
        gold[item.uid] = list(dict.fromkeys(ids))
    if missing:
        raise AssistantError(
            f"{len(missing)} gold title(s) match no paper in the index, e.g. {missing[0]}",
            "is the index built from data/papers? (python -m assistant ingest)",
        )
    return gold


# --- The gate: evals/gate.toml ------------------------------------------------------------------


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


def subset_strides(subset: str | dict[str, int] | None) -> dict[str, int] | None:
    """`subset` as {file stem: stride}: "gate" reads evals/gate.toml; None or "all" is None."""
    if subset == "gate":
        return {k: int(v) for k, v in load_gate_config().get("subset", {}).items()}
    if isinstance(subset, dict):
        return subset
    if subset not in (None, "all"):
        raise AssistantError(f"unknown subset {subset!r}", "use gate or all")
    return None


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
