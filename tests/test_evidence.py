"""The brief's evidence table, cleaned sentences, themes and agreements: the pieces on
hand-made abstracts, and the whole `summarize --json --csv` on a small index with the fake
embedder and the word-counting judge, one paper of it injected with HTML."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder, WordJudge, write_papers

from assistant.agreements import Claim, find_relations
from assistant.brief_sentences import (
    brief_sentences,
    clean_sentence,
    dangling,
    drop_openers,
    method_name,
)
from assistant.cli import main
from assistant.components import Components
from assistant.corpus import read_corpus
from assistant.evidence import evidence_row, table_csv, table_markdown
from assistant.ingest import ingest
from assistant.settings import Settings
from assistant.text import numbers_in, strip_markup
from assistant.themes import MOST_PER_THEME, theme_groups
from assistant.types import Paper, Source

MEDUSA = (
    "med",
    "Medusa: Decoding heads for speculative decoding",
    "Speculative decoding needs a separate draft model. In this paper, we present Medusa, a "
    "method that adds decoding heads to predict several tokens at once. Experiments on "
    "MT-Bench and GSM8K with Vicuna models show that Medusa achieves a 2.2x speedup of "
    "speculative decoding on Vicuna models. Secondly, we study tree attention for verifying "
    "drafted tokens in speculative decoding.",
)
CHIMERA = (
    "chi",
    "Chimera: A lightweight draft model",
    "Decoding is slow. To address this challenge, we propose Chimera, a lightweight draft "
    "model for speculative decoding. Chimera achieves a 2.2x speedup of speculative decoding "
    "on Vicuna models. Our method is limited to greedy decoding, and sampling remains an open "
    "question for speculative decoding.",
)
SPEC_UP = (
    "up",
    "Revisiting speculative decoding on long prompts",
    "Speculative decoding is widely used. We measure speculative decoding with SpecInfer on "
    "long prompts. We find that SpecInfer increases the latency of speculative decoding on "
    "long prompts by 12%.",
)
SPEC_DOWN = (
    "down",
    "SpecInfer: Tree-based speculative decoding",
    "Speculative decoding drafts tokens with a small model. We propose SpecInfer, which "
    "verifies a token tree of speculative decoding in one pass. Our results show that "
    "SpecInfer reduces the latency of speculative decoding on long prompts by 30%.",
)
HOSTILE = (
    "evil",
    '<script>alert(1)</script><img src=x title="titles" onerror=alert(2)> Speculative '
    "decoding titles",
    '<img src=x onerror=alert(3) title="titles"> Speculative decoding with script img titles '
    "<script>document.title='img script titles'</script>. We propose a draft verification "
    "scheme for speculative decoding with <b>img</b> titles. The scheme achieves a 1.5x "
    "speedup of speculative decoding.",
)
PAPERS = [MEDUSA, CHIMERA, SPEC_UP, SPEC_DOWN, HOSTILE]


def paper(triple: tuple[str, str, str], marker: int = 1) -> Source:
    pid, title, abstract = triple
    return Source(marker, Paper(pid, title, abstract), 1.0, "")


# --- sentences -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "name", "expected"),
    [
        ("Secondly, we leverage the representations.", "Chimera", "Chimera leverages the "
         "representations."),
        ("In light of these limitations, we propose Chimera, a novel framework for sampling.",
         "Chimera", "Chimera is a novel framework for sampling."),
        ("To address this challenge, current approaches add extra decoding heads.", None,
         "Current approaches add extra decoding heads."),
        ("In this paper, we propose SpeCache, which offloads the KV cache to CPU memory.",
         "SpeCache", "SpeCache offloads the KV cache to CPU memory."),
        ("Moreover, our approach reduces memory by 30%.", None,
         "The proposed approach reduces memory by 30%."),
        ("We show that it works.", None, "The authors show that it works."),
    ],
)  # fmt: skip
def test_sentences_stand_alone(sentence: str, name: str | None, expected: str) -> None:
    assert clean_sentence(sentence, name) == expected
    assert not dangling(expected)


def test_an_opener_that_carries_the_meaning_stays() -> None:
    kept = "Using a tree-based attention mechanism, Medusa verifies candidates at once."
    assert drop_openers(kept) == kept
    assert drop_openers("However, it fails.") == "However, it fails."  # nothing would be left


def test_method_names_come_from_titles_and_recurring_coinages() -> None:
    assert method_name(*MEDUSA[1:]) == "Medusa"
    assert method_name("Jump to Conclusions: Skipping layers", "We skip layers.") is None
    coined = "We propose KVzip, which compresses caches. KVzip is fast."
    assert method_name("Query-agnostic cache compression", coined) == "KVzip"
    assert method_name("Some title", "We propose Once, a thing.") is None  # said once only


def test_sentences_split_where_exports_glued_them_and_not_inside_parentheses() -> None:
    abstract = (
        "Methods need reordering, rotation, etc. To address these challenges, we propose "
        "QRazor, a scheme. Errors of 50 pairs are strongly correlated (avg. 0.95) across "
        "models. We leverage the representations from the original LLM.Through evaluation "
        "on Vicuna, QRazor is 2.7x faster."
    )
    assert brief_sentences(abstract) == (
        "Methods need reordering, rotation, etc.",
        "To address these challenges, we propose QRazor, a scheme.",
        "Errors of 50 pairs are strongly correlated (avg. 0.95) across models.",
        "We leverage the representations from the original LLM.",
        "Through evaluation on Vicuna, QRazor is 2.7x faster.",
    )


def test_an_acronym_names_the_method_only_as_what_is_proposed() -> None:
    rope = (
        "We optimize the transformation, and to remain compatible with rotary position "
        "embeddings (RoPE), we also introduce strategies for keys with RoPE."
    )
    assert method_name("Converting attention heads for memory savings", rope) is None
    dmc = "We propose Dynamic Memory Compression (DMC), which compresses caches. DMC is fast."
    assert method_name("Retrofitting LLMs for accelerated inference", dmc) == "DMC"


def test_markup_is_stripped_entities_too() -> None:
    assert strip_markup("<img src=x onerror=alert(1)>Fast &lt;b&gt;decoding&lt;/b&gt;") == (
        "Fast decoding"
    )
    assert strip_markup("a < b and c > d") == "a < b and c > d"


# --- the evidence table ----------------------------------------------------------------------


def test_a_row_says_what_a_paper_proposes_reports_and_evaluates_on() -> None:
    row = evidence_row(paper(MEDUSA, 3))
    assert row.marker == 3 and row.name == "Medusa"
    assert row.proposes.startswith("Medusa, a method that adds decoding heads")
    assert "2.2x speedup" in row.reports and numbers_in(row.reports) <= numbers_in(MEDUSA[2])
    assert row.evaluated_on == ["MT-Bench", "GSM8K"]  # Vicuna is a model, not a benchmark


def test_the_table_escapes_corpus_text_and_csv_defuses_formulas() -> None:
    source = paper(("x", "A | B <b>", "=HYPERLINK(1) We propose a pipe | tool for tables."), 1)
    row = evidence_row(source)
    markdown = table_markdown([row])
    assert markdown.count("\n| [1] ") == 1 and "\\|" in markdown and "<b>" not in markdown
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in markdown.splitlines()[2:]]
    assert cells == [5, 5, 5]  # header, rule, row: four columns, none split by the title
    rows = list(csv.reader(io.StringIO(table_csv([row]))))
    assert rows[0][:2] == ["marker", "paper_id"] and rows[1][0] == "1"
    assert all(not cell.startswith("=") for cell in rows[1])


# --- themes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 13, 25])
def test_themes_hold_two_to_six_papers(n: int) -> None:
    rng = np.random.default_rng(n)
    points = rng.normal(size=(n, 8))
    points[: n // 2] += 4.0  # one tight cluster, the rest spread out
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    groups = theme_groups(points)
    assert sorted(i for g in groups for i in g) == list(range(n))
    assert all(len(g) <= MOST_PER_THEME for g in groups)
    assert n == 1 or all(len(g) >= 2 for g in groups)


# --- agreements ------------------------------------------------------------------------------


def test_agreements_need_the_judge_and_disagreements_opposite_directions() -> None:
    medusa, chimera = paper(MEDUSA, 1), paper(CHIMERA, 2)
    up, down = paper(SPEC_UP, 3), paper(SPEC_DOWN, 4)
    claims = [
        Claim(medusa, "Medusa", "Medusa achieves a 2.2x speedup of speculative decoding."),
        Claim(chimera, "Chimera", "Chimera achieves a 2.2x speedup of speculative decoding."),
        Claim(
            up,
            None,
            "SpecInfer increases the latency of speculative decoding by 12% when prompts grow.",
        ),
        Claim(
            down,
            "SpecInfer",
            "SpecInfer reduces the latency of speculative decoding on long prompts by 30%.",
        ),
    ]
    judge = WordJudge()
    relations = find_relations(claims, judge)
    kinds = {(r.kind, r.first.source.marker, r.second.source.marker) for r in relations}
    assert kinds == {("agree", 1, 2), ("disagree", 3, 4)}
    assert judge.pairs <= 2 * 6  # only pairs sharing a quantity and a subject were judged

    never = type(
        "Never",
        (WordJudge,),
        {
            "judge_many": lambda self, pairs: [
                type("V", (), {"supported": False, "score": 0.0})() for _ in pairs
            ]
        },
    )()
    assert [r.kind for r in find_relations(claims, never)] == ["disagree"]  # fmt: skip


# --- the whole brief, from the command line ----------------------------------------------------


def test_summarize_writes_table_csv_and_json_without_markup(
    settings: Settings, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake embedder's vectors mean nothing to the topic model: every paper is kept, so
    # that what is tested is the writing.
    monkeypatch.setenv("ASSISTANT_SUMMARY_MIN_RELEVANCE", "0")
    embedder = FakeEmbedder()
    path = write_papers(tmp_path / "p.jsonl", PAPERS)
    ingest(settings, read_corpus([path]), [path], embedder, progress=False)
    judge = WordJudge()

    def components(s: Settings) -> Components:
        return Components(s, embedder=embedder, judge=judge)

    out = tmp_path / "table.csv"
    index = ["--index", str(settings.index_dir)]
    argv = ["summarize", "speculative decoding", "--json", "--csv", str(out), *index]
    assert main(argv, make_components=components) == 0
    brief = json.loads(capsys.readouterr().out)

    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert [int(r["marker"]) for r in rows] == [c["marker"] for c in brief["citations"]]
    assert [r["marker"] for r in brief["evidence_table"]] == [c["marker"] for c in
                                                               brief["citations"]]  # fmt: skip
    for theme in brief["themes"]:
        name = theme["name"].lower()
        assert not any(tag in name for tag in ("script", "img", "onerror", "src", "titles", "<"))
        assert 2 <= len(theme["paper_ids"]) <= 6
    markdown = brief["markdown"]
    assert not re.search(r"(?<!\\)<", markdown)  # every < of the hostile title escaped
    assert "onerror" not in markdown.split("## References")[0]  # and no tag in the prose
    assert "## Evidence table" in markdown and "## Agreements and disagreements" in markdown
    assert judge.pairs > 0
    kinds = {r["kind"] for r in brief["relations"]}
    assert "agree" in kinds and "**Agree** on speedup" in markdown
    # the open question is the limitation Chimera states, not a problem statement
    gaps = markdown.split("## Open questions", 1)[1].split("\n## ", 1)[0]
    assert "limited to greedy decoding" in gaps and "Decoding is slow" not in gaps
