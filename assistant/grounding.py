"""Does this evidence support this claim? Two judges behind one interface.

`local` (the default): offline and deterministic. MiniLM-L6 fine-tuned as a cross-encoder
(`assistant/grounding_model/`) reads each claim sentence together with the evidence window
that shares the most words with it; a calibration fitted on pairs it never trained on turns
its logit into a probability, and a number the evidence lacks or an opposite direction of
change caps it below the threshold when the calibration found that this helps.
`python -m training.grounding_judge` makes the model from six human-labelled sources and
synthetic edits of the corpus; `benchmarks/grounding.py` measures it on held-out pairs.

`llm`: the configured OpenAI-compatible model with prompts/judge.md, for when a model is
available and worth paying for.

Treat `not_supported` as "check this", not as "this is false".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from .chat_model import ChatModel, OpenAIChat
from .errors import AssistantError, Problem
from .grounding_model import best_windows
from .prompts import defuse, load_prompt
from .text import (
    neutralize_markers,
    numbers_in,
    split_sentences,
    strip_fence,
)

if TYPE_CHECKING:
    from .grounding_model import CrossEncoder
    from .settings import Settings

MODEL_DIR = Path(__file__).resolve().with_name("grounding_model")
Label = Literal["supported", "not_supported"]


@dataclass(frozen=True)
class Verdict:
    score: float  # probability that the evidence supports the claim, 0..1, never NaN
    label: Label

    @property
    def supported(self) -> bool:
        return self.label == "supported"


NOT_SUPPORTED = Verdict(0.0, "not_supported")


class Judge(Protocol):
    """What the eval harness calls: verdicts for (claim, evidence) pairs, and what made them."""

    name: str  # "local" or "llm"

    def describe(self) -> dict: ...

    def judge_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]: ...


JUDGES = ("local", "llm")


def make_judge(settings: Settings, name: str) -> Judge:
    """The named judge; the local one reads in the embedder's precision (bf16 where the CPU
    has it natively)."""
    if name == "local":
        return LocalJudge(precision=settings.embed_precision)
    if name == "llm":
        return LLMJudge(settings)
    raise AssistantError(f"unknown judge {name!r}", f"choose one of: {', '.join(JUDGES)}")


# --- Words and numbers ------------------------------------------------------------------------

# Words that say which way something changed, for `polarity`.
UP = re.compile(
    r"\b(?:increase[sd]?|increasing|higher|more|greater|elevated|enhance[sd]?|enhancing|"
    r"improve[sd]?|improving|promote[sd]?|promoting|activate[sd]?|activating|upregulate[sd]?|"
    r"raise[sd]?|raising|accelerate[sd]?|induce[sd]?|inducing|stimulate[sd]?|worse[ns]?)\b",
    re.IGNORECASE,
)
DOWN = re.compile(
    r"\b(?:decrease[sd]?|decreasing|lower|less|fewer|reduce[sd]?|reducing|reduction|"
    r"inhibit|inhibits|inhibited|inhibiting|suppress|suppresses|suppressed|downregulate[sd]?|"
    r"impair|impairs|impaired|attenuate[sd]?|diminish|diminishes|diminished|prevent|prevents|"
    r"prevented|slow|slows|slowed|block|blocks|blocked)\b",
    re.IGNORECASE,
)
PLAIN_NEGATION = re.compile(r"\b(?:not|no|never|cannot|neither|nor)\b|n't\b", re.IGNORECASE)


def polarity(text: str) -> int:
    """+1 if the text says something goes up, -1 down, 0 neither or both; a plain negation
    flips it ("did not reduce" is +1). Only plain negations: wider ones (lacking, independent)
    would flip too many sentences that describe a decrease in other words."""
    direction = int(bool(UP.search(text))) - int(bool(DOWN.search(text)))
    return -direction if PLAIN_NEGATION.search(text) else direction


def ungrounded_numbers(claim: str, evidence: str) -> set[str]:
    """The claim's numbers (2,400 = 2400) that the evidence does not contain."""
    return numbers_in(claim) - numbers_in(evidence)


def closest_sentence(claim: str, evidence: str) -> str:
    """The evidence sentence sharing the most stemmed content words with the claim (the
    ranking the cross-encoder's windows are chosen by)."""
    return best_windows(claim, split_sentences(evidence) or [evidence], keep=1)[0]


# --- Calibration -----------------------------------------------------------------------------
#
# Measured and dropped: stacking the logit with word-overlap cues (the IDF-weighted share of
# the claim's terms in the evidence and in its best sentence, numbers missing) moved SciFact
# +0.015 but HealthVer -0.024 and COVID-Fact -0.048 held out (benchmarks/grounding.py).


