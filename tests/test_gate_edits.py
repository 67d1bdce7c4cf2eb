"""The gate against a candidate prompt whose answers stay cited but say what the sources don't.

A scripted model (the real openai client, over real HTTP, to tests/openai_server.py) writes
each answer from the sources in the prompt it is sent. Under the current prompts it quotes
the abstract sentences that best match the question, each with its own [n]. Under a
candidate prompt it either rewords those sentences harmlessly, or edits about a third of
them the way models misreport a source (`assistant/evals/edits.py`: a number, a negation,
a direction, another method's name, a hedge stated as fact, an added clause), every marker
still valid. The real local judge scores both sides, through `eval --prompts`.

The gate must fail the edits on faithfulness and citation precision, naming the items and
sentences that got worse, and pass the rewording. The gate is only as good as the judge:
`test_the_judge_catches_the_edits` asks that at most a quarter go unnamed, and
when it fails its message counts, by kind, the edits the judge missed and shows each one.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, SEED_CORPUS, FakeEmbedder, components_with, isolate, write_jsonl
from openai_server import ScriptedOpenAI

from assistant.cli import main
from assistant.corpus import read_corpus
from assistant.evals.edits import EDITS, corrupt, names_in, reword
from assistant.ingest import ingest
from assistant.settings import Settings
from assistant.text import abstract_sentences, terms

pytestmark = pytest.mark.slow  # the real judge's model

ITEMS = 8  # single-paper questions of evals/datasets/answers.jsonl, each with its paper
SENTENCES = 3  # per answer; the careless prompt edits one of each three
SOURCE = re.compile(r'<source n="(\d+)" title="[^"]*">\n(.*?)\n</source>', re.DOTALL)
QUESTION = re.compile(r"^Question: (.*)$", re.MULTILINE)
CARELESS = "State each finding confidently and completely, as a reader would want it."
PARAPHRASE = "Put each finding in your own words rather than quoting."


@dataclass
class Written:
    """What the scripted model changed in one sentence, for the test to look for."""

    kind: str
    original: str
    edited: str
    marker: int

    @property
    def text(self) -> str:
        """The sentence as the answer shows it, and so as the report names it."""
        return cited(self.edited, self.marker)


@dataclass
class ScriptedWriter:
    """The model's side: answers written from the prompt, and a log of what it changed."""

    edits: list[Written] = field(default_factory=list)
    rewordings: list[Written] = field(default_factory=list)

    def __call__(self, body: dict) -> str:
        prompt = "\n".join(m["content"] for m in body["messages"])
        question = QUESTION.search(prompt)
        sources = [(int(n), text) for n, text in SOURCE.findall(prompt)]
        assert question and sources, "the scripted model only answers answer prompts"
        rng = random.Random(question.group(1))  # the same prompt, the same answer
        picked = quotes(question.group(1), sources)
        texts = [sentence for _, sentence in picked]
        if CARELESS in prompt:
            names = names_in([text for _, text in sources])
            texts = self.edit_one(picked, rng, names)
        elif PARAPHRASE in prompt:
            texts = [self.paraphrase(sentence, marker, rng) for marker, sentence in picked]
        return " ".join(
            cited(text, marker) for text, (marker, _) in zip(texts, picked, strict=True)
        )

    def edit_one(
        self, picked: list[tuple[int, str]], rng: random.Random, names: list[str]
    ) -> list[str]:
        """One sentence in three edited, by the next kind of edit in turn (so that every
        kind is made), in the first sentence that offers something for it; failing that, the
        second sentence by any kind (an added clause fits every sentence)."""
        kind = list(EDITS)[len(self.edits) % len(EDITS)]
        texts = [sentence for _, sentence in picked]
        for at in (1, 0, 2):
            made = corrupt(texts[at], rng, names, kinds=[kind])
            if made is not None:
                break
        else:
            at, made = 1, corrupt(texts[1], rng, names)
        assert made is not None
        self.edits.append(Written(made.kind, texts[at], made.text, picked[at][0]))
        texts[at] = made.text
        return texts

    def paraphrase(self, sentence: str, marker: int, rng: random.Random) -> str:
        text = reword(sentence, rng)
        if text is None:
            return sentence
        self.rewordings.append(Written("reword", sentence, text, marker))
        return text


