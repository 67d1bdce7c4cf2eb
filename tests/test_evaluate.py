"""The eval harness: scoring on constructed answers, caching, resuming, and the gate.

Most tests use a six-paper index with the fake embedder and `WordJudge`, a transparent
stand-in judge (a claim is supported when the evidence contains nearly all of its content
words), so each expected number can be worked out by hand. The OpenAI path runs the real
client against the scripted server, so "zero HTTP calls" is counted at the server. One test
drives the CLI end to end on the real seed index with the real judge.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, SMALL_PAPERS, FakeEmbedder, WordJudge, write_jsonl, write_papers
from openai_server import ScriptedOpenAI

from assistant.components import Components
from assistant.corpus import read_corpus
from assistant.errors import AssistantError
from assistant.evals.compare import aggregate, compare_reports, load_report
from assistant.evals.datasets import load_dataset, load_tolerances, select_subset
from assistant.evals.runner import Harness, run_eval
from assistant.evals.scoring import answer_claims
from assistant.index import PaperIndex
from assistant.ingest import ingest
from assistant.settings import Settings
from assistant.summarize import TopicError
from assistant.types import Paper, Source, Usage

PAPERS = SMALL_PAPERS
TITLES = {pid: title for pid, title, _ in PAPERS}
ITEMS = [
    {
        "id": "single-001",
        "kind": "single",
        "question": "How does sparse attention cut the cost of reading long documents?",
        "gold_titles": [TITLES["attn"]],
        "facts": ["attending to a few blocks per token cuts the quadratic cost"],
    },
    {
        "id": "single-002",
        "kind": "single",
        "question": "How does quantizing language model weights to four bits save memory?",
        "gold_titles": [TITLES["quant"]],
        "facts": [],
    },
    {
        "id": "unans-001",
        "kind": "unanswerable",
        "question": "What is the best recipe for sourdough bread?",
        "gold_titles": [],
        "facts": [],
    },
]
CITED = [
    "Sparse attention cuts the quadratic cost of attention over long context windows [1].",
    "We quantize the weights of language models to four-bit integers [1]. Quantization saves "
    "memory [1].",
    "The indexed papers don't cover sourdough bread.",
]
UNCITED = [re.sub(r" \[\d+\]", "", text) for text in CITED]


@pytest.fixture
def small(tmp_path: Path, fake_embedder: FakeEmbedder) -> tuple[Settings, PaperIndex, Path]:
    corpus = write_papers(tmp_path / "papers" / "papers.jsonl", PAPERS)
    settings = Settings(
        index_dir=tmp_path / "index",
        data_dir=tmp_path / "papers",
        llm="extractive",
        abstain_similarity=-1.0,  # the fake embedder's scores must not decide abstention
        abstain_coverage=0.0,
    )
    ingest(settings, read_corpus([corpus]), [corpus], fake_embedder, progress=False)
    dataset = write_jsonl(tmp_path / "data" / "answers.jsonl", ITEMS)
    return settings, PaperIndex.open(settings), dataset


def configure(settings: Settings, **overrides: object) -> Settings:
    """The same settings with some changed, validated (a key becomes a SecretStr)."""
    return Settings(**(settings.model_dump() | overrides))


def small_run(small, fake_embedder, tmp_path: Path, out: str, **kwargs) -> dict:
    settings, index, dataset = small
    settings = kwargs.pop("settings", settings)
    judge = kwargs.pop("judge_impl", WordJudge())
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    opened = Components(settings, index=index, embedder=fake_embedder, judge=judge)
    return run_eval(settings, dataset=dataset, out_dir=tmp_path / out, components=opened, **kwargs)


# --- Scoring constructed answers ------------------------------------------------------------


def paper(pid: str) -> Paper:
    title, abstract = next((t, a) for p, t, a in PAPERS if p == pid)
    return Paper(pid, title, abstract)


def scored(text: str, facts: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    harness = Harness.__new__(Harness)  # only the judging part, no index or backend
    harness.judge = WordJudge()
    harness.judge_fingerprint = harness.judge.describe()
    harness.judge_pairs = 0
    harness.judge_seconds = 0.0

    class NoCache:
        hits = 0

        def get(self, key: str) -> None:
            return None

        def put(self, key: str, value: object) -> None:
            pass

    harness.judge_cache = NoCache()
    papers = {1: paper("attn"), 2: paper("quant"), 3: paper("speech")}
    sentences, fact_rows, _ = harness.judge_answer(text, papers, facts or [])
    return sentences, fact_rows


def test_alce_recall_and_precision_on_a_constructed_answer() -> None:
    text = (
        "Sparse attention cuts the quadratic cost of attention [1]. "  # supported by [1]
        "Quantization saves memory and speeds up inference [1][2]. "  # [2] supports, [1] doesn't
        "Self-supervised pretraining lowers the word error rate [1]. "  # [3] would; [1] doesn't
        "Attention blocks transcribe recordings of untranscribed speech [1, 3]. "  # only together
        "Protein folding improves dialogue reward models [2]."  # no source says so
    )
    sentences, _ = scored(text)
    assert [s["markers"] for s in sentences] == [[1], [1, 2], [1], [1, 3], [2]]
    assert [s["supported"] for s in sentences] == [True, True, False, True, False]
    assert [s["precise"] for s in sentences] == [[1], [2], [], [1, 3], []]
    assert [s["imprecise"] for s in sentences] == [[], [1], [1], [], [2]]
    # Faithfulness looks at every cited source: sentence 3 is in [3], which the answer cites.
    assert [s["faithful"] for s in sentences] == [True, True, True, True, False]


def test_silent_sources_are_not_faithful_and_uncited_sentences_fail_recall() -> None:
    text = (
        "Sparse attention cuts the quadratic cost of attention [1]. "
        "Sparse attention was invented in 1850 by a famous baker."  # the sources are silent
    )
    sentences, _ = scored(text)
    assert [s["supported"] for s in sentences] == [True, False]
    assert sentences[1]["markers"] == [] and sentences[1]["faithful"] is False


def test_fact_recall_reads_the_answer_not_the_sources() -> None:
    text = "Sparse attention cuts the quadratic cost of attention [1]."
    _, facts = scored(
        text, ["sparse attention cuts the quadratic cost", "four-bit integers quantize weights"]
    )
    assert [f["supported"] for f in facts] == [True, False]


def test_claims_drop_markers_bullets_and_fixed_lines() -> None:
    text = (
        "Extractive answer: the most relevant sentences from the retrieved abstracts.\n"
        "- Sparse: Attending to a few blocks per token cuts the cost [1].\n"
        "Sources\n"
        "Quantization saves memory and time [2, 3]."
    )
    assert answer_claims(text) == [
        # the bullet's paper label goes too: the marker already names the paper
        ("Attending to a few blocks per token cuts the cost.", frozenset({1})),
        ("Quantization saves memory and time.", frozenset({2, 3})),
    ]


def test_abstentions_are_scored_never_nan() -> None:
    records = [
        {"uid": "a", "scores": {"abstention_accuracy": [1, 1], "faithfulness": [2, 3]}},
        {"uid": "b", "scores": {"abstention_accuracy": [1, 1]}},  # abstained: no sentences
        {"uid": "c", "scores": {"abstention_accuracy": [0, 1], "citation_precision": [0, 0]}},
    ]
    metrics = aggregate(records)
    assert metrics["abstention_accuracy"]["value"] == pytest.approx(2 / 3)
    assert metrics["faithfulness"] == {
        "value": pytest.approx(2 / 3),
        "numerator": 2,
        "denominator": 3,
        "items": 1,
    }
    assert metrics["citation_precision"]["value"] is None  # n/a: 0 citations
    json.dumps(metrics, allow_nan=False)  # no NaN anywhere


# --- Comparing reports ---------------------------------------------------------------------


def report_of(**scores: dict[str, list[float]]) -> dict:
    items = [{"uid": uid, "question": uid, "scores": s} for uid, s in scores.items()]
    return {"items": items, "judge": {"judge": "words"}, "index": {}}


def test_compare_recomputes_on_shared_items_and_applies_tolerances() -> None:
    baseline = report_of(
        a={"faithfulness": [3, 3], "abstained_answerable": [0, 1]},
        b={"faithfulness": [1, 1], "abstained_answerable": [0, 1]},
        c={"faithfulness": [0, 4]},  # only in the baseline: left out of both sides
    )
    candidate = report_of(
        a={"faithfulness": [2, 3], "abstained_answerable": [1, 1]},
        b={"faithfulness": [1, 1], "abstained_answerable": [0, 1]},
    )
    result = compare_reports(baseline, candidate, {"faithfulness": 0.3})
    rows = {r.metric: r for r in result.rows}
    assert rows["faithfulness"].baseline == 1.0  # 4/4 over a and b, not 4/8
    assert rows["faithfulness"].candidate == pytest.approx(0.75)
    assert not rows["faithfulness"].regressed and not result.regressed  # 0.25 <= 0.3
    assert compare_reports(baseline, candidate, {"faithfulness": 0.2}).regressed
    # Lower is better: a rise is the regression.
    assert compare_reports(baseline, candidate, {"abstained_answerable": 0.1}).regressed
    assert [i["uid"] for i in result.items] == ["a"]
    assert "2 items" in result.notes[0] and not result.judge_changed
    other_judge = dict(candidate, judge={"judge": "words", "threshold": 0.5})
    assert compare_reports(baseline, other_judge).judge_changed
    on_another_cpu = dict(candidate, judge={"judge": "words", "precision": "fp32"})
    assert not compare_reports(baseline, on_another_cpu).judge_changed


def test_the_comparison_names_each_sentence_that_got_worse_with_its_evidence() -> None:
    def sentence(text: str, faithful: bool = True, imprecise: tuple[int, ...] = ()) -> dict:
        return {
            "text": text,
            "markers": [1, 2],
            "supported": faithful,
            "faithful": faithful,
            "faithful_score": 0.9 if faithful else 0.1,
            "imprecise": list(imprecise),
            "evidence": "Quantization saves memory.",
            "evidence_marker": 2,
        }

    same, was_bad = "Sparse attention cuts cost [1].", "Attention | blocks help [1]."
    baseline = report_of(a={"faithfulness": [2, 3]}, b={"faithfulness": [1, 1]})
    baseline["items"][0]["sentences"] = [
        sentence(same),
        sentence(was_bad, faithful=False),
        sentence("Quantization saves memory [2]."),
    ]
    baseline["items"][1]["sentences"] = [sentence(same)]
    candidate = report_of(a={"faithfulness": [1, 3]}, b={"faithfulness": [1, 1]})
    candidate["items"][0]["sentences"] = [
        sentence(same, imprecise=(1,)),  # the same words, now with a citation that adds nothing
        sentence(was_bad, faithful=False),  # as bad as before: not news
        sentence("Quantization doubles memory [2].", faithful=False),  # new, and wrong
    ]
    candidate["items"][1]["sentences"] = [sentence(same)]
    result = compare_reports(baseline, candidate, {"faithfulness": 0.03})
    assert [i["uid"] for i in result.items] == ["a"]
    worse = result.items[0]["worse_sentences"]
    assert [(w["text"], w["problems"]) for w in worse] == [
        (same, ["imprecise [1]"]),
        ("Quantization doubles memory [2].", ["not faithful", "not supported by its citations"]),
    ]
    table = result.to_markdown("current", "candidate")
    assert "### Sentences that got worse in the candidate (2)" in table
    assert (
        "| a | Quantization doubles memory [2]. | not faithful, not supported by its citations "
        "(0.100) | [2] “Quantization saves memory.” |"
    ) in table
    assert "Attention" not in table.split("Sentences that got worse")[1]  # no news
    unchanged = compare_reports(baseline, baseline, {"faithfulness": 0.03})
    assert "Sentences that got worse" not in unchanged.to_markdown()


def test_a_gated_metric_gone_unmeasured_or_nothing_shared_fails_the_gate() -> None:
    baseline = report_of(a={"citation_recall": [3, 3]})
    unmeasured = report_of(a={"citation_recall": [0, 0]})  # e.g. every answer now abstains
    result = compare_reports(baseline, unmeasured, {"citation_recall": 0.03})
    assert result.regressed and {r.metric: r for r in result.rows}["citation_recall"].regressed
    disjoint = report_of(z={"citation_recall": [3, 3]})
    result = compare_reports(baseline, disjoint, {"citation_recall": 0.03})
    assert result.common_items == 0 and result.regressed
    assert any("share no items" in note for note in result.notes)


def test_gate_config_names_real_metrics() -> None:
    tolerances = load_tolerances()
    assert {
        "citation_validity",
        "citation_recall",
        "citation_precision",
        "faithfulness",
        "abstention_accuracy",
        "recall@5",
    } <= set(tolerances)
    assert all(0 <= t < 0.2 for t in tolerances.values())


def test_subset_takes_every_nth_item_per_file() -> None:
    items = load_dataset(REPO / "evals" / "datasets")
    subset = select_subset(items, {"answers": 3, "retrieval": 1, "subtopics": 0})
    by_file = {
        stem: [i for i in subset if i.uid.startswith(stem + ":")]
        for stem in ("answers", "retrieval", "subtopics")
    }
    assert len(by_file["answers"]) == 41 and len(by_file["retrieval"]) == 84
    assert not by_file["subtopics"]
    assert {i.kind for i in by_file["answers"]} == {"single", "multi", "unanswerable", "followup"}


# --- Runs: report, resume, extractive gate -------------------------------------------------------


def test_report_has_items_settings_and_no_secret(small, fake_embedder, tmp_path: Path) -> None:
    settings = configure(
        small[0], openai_api_key="sk-secret-123", openai_base_url="https://me:pw-456@llm.test/v1"
    )
    report = small_run(small, fake_embedder, tmp_path, "out", settings=settings)
    out = tmp_path / "out"
    text = (out / "report.json").read_text()
    assert "sk-secret-123" not in text and "openai_api_key" not in text
    assert "pw-456" not in text and report["settings"]["openai_base_url"] == "https://llm.test/v1"
    assert (out / "report.md").read_text().startswith("# Eval report")
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert load_report(out) == json.loads(text)
    item = {i["id"]: i for i in report["items"]}["single-001"]
    assert {"id", "kind", "question", "answer", "abstained", "citations", "sentences"} <= set(item)
    assert all({"text", "markers", "supported", "score"} <= set(s) for s in item["sentences"])
    assert report["judge"] == {"judge": "words", "threshold": 0.8}
    assert report["metrics"]["citation_validity"]["value"] == 1.0  # extractive: by construction


def test_resume_after_interrupt_redoes_nothing(
    small, fake_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_run(small, fake_embedder, tmp_path, "out", progress=interrupt_after_two)
    log = tmp_path / "out" / "items.jsonl"
    first = log.read_text().splitlines()
    assert len(first) == 2
    with log.open("a") as f:
        f.write('{"key": "torn by a crash", "rec')  # half a line: ignored, then dropped

    evaluated: list[str] = []
    original = Harness.evaluate

    def counting(self: Harness, item):  # type: ignore[no-untyped-def]
        evaluated.append(item.uid)
        return original(self, item)

    monkeypatch.setattr(Harness, "evaluate", counting)
    report = small_run(small, fake_embedder, tmp_path, "out", cache_dir=tmp_path / "cold")
    assert evaluated == ["answers:unans-001"]  # only the item the interrupted run never did
    assert report["run"]["items_resumed"] == 2 and report["run"]["items_run"] == 1
    assert log.read_text().splitlines()[:2] == first
    monkeypatch.setattr(Harness, "evaluate", original)
    fresh = small_run(small, fake_embedder, tmp_path, "fresh", cache_dir=tmp_path / "cold2")
    assert fresh["metrics"] == report["metrics"]  # resumed or not, the same numbers


def test_changed_settings_are_not_resumed(small, fake_embedder, tmp_path: Path) -> None:
    small_run(small, fake_embedder, tmp_path, "out")
    settings = configure(small[0], answer_k=2)
    report = small_run(small, fake_embedder, tmp_path, "out", settings=settings)
    assert report["run"]["items_resumed"] == 0


class RetrainedJudge(WordJudge):
    """The same rule under another description: what a judge with new weights looks like."""

    def describe(self) -> dict:
        return {"judge": "words", "threshold": 0.8, "model": "retrained"}


def test_a_changed_judge_rescores_everything_and_the_same_judge_rescores_nothing(
    small, fake_embedder, tmp_path: Path
) -> None:
    first = small_run(small, fake_embedder, tmp_path, "out")
    assert first["run"]["judge_pairs_scored"] > 0
    # Same out dir and cache, another judge: no item resumed, no cached verdict reused.
    retrained = small_run(small, fake_embedder, tmp_path, "out", judge_impl=RetrainedJudge())
    assert retrained["run"]["items_resumed"] == 0
    assert retrained["run"]["judge_cache_hits"] == 0
    assert retrained["run"]["judge_pairs_scored"] == first["run"]["judge_pairs_scored"]
    assert retrained["judge"]["model"] == "retrained"
    # The first judge again, in a fresh out dir: every verdict comes from the cache.
    again = small_run(small, fake_embedder, tmp_path, "again")
    assert again["run"]["judge_pairs_scored"] == 0 and again["run"]["judge_cache_hits"] > 0
    assert again["metrics"] == first["metrics"]


def test_report_md_shows_each_sentence_with_its_verdict_and_evidence(
    small, fake_embedder, tmp_path: Path
) -> None:
    report = small_run(small, fake_embedder, tmp_path, "out")
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    section = markdown.split("## Answers, sentence by sentence", 1)[1]
    item = {i["id"]: i for i in report["items"]}["single-001"]
    sources = {s["marker"]: s["paper_id"] for s in item["sources"]}
    abstracts = {pid: abstract for pid, _, abstract in PAPERS}
    assert item["sentences"] and f"### {item['uid']}" in section
    for sentence in item["sentences"]:
        # The evidence is a sentence of the abstract the verdict rests on, named by its [n].
        assert sentence["evidence"] in abstracts[sources[sentence["evidence_marker"]]]
        verdict = "supported" if sentence["supported"] else "not supported"
        assert (
            f"| {sentence['text']} | {verdict} | {sentence['faithful_score']:.3f} | "
            f"[{sentence['evidence_marker']}] “{sentence['evidence']}” |"
        ) in section


def test_gate_fails_on_a_worse_extractive_setting(small, fake_embedder, tmp_path: Path) -> None:
    baseline = small_run(small, fake_embedder, tmp_path, "base")
    # Abstain on everything: every answerable question now goes unanswered.
    worse = configure(small[0], abstain_coverage=1.01)
    candidate = small_run(small, fake_embedder, tmp_path, "worse", settings=worse)
    result = compare_reports(baseline, candidate, load_tolerances())
    failed = {r.metric for r in result.rows if r.regressed}
    assert "abstention_accuracy" in failed and result.regressed
    same = small_run(small, fake_embedder, tmp_path, "same")
    assert not compare_reports(baseline, same, load_tolerances()).regressed


# --- The OpenAI path: cache and candidate prompts ---------------------------------------------


@pytest.fixture
def model_settings(small, openai_server: ScriptedOpenAI) -> Settings:
    return configure(
        small[0],
        llm="openai",
        openai_api_key="test-key",
        openai_base_url=openai_server.base_url,
        llm_max_retries=0,
    )


def test_identical_rerun_makes_no_http_calls(
    small,
    fake_embedder,
    tmp_path: Path,
    model_settings: Settings,
    openai_server: ScriptedOpenAI,
) -> None:
    for text in CITED:
        openai_server.queue_text(text)
    first = small_run(small, fake_embedder, tmp_path, "one", settings=model_settings)
    assert len(openai_server.requests) == 3 and first["run"]["llm_calls"] == 3
    second = small_run(small, fake_embedder, tmp_path, "two", settings=model_settings)
    assert len(openai_server.requests) == 3  # not one more request reached the server
    assert second["run"]["llm_calls"] == 0 and second["run"]["llm_cache_hits"] == 3
    assert second["metrics"] == first["metrics"]
    assert [i["answer"] for i in second["items"]] == [i["answer"] for i in first["items"]]
    assert second["items"][0]["cost"]["prompt_tokens"] == 100  # replayed usage
    unans = {i["id"]: i for i in second["items"]}["unans-001"]
    assert unans["abstained"] and unans["abstained_by"] == "model"
    assert second["prompts"]["answer"]["sha"]  # prompt versions and hashes are recorded


def test_candidate_prompt_that_drops_citations_fails_the_gate(
    small,
    fake_embedder,
    tmp_path: Path,
    model_settings: Settings,
    openai_server: ScriptedOpenAI,
) -> None:
    candidate = tmp_path / "candidate-prompts"
    shutil.copytree(REPO / "prompts", candidate)
    answer = candidate / "answer.md"
    answer.write_text(
        answer.read_text()
        .replace("version: 1", "version: 1-nocite")
        .replace("Answer (every claim cited with [n]):", "Answer plainly, without citations:")
    )
    for text in CITED + UNCITED:  # the current prompts' run first, then the candidate's
        openai_server.queue_text(text)
    report = small_run(
        small, fake_embedder, tmp_path, "cmp", settings=model_settings, prompts_dir=candidate
    )
    assert "without citations" in openai_server.prompts[3]
    assert "without citations" not in openai_server.prompts[0]
    comparison = report["prompt_comparison"]
    rows = {r["metric"]: r for r in comparison["rows"]}
    assert rows["citation_recall"]["baseline"] == 1.0
    assert rows["citation_recall"]["candidate"] == 0.0 and rows["citation_recall"]["regressed"]
    assert comparison["regressed"]
    assert {i["uid"] for i in comparison["items"]} >= {"answers:single-001", "answers:single-002"}
    assert report["prompts"]["answer"]["version"] == "1-nocite"
    assert comparison["current"]["prompts"]["answer"]["version"] == "1"
    assert (
        "Candidate prompts against the current ones" in (tmp_path / "cmp" / "report.md").read_text()
    )


# --- The CLI on the real corpus with the real judge ---------------------------------------------


@pytest.mark.slow
def test_cli_gate_exit_codes(seed_index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.cli import main

    rows = [json.loads(line) for line in (REPO / "evals/datasets/answers.jsonl").open()]
    picked = [r for r in rows if r["id"] in ("single-003", "unans-001")]
    dataset = write_jsonl(tmp_path / "answers.jsonl", picked)
    index = str(seed_index.settings.index_dir)
    common = ["eval", "--dataset", str(dataset), "--index", index, "--backend", "extractive"]
    assert main([*common, "--out", str(tmp_path / "base"), "--quiet"]) == 0
    baseline = tmp_path / "base" / "report.json"
    report = load_report(baseline)
    assert report["metrics"]["abstention_accuracy"]["value"] == 1.0
    assert report["metrics"]["faithfulness"]["value"] is not None
    # The same settings pass; a setting that abstains on everything fails.
    assert main([*common, "--out", str(tmp_path / "same"), "--baseline", str(baseline)]) == 0
    monkeypatch.setenv("ASSISTANT_ABSTAIN_COVERAGE", "1.01")
    assert main([*common, "--out", str(tmp_path / "worse"), "--baseline", str(baseline)]) == 1
    assert "REGRESSED" in (tmp_path / "worse" / "comparison.md").read_text()


# --- The generator ----------------------------------------------------------------------------


def test_generator_drafts_marked_items_apart_and_skips_bad_drafts(
    small,
    tmp_path: Path,
    model_settings: Settings,
    openai_server: ScriptedOpenAI,
) -> None:
    from assistant.evals.generate import generate_items

    good = {
        "question": "How can a model read long inputs cheaply?",
        "facts": ["it attends to few blocks"],
    }
    openai_server.queue_text(json.dumps(good))
    openai_server.queue_text("Sure! Here is a question: what is attention?")  # not JSON
    openai_server.queue_text(
        json.dumps({"question": "How fast is it?", "facts": ["12345x faster"]})
    )
    openai_server.queue_text("```json\n" + json.dumps(good) + "\n```")
    out = tmp_path / "generated" / "answers.jsonl"
    path, count = generate_items(
        model_settings, 2, index=small[1], out_path=out, cache_dir=tmp_path / "cache"
    )
    assert path == out and count == 2 and len(openai_server.requests) == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["gen-single-0001", "gen-single-0002"]
    assert all(r["generated"] and r["generator"]["prompt"].startswith("generate@1-") for r in rows)
    assert rows[0]["gold_titles"][0] in TITLES.values()
    assert len({r["generator"]["paper_id"] for r in rows}) == 2
    assert "<abstract>" in openai_server.prompts[0]
    # The drafts load as an eval dataset of their own.
    assert [i.task for i in load_dataset(out.parent)] == ["answer", "answer"]

    # A reviewer deletes the first draft: the next id follows the highest, never reused.
    out.write_text(out.read_text().splitlines()[1] + "\n")
    openai_server.queue_text(json.dumps(good))
    generate_items(model_settings, 1, index=small[1], out_path=out, cache_dir=tmp_path / "cache")
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        "gen-single-0002",
        "gen-single-0003",
    ]
    out.write_text(out.read_text() + "{broken\n")
    with pytest.raises(AssistantError, match=r"answers\.jsonl:3: not JSON"):
        generate_items(model_settings, 1, index=small[1], out_path=out)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"id": "x", "kind": "single", "question": "q?", "facts": "ten facts"}, "`facts`"),
        ({"id": "x", "kind": "unanswerble", "question": "q?"}, "`kind`"),
        ({"id": "x", "kind": "followup", "question": "q?", "turns": ["q?"]}, "`turns`"),
        ({"id": "x", "kind": "single", "question": "q?", "gold_titles": [1]}, "`gold_titles`"),
    ],
)
def test_bad_dataset_fields_name_file_line_and_field(tmp_path: Path, line: dict, message: str):
    path = write_jsonl(tmp_path / "answers.jsonl", [{"id": "ok", "question": "fine?"}, line])
    with pytest.raises(AssistantError, match=rf"answers\.jsonl:2: {re.escape(message)}"):
        load_dataset(path)


def test_summaries_score_cited_papers_and_each_brief_sentence(
    small, fake_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    calls: list[dict] = []

    class Brief:
        # the papers as the brief numbers them; "attn" is cited twice and counts once
        def __init__(self) -> None:
            abstracts = {pid: abstract for pid, _, abstract in PAPERS}
            self.citations = [
                Source(i + 1, Paper(p, TITLES[p], abstracts[p]), 1.0, "")
                for i, p in enumerate(["attn", "cache", "speech", "attn"])
            ]
            self.usage = Usage()

        def prose(self) -> str:
            return (
                "Attending to a few blocks per token cuts the quadratic cost [1]. "  # supported
                "Evicting stale cache entries keeps memory bounded [2]. "  # supported
                "Speech pretraining doubles the accuracy of protein folding [3]."  # not
            )

        def to_json(self) -> dict:
            return {
                "topic": "efficient transformers",
                "markdown": "Sparse attention [1]. Cache compression [2]. Speech [3].",
                "themes": [{"name": "efficiency", "paper_ids": ["attn", "cache"]}],
                "citations": [
                    {"marker": s.marker, "paper_id": s.paper.paper_id, "title": s.paper.title}
                    for s in self.citations
                ],
                "prompt_versions": {},
            }

    def summarize(
        settings, topic, *, index, embedder, backend, judge=None, max_papers=25, progress=None
    ):
        # the harness's judge, behind its verdict cache, decides the brief's agreements
        verdicts = judge.judge_many([("Sparse attention.", "Sparse attention for documents.")])
        calls.append({"topic": topic, "max_papers": max_papers, "supported": verdicts[0].supported})
        if topic == "sourdough baking":
            raise TopicError("the indexed papers don't cover 'sourdough baking'")
        return Brief()

    module = types.ModuleType("assistant.summarize")
    module.summarize = summarize  # type: ignore[attr-defined]
    module.TopicError = TopicError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "assistant.summarize", module)
    gold = [TITLES["attn"], TITLES["cache"], TITLES["quant"]]
    topics = write_jsonl(
        tmp_path / "topics" / "subtopics.jsonl",
        [
            {"id": "topic-01", "topic": "efficient transformers", "gold_titles": gold},
            # declined: a miss for coverage, nothing cited for precision, and no crash
            {"id": "topic-02", "topic": "sourdough baking", "gold_titles": gold[:1]},
        ],
    )
    settings, index, _ = small
    report = run_eval(
        settings,
        dataset=topics,
        out_dir=tmp_path / "out",
        components=Components(settings, index=index, embedder=fake_embedder, judge=WordJudge()),
        cache_dir=tmp_path / "cache",
    )
    assert [c["topic"] for c in calls] == ["efficient transformers", "sourdough baking"]
    assert all(c["supported"] for c in calls)  # WordJudge's verdicts, through the cache
    assert report["metrics"]["summary_coverage"]["value"] == pytest.approx(2 / 4)
    assert report["metrics"]["summary_precision"]["value"] == pytest.approx(2 / 3)
    assert report["items"][0]["cited"] == ["attn", "cache", "speech"]
    # each brief sentence is judged against the papers it cites, as an answer's would be
    assert report["metrics"]["summary_faithfulness"]["value"] == pytest.approx(2 / 3)
    assert report["metrics"]["summary_citation_recall"]["value"] == pytest.approx(2 / 3)
    assert report["metrics"]["summary_citation_precision"]["value"] == pytest.approx(2 / 3)
    verdicts = [s["supported"] for s in report["items"][0]["sentences"]]
    assert verdicts == [True, True, False]
    assert report["items"][1]["abstained"] is True and report["items"][1]["cited"] == []