@dataclass(frozen=True)
class Linear:
    """A fitted logistic regression's linear part over standardised inputs."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num(((x - self.mean) / self.scale) @ self.weights + self.bias)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Linear:
        as_array = lambda key: np.array(d[key], dtype=np.float64)  # noqa: E731
        return cls(as_array("mean"), as_array("scale"), as_array("weights"), float(d["bias"]))

    def to_dict(self) -> dict[str, Any]:
        rounded = lambda v: [round(float(x), 6) for x in v]  # noqa: E731
        return {
            "mean": rounded(self.mean),
            "scale": rounded(self.scale),
            "weights": rounded(self.weights),
            "bias": round(self.bias, 6),
        }


# Uncalibrated (training's own use): the logit itself, cut at 0.5.
LOGIT_ONLY = Linear(np.zeros(1), np.ones(1), np.ones(1), 0.0)


def veto(claim: str, evidence: str, closest: str) -> str | None:
    """Why the evidence cannot support the claim whatever the models say, or None: a number
    the evidence lacks, or a change in the opposite direction to the closest sentence's
    (increased vs reduced, reduced vs did not reduce). Both are typical of generated text that
    misreports its source, and too rare in the training data for a weight to learn them."""
    if ungrounded_numbers(claim, evidence):
        return "a number the evidence does not contain"
    if polarity(claim) * polarity(closest) < 0:
        return "the closest sentence says the opposite direction"
    return None


# --- The local judge ----------------------------------------------------------------------------


class LocalJudge:
    """The cross-encoder's logit turned into a probability by the logistic calibration
    fitted on pairs it never trained on; a vetoed pair (`veto`) is capped at `veto_cap`
    when the calibration found that the veto helps."""

    name = "local"

    def __init__(
        self, model_dir: Path = MODEL_DIR, precision: str = "auto", calibrated: bool = True
    ) -> None:
        from .grounding_model import CrossEncoder

        self.model_dir = Path(model_dir)
        bf16 = None if precision == "auto" else precision == "bf16"
        self.encoder: CrossEncoder = CrossEncoder(
            self.model_dir / "delta.safetensors", self.model_dir / "config.json", bf16=bf16
        )
        calibration = self.encoder.config.get("calibration") if calibrated else None
        calibration = calibration or {"threshold": 0.5, "veto_cap": None}
        self.platt = (
            Linear.from_dict(calibration["model"]) if "model" in calibration else LOGIT_ONLY
        )
        self.threshold = float(calibration["threshold"])
        self.veto_cap: float | None = calibration.get("veto_cap")
        if self.veto_cap is not None and self.veto_cap >= self.threshold:
            raise ValueError(f"{self.model_dir}: veto_cap must be below the threshold")

    @cached_property
    def digest(self) -> str:
        """Identifies the verdicts' source: the delta and its calibration, hashed together."""
        sha = hashlib.sha256()
        for name in ("delta.safetensors", "config.json"):
            sha.update((self.model_dir / name).read_bytes())
        return sha.hexdigest()[:12]

    def describe(self) -> dict:
        return {
            "judge": self.name,
            "version": self.encoder.config.get("version", 1),
            "model": self.digest,
            "base": "all-MiniLM-L6-v2",
            "threshold": self.threshold,
            "precision": "bf16" if self.encoder.bf16 else "fp32",
        }

    def judge(self, claim: str, evidence: str) -> Verdict:
        return self.judge_many([(claim, evidence)])[0]

    def judge_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """One verdict per pair, in order; an empty claim or evidence is not_supported
        without reading it. All pairs go through the model together, in length-sorted
        batches: a list of pairs costs far less than the same pairs one by one."""
        cleaned = [(claim.strip(), evidence.strip()) for claim, evidence in pairs]
        present = [i for i, (claim, evidence) in enumerate(cleaned) if claim and evidence]
        verdicts = [NOT_SUPPORTED] * len(pairs)
        if not present:
            return verdicts
        chosen = [cleaned[i] for i in present]
        for i, score in zip(present, self.scores(chosen), strict=True):
            label: Label = "supported" if score >= self.threshold else "not_supported"
            verdicts[i] = Verdict(score, label)
        return verdicts

    def scores(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Probabilities, at most `veto_cap` for a vetoed pair; never NaN."""
        z = np.clip(self.platt(self.encoder.logits(pairs)[:, None]), -30, 30)
        out = []
        for (claim, evidence), p in zip(pairs, 1 / (1 + np.exp(-z)), strict=True):
            score = float(p)
            if self.veto_cap is not None and self.vetoed(claim, evidence):
                score = min(score, self.veto_cap)
            out.append(0.0 if math.isnan(score) else score)
        return out

    def vetoed(self, claim: str, evidence: str) -> bool:
        return veto(claim, evidence, closest_sentence(claim, evidence)) is not None


# --- Pairs from a file (the `judge` command) ----------------------------------------------------


@dataclass(frozen=True)
class PairRow:
    id: str | int
    claim: str
    evidence: str


def read_pairs(path: Path) -> list[PairRow]:
    """`{"id", "claim", "evidence"}` per line, blank lines skipped. Every bad line is found
    before any model is loaded, and all of them are reported at once, each as
    `file:line: field: what is wrong`: an empty claim or evidence is bad input, not a 0.0."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"cannot read {path}: {exc}") from None
    rows, problems = [], []
    for number, line in enumerate(lines, 1):
        if line.strip():
            row, problem = pair_row(line, str(path), number)
            rows += [row] if row else []
            problems += [problem] if problem else []
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise AssistantError(f"{len(problems)} bad line(s) in {path}:\n{listed}", JSONL_HINT)
    return rows


def pair_row(line: str, file: str, number: int) -> tuple[PairRow | None, Problem | None]:
    try:
        row = json.loads(line)
    except ValueError as exc:
        return None, Problem(file, number, "line", f"not JSON ({exc})")
    if not isinstance(row, dict):
        return None, Problem(file, number, "line", "not a JSON object")
    for field, kinds in (("id", (str, int)), ("claim", (str,)), ("evidence", (str,))):
        if field not in row:
            return None, Problem(file, number, field, "missing")
        value = row[field]
        if not isinstance(value, kinds) or isinstance(value, bool):
            kind = "a string or an integer" if field == "id" else "a string"
            return None, Problem(file, number, field, f"must be {kind}")
        if field != "id" and not value.strip():
            return None, Problem(file, number, field, "empty: there is nothing to judge")
    return PairRow(row["id"], row["claim"], row["evidence"]), None


JSONL_HINT = 'one {"id": ..., "claim": "...", "evidence": "..."} object per line'


# --- The LLM judge -------------------------------------------------------------------------------


def defuse_judged(text: str) -> str:
    """Evidence and claim can't open or close the prompt's <source> or <claim> blocks."""
    return defuse(neutralize_markers(text))


VERDICT_WORDS: dict[str, Label] = {"supported": "supported", "not_supported": "not_supported"}


def parse_verdict(reply: str) -> Label | None:
    """The label in a reply of exactly `{"verdict": "supported"|"not_supported"}` (a code fence
    around it allowed) or of that single word; None for anything else. Strict on purpose: a
    reply that hedges or explains is treated as malformed rather than guessed at."""
    text = strip_fence(reply)
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, dict) and value.keys() == {"verdict"}:
            return VERDICT_WORDS.get(str(value["verdict"]).strip().lower())
        return None
    return VERDICT_WORDS.get(text.strip(".\"' ").lower())