def quotes(question: str, sources: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The SENTENCES abstract sentences sharing the most words with the question (of at
    least eight words: a fragment makes a poor claim), in the order the sources give them."""
    wanted = terms(question)
    found = [
        (marker, sentence)
        for marker, text in sources
        for sentence in abstract_sentences(text)
        if len(sentence.split()) >= 8
    ]
    order = sorted(range(len(found)), key=lambda k: (-len(wanted & terms(found[k][1])), k))
    return [found[k] for k in sorted(order[:SENTENCES])]


def cited(sentence: str, marker: int) -> str:
    body = sentence.rstrip().rstrip(".")
    return f"{body} [{marker}]."


# --- the corpus, the items and the prompts ------------------------------------------------------


@pytest.fixture(scope="module")
def gate_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An index of the first ITEMS single-paper questions' papers and a dataset of those
    questions (facts left out: fact recall is not gated). Built once: the eval cache beside
    it then holds the verdicts on the current prompts' answers for the second test too."""
    rows = [json.loads(line) for line in (REPO / "evals/datasets/answers.jsonl").open()]
    items = [dict(r, facts=[]) for r in rows if r["kind"] == "single"][:ITEMS]
    titles = {r["gold_titles"][0] for r in items}
    papers = [p for p in read_corpus([SEED_CORPUS]).papers if p.title in titles]
    assert len(papers) == ITEMS
    root = tmp_path_factory.mktemp("gate")
    corpus = write_jsonl(
        root / "papers" / "papers.jsonl",
        [{"id": p.paper_id, "title": p.title, "abstract": p.abstract} for p in papers],
    )
    index = root / "index"
    # Retrieval is not what is tested; the judge loads its own model whatever the embedder.
    embedder = FakeEmbedder()
    ingest(Settings(index_dir=index), read_corpus([corpus]), [corpus], embedder, progress=False)
    return index, write_jsonl(root / "answers.jsonl", items)


def candidate_prompts(folder: Path, version: str, instruction: str) -> Path:
    """The current prompts with one instruction added to the answer prompt."""
    shutil.copytree(REPO / "prompts", folder)
    answer = folder / "answer.md"
    text = answer.read_text(encoding="utf-8")
    text = text.replace("version: 1", f"version: {version}", 1)
    text = text.replace("- Be concise:", f"- {instruction}\n- Be concise:", 1)
    answer.write_text(text, encoding="utf-8")
    return folder


@dataclass
class GateRun:
    """What one `eval --prompts` run gave: its exit code, output, report and the changes
    the scripted model made."""

    code: int
    out: str
    err: str
    markdown: str  # report.md
    report: dict
    writer: ScriptedWriter


def run_gate(
    gate_index: tuple[Path, Path],
    root: Path,
    candidate: tuple[str, str] | None = None,
    baseline: Path | None = None,
) -> GateRun:
    """`eval --prompts CANDIDATE --baseline REPORT` on the CLI with the default judge
    (local), against a scripted model that writes from the prompt it gets; without a
    candidate (version, instruction), the current prompts alone."""
    index, dataset = gate_index
    writer = ScriptedWriter()
    server = ScriptedOpenAI().start()
    server.responder = writer
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with pytest.MonkeyPatch.context() as mp:
            isolate(mp, root)
            for name, value in {
                "OPENAI_API_KEY": "test-key",
                "OPENAI_BASE_URL": server.base_url,
                "ASSISTANT_LLM_MAX_RETRIES": "0",
                "ASSISTANT_ABSTAIN_SIMILARITY": "-1",  # the fake embedder can't decide that
                "ASSISTANT_ABSTAIN_COVERAGE": "0",
                # The same judge either way (reports and the gate ignore the precision); bf16
                # builds kernels for each new batch shape, which triples a small run's time.
                "ASSISTANT_EMBED_PRECISION": "fp32",
            }.items():
                mp.setenv(name, value)
            out = root / "out"
            args = ["eval", "--dataset", str(dataset), "--index", str(index), "--out", str(out)]
            args += ["--backend", "openai", "--quiet"]
            if candidate is not None:
                args += ["--prompts", str(candidate_prompts(root / "candidate", *candidate))]
            if baseline is not None:
                args += ["--baseline", str(baseline)]
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = main(args, make_components=components_with(FakeEmbedder()))
    finally:
        server.close()
    assert server.unexpected == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    markdown = (out / "report.md").read_text(encoding="utf-8")
    return GateRun(code, stdout.getvalue(), stderr.getvalue(), markdown, report, writer)


@pytest.fixture(scope="module")
def gate_baseline(gate_index, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The current prompts' report, made as `evals/baseline` is: what candidates are gated
    against."""
    root = tmp_path_factory.mktemp("baseline")
    run = run_gate(gate_index, root)
    assert run.code == 0, run.err
    return root / "out" / "report.json"


@pytest.fixture(scope="module")
def careless(gate_index, gate_baseline, tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    root = tmp_path_factory.mktemp("careless")
    return run_gate(gate_index, root, ("1-careless", CARELESS), gate_baseline)


@pytest.fixture(scope="module")
def paraphrase(gate_index, gate_baseline, tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    root = tmp_path_factory.mktemp("reworded")
    return run_gate(gate_index, root, ("1-reworded", PARAPHRASE), gate_baseline)


def table_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def worse_sentences(run: GateRun) -> dict[str, list[dict]]:
    """The sentences the comparison says got worse, by item."""
    items = run.report["prompt_comparison"]["items"]
    return {i["uid"]: i["worse_sentences"] for i in items if i["worse_sentences"]}


# --- the tests ---------------------------------------------------------------------------------


def test_the_gate_fails_a_prompt_whose_answers_misreport_their_sources(careless) -> None:
    comparison = careless.report["prompt_comparison"]
    rows = {r["metric"]: r for r in comparison["rows"]}
    answered = [i for i in careless.report["items"] if not i["abstained"]]
    assert len(answered) == ITEMS and len(careless.writer.edits) == ITEMS  # one per answer
    assert {e.kind for e in careless.writer.edits} == set(EDITS)  # every kind was made
    assert rows["citation_validity"]["candidate"] == 1.0  # every marker still valid
    assert rows["faithfulness"]["baseline"] == 1.0, "the judge rejects a quoted sentence"
    assert careless.code == 1 and "FAILED: the candidate prompts regress" in careless.err
    # against the baseline report too (the run's report is the candidate's), by name
    assert "Against the baseline" in careless.out
    dropped = next(line for line in careless.err.splitlines() if "dropped beyond" in line)
    assert "faithfulness" in dropped and "citation_precision" in dropped
    assert rows["faithfulness"]["regressed"] and rows["citation_precision"]["regressed"]
    # Which items and sentences got worse: in what the command printed, and in report.md.
    worse = worse_sentences(careless)
    assert worse
    for shown in (careless.out, careless.markdown):
        assert "Sentences that got worse in the candidate" in shown
        for uid, sentences in worse.items():
            for sentence in sentences:
                assert f"| {uid} | {table_cell(sentence['text'])} | not faithful" in shown
    edited = {e.text for e in careless.writer.edits}
    assert all(s["text"] in edited for ss in worse.values() for s in ss)  # nothing else


def test_the_judge_catches_the_edits(careless) -> None:
    """The gate is only as good as the judge: at most a quarter of the edited sentences may
    go unnamed (judge version 2 missed half: 4 of 8; version 4 misses an entity
    swap inside a 60-word sentence)."""
    named = {s["text"] for sentences in worse_sentences(careless).values() for s in sentences}
    edits = careless.writer.edits
    missed = [e for e in edits if e.text not in named]
    assert len(missed) <= len(edits) // 4, "the judge missed {} of {} edits ({}):\n{}".format(
        len(missed),
        len(edits),
        ", ".join(caught_by_kind(edits, named)),
        "\n".join(f"- {e.kind}: {e.text}\n  (was: {e.original})" for e in missed),
    )


def caught_by_kind(edits: list[Written], named: set[str]) -> list[str]:
    """'number: 1 of 2 caught', for each kind of edit made."""
    kinds = [k for k in EDITS if any(e.kind == k for e in edits)]
    made = {k: [e for e in edits if e.kind == k] for k in kinds}
    return [f"{k}: {sum(e.text in named for e in made[k])} of {len(made[k])} caught" for k in kinds]


def test_the_gate_passes_a_prompt_that_only_rewords(paraphrase) -> None:
    shown = {s["text"] for i in paraphrase.report["items"] for s in i["sentences"]}
    assert len(paraphrase.writer.rewordings) >= ITEMS  # the answers did change
    assert all(r.text in shown for r in paraphrase.writer.rewordings)
    rows = paraphrase.report["prompt_comparison"]["rows"]
    assert not [r["metric"] for r in rows if r["regressed"]], paraphrase.out
    assert paraphrase.code == 0, paraphrase.err
    assert "Against the baseline" in paraphrase.out
    assert "Sentences that got worse" not in paraphrase.out + paraphrase.markdown