class LLMJudge:
    """The configured OpenAI-compatible model, asked with prompts/judge.md at temperature 0.

    A malformed reply is asked once more; a second one gives `not_supported` (score 0.0) and
    counts in `errors`, so a report can say how many verdicts were not the model's. Transport
    failures (after the client's own retries) raise LLMError: a verdict nobody produced
    should not be averaged into a score.
    """

    name = "llm"

    def __init__(self, settings: Settings, chat_model: ChatModel | None = None) -> None:
        self.settings = settings
        self.chat_model: ChatModel = chat_model or OpenAIChat(settings)
        self.prompt = load_prompt("judge", settings.prompts_dir)
        self.retries = 0  # malformed replies that were asked again
        self.errors = 0  # pairs still malformed after the retry: judged not_supported

    def describe(self) -> dict:
        model = self.chat_model.describe()
        return {
            "judge": self.name,
            "server": model["base_url"],  # same name, other weights
            "model": model["model"],
            "prompt_version": self.prompt.version,
            "prompt_sha": self.prompt.sha,
            "retries": self.retries,
            "errors": self.errors,
        }

    def judge_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        return [self.judge(claim, evidence) for claim, evidence in pairs]

    def judge(self, claim: str, evidence: str) -> Verdict:
        if not (claim.strip() and evidence.strip()):
            return NOT_SUPPORTED
        prompt = self.prompt.render(
            evidence=defuse_judged(evidence.strip()), claim=defuse_judged(claim.strip())
        )
        for attempt in range(2):
            label = parse_verdict(self.complete(prompt))
            if label is not None:
                return Verdict(1.0 if label == "supported" else 0.0, label)
            if attempt == 0:
                self.retries += 1
        self.errors += 1
        return NOT_SUPPORTED

    def complete(self, prompt: str) -> str:
        # Not streamed, at temperature 0: one word of JSON is all a verdict needs.
        reply = self.chat_model.complete([{"role": "user", "content": prompt}], temperature=0.0)
        return reply.finish()
