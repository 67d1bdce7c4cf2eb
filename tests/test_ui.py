"""The Streamlit app, driven in-process by streamlit.testing.v1.AppTest: one test per job a
page does, on the real seed index (chat) or a small temporary corpus (the rest)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, WordJudge, write_jsonl

pytestmark = pytest.mark.slow

APP = str(REPO / "ui" / "app.py")
SECRET = "sk-test-never-shown-0123456789"
CARD = ":blue[**\\["  # how a source card's title line starts: its [n], styled
SCRIPT_TITLE = "<script>window.pwned=1</script> Evil **Bold** [link](javascript:alert(1)) :red[x]"

TINY = [
    {
        "id": "t1",
        "title": SCRIPT_TITLE,
        "abstract": "Sparse attention lets transformers read long documents at linear cost. "
        "We evaluate sparse attention on long document summarization. "
        "It matches dense attention quality while using far less memory.",
        "date": "2024-05-01",
    },
    {
        "id": "t2",
        "title": "Speculative decoding with draft models",
        "abstract": "Speculative decoding drafts several tokens with a small model. "
        "The large model verifies the drafted tokens in one forward pass. "
        "Decoding becomes two to three times faster without changing outputs.",
    },
    {
        "id": "t3",
        "title": "Quantized low-rank adapters",
        "abstract": "Low-rank adapters are trained on top of a quantized base model. "
        "This cuts fine-tuning memory enough to fit large models on one GPU.",
    },
]


@pytest.fixture(autouse=True)
def fresh_streamlit_caches() -> Iterator[None]:
    """Cached indexes are keyed by settings; clearing keeps one test's index out of the next."""
    import streamlit as st

    yield
    st.cache_resource.clear()


def app(monkeypatch: pytest.MonkeyPatch, **env: str):
    from streamlit.testing.v1 import AppTest

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(node) -> list[str]:
    """Every markdown/caption/alert body in the tree under `node`."""
    found = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success"):
        found += [element.value for element in getattr(node, kind)]
    return found


def all_markdown_protos(at) -> list:
    return [m.proto for m in at.markdown] + [c.proto for c in at.caption]


@pytest.fixture
def tiny_env(tmp_path: Path, real_embedder) -> dict[str, str]:
    """A three-paper index (one with a hostile title), built with the real model (~1 s)."""
    from assistant.corpus import read_corpus
    from assistant.ingest import ingest
    from assistant.settings import Settings

    data = tmp_path / "papers"
    write_jsonl(data / "tiny.jsonl", TINY)
    index = tmp_path / "index"
    ingest(Settings(index_dir=index), read_corpus([data]), [data], real_embedder, progress=False)
    return {"ASSISTANT_INDEX": str(index), "ASSISTANT_DATA_DIR": str(data)}


# --- chat -------------------------------------------------------------------------------------


def test_chat_streams_a_cited_answer_with_sources_and_follow_ups(monkeypatch, seed_index) -> None:
    at = app(monkeypatch, ASSISTANT_INDEX=str(seed_index.settings.index_dir))
    assert any("Answers are **extractive**" in t for t in texts(at.sidebar))

    at.chat_input[0].set_value("How do recent methods compress the KV cache?").run()
    assert not at.exception, at.exception
    assistant = at.chat_message[1]
    body = "\n".join(texts(assistant))
    assert "KV" in body and "\\[1\\]" in body  # an inline, escaped [1] marker
    assert "extractive · no model" in body  # the footer
    # The sources panel: a card per cited paper, its score, and highlighted support.
    cards = [m.value for m in at.markdown if m.value.startswith(CARD)]
    assert len(cards) >= 2, cards
    assert any(c.value.startswith("score ") and "cited" in c.value for c in at.caption)
    assert any(":blue-background[" in m.value for m in at.markdown)
    # The local judge's verdict on each quoted sentence, with the sentence it was read against.
    check = next(e for e in at.main.expander if e.label.startswith("Grounding check"))
    assert re.fullmatch(r"Grounding check: \d+ of \d+ sentences supported", check.label)
    assert any(m.value.startswith(":green-badge[supported]") for m in check.markdown)
    assert check.caption and all(c.value.startswith("\\[") for c in check.caption)

    at.chat_input[0].set_value("how does the second one work?").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 4
    conversation = at.session_state["conversation"]
    assert len(conversation.turns) == 2
    assert "KV" in conversation.turns[1].standalone  # the follow-up was condensed
    assert at.selectbox(key="sources_for").value == 1  # the panel follows the newest answer

    next(b for b in at.button if b.label == "New chat").click().run()
    assert len(at.chat_message) == 0
    assert at.session_state["conversation"].turns == []


def test_chat_abstains_and_shows_the_nearest_papers(monkeypatch, seed_index) -> None:
    at = app(monkeypatch, ASSISTANT_INDEX=str(seed_index.settings.index_dir))
    at.chat_input[0].set_value("What success rate do agents reach on WebArena?").run()
    assert not at.exception, at.exception
    assert any("don't cover this question" in w.value for w in at.warning)
    assert any("Nothing retrieved was relevant enough" in c.value for c in at.caption)
    assert sum(m.value.startswith(CARD) for m in at.markdown) >= 1  # nearest-paper cards


def test_model_answers_flag_unsupported_sentences_and_failures_leave_the_chat_going(
    monkeypatch,
    tiny_env,
    openai_server,
) -> None:
    from assistant.components import Components

    # The page decides what to flag from the judge's verdicts; which judge is beside the point.
    monkeypatch.setattr(Components, "make_judge", lambda self, name: WordJudge())
    at = app(
        monkeypatch,
        **tiny_env,
        OPENAI_API_KEY=SECRET,
        OPENAI_BASE_URL=openai_server.base_url,
        ASSISTANT_LLM_MAX_RETRIES="0",
        ASSISTANT_ABSTAIN_SIMILARITY="-1",
        ASSISTANT_ABSTAIN_COVERAGE="0",
    )
    sidebar = "\n".join(texts(at.sidebar))
    assert "gpt-4o-mini" in sidebar and "API key: set" in sidebar
    assert "extractive" not in sidebar

    openai_server.queue_error(500, "the server fell over")
    at.chat_input[0].set_value("What does sparse attention do for long documents?").run()
    assert not at.exception, at.exception
    assert any("could not answer" in e.value for e in at.error)

    openai_server.queue_text(
        "Sparse attention reads long documents at linear cost [1]. "
        "It also cures all known diseases in mice [1]. "
        "This sentence cites nothing at all.",
        prompt_tokens=321,
        completion_tokens=42,
    )
    at.chat_input[0].set_value("What does sparse attention do for long documents?").run()
    assert not at.exception, at.exception
    answer = "\n".join(texts(at.chat_message[-1]))
    cite = ":blue[**\\[1\\]**]"  # [1], styled; the model's own Markdown is not escaped
    assert f"Sparse attention reads long documents at linear cost {cite}. It also" in answer
    assert (
        "This sentence cites nothing at all. :orange-badge[:material/warning: no citation]"
        in answer
    )
    assert (
        f"diseases in mice {cite}. :orange-badge[:material/warning: not supported by \\[1\\]]"
        in answer
    )
    assert "openai · gpt\\-4o\\-mini · 321 prompt \\+ 42 completion tokens · \\$0\\.0001" in answer
    # Beside the flags, the grounding check's verdict on every sentence, each with the
    # abstract sentence it was judged against (explain_answer, the eval's own check).
    check = next(e for e in at.chat_message[-1].expander if e.label.startswith("Grounding"))
    assert check.label == "Grounding check: 1 of 3 sentences supported"
    verdicts = [m.value for m in check.markdown]
    assert verdicts[0].startswith(":green-badge[supported] Sparse attention reads long")
    assert verdicts[1].startswith(":red-badge[not supported] It also cures all known diseases")
    assert verdicts[2].startswith(":red-badge[not supported] This sentence cites nothing")
    evidence = [c.value for c in check.caption]
    assert len(evidence) == 3 and all(c.startswith("\\[1\\] “") for c in evidence)
    assert "read long documents at linear cost" in evidence[0]
    # Two turns shown; only the successful one is in the assistant's conversation.
    assert len(at.chat_message) == 4
    assert len(at.session_state["conversation"].turns) == 1

    shown = texts(at.main) + texts(at.sidebar) + [e.label for e in at.main.expander]
    assert shown and not any(SECRET in text for text in shown)


# --- safety -----------------------------------------------------------------------------------


def test_a_hostile_title_is_shown_as_text_never_as_html(monkeypatch, tiny_env) -> None:
    at = app(monkeypatch, **tiny_env, ASSISTANT_ABSTAIN_SIMILARITY="-1")
    at.chat_input[0].set_value("sparse attention for long documents").run()
    assert not at.exception, at.exception
    protos = all_markdown_protos(at)
    assert not any(p.allow_html for p in protos)
    card = next(p.body for p in protos if "script" in p.body and p.body.startswith(CARD))
    # Every character Markdown or Streamlit could read as syntax is escaped.
    assert "\\<script\\>" in card and "\\*\\*Bold\\*\\*" in card
    assert "\\[link\\]\\(javascript\\:alert\\(1\\)\\)" in card and "\\:red\\[x\\]" in card

    at.switch_page("papers.py").run()
    at.text_input(key="paper_filter").input("script").run()
    assert not at.exception, at.exception
    assert "\\<script\\>" in at.expander[0].label
    assert not any(p.allow_html for p in all_markdown_protos(at))


def escape_md(text: str) -> str:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from ui.common import escape_md

    return escape_md(text)


def test_escape_md_leaves_nothing_for_markdown_to_interpret() -> None:
    assert escape_md("a*b*_c_ [x](y) <b> $1 :red[z] `c`") == (
        "a\\*b\\*\\_c\\_ \\[x\\]\\(y\\) \\<b\\> \\$1 \\:red\\[z\\] \\`c\\`"
    )
    assert escape_md("line one\n# not a heading") == "line one \\# not a heading"


# --- papers -----------------------------------------------------------------------------------


def test_papers_search_detail_and_ingest_with_problems(monkeypatch, tiny_env) -> None:
    at = app(monkeypatch, **tiny_env)
    at.switch_page("papers.py").run()
    assert not at.exception, at.exception
    assert any("3 paper(s)" in c.value for c in at.caption)

    at.text_input(key="paper_query").input("speculative decoding draft model").run()
    assert at.expander[0].label.startswith("Speculative decoding with draft models")
    detail = "\n".join(texts(at.expander[0]))
    assert "tiny.jsonl" in detail and "verifies the drafted tokens" in detail

    good = {"id": "n1", "title": "Mixture of experts routing", "abstract": "Experts are routed."}
    upload = (json.dumps(good) + "\n" + '{"id": "n2", "title": "No abstract"}\n').encode()
    at.file_uploader(key="uploads").upload("new papers.jsonl", upload).run()
    next(b for b in at.button if b.label == "Ingest uploaded files").click().run()
    assert not at.exception, at.exception
    assert any("4 papers in the index" in s.value for s in at.success)
    warning = "\n".join(w.value for w in at.warning)
    assert "1 problem(s) skipped" in warning
    assert "new_papers.jsonl:2" in warning and "abstract" in warning
    saved = Path(tiny_env["ASSISTANT_DATA_DIR"]) / "uploads" / "new_papers.jsonl"
    assert saved.exists()
    assert any(m.value == "4" for m in at.sidebar.metric)  # the sidebar sees the new paper


def test_first_run_builds_the_missing_index_then_answers(
    monkeypatch, tmp_path: Path, real_embedder
) -> None:
    data = tmp_path / "corpus"
    write_jsonl(data / "tiny.jsonl", TINY[1:])
    write_jsonl(data / "bad.jsonl", [{"id": "b1", "title": "A title but no abstract"}])
    at = app(
        monkeypatch,
        ASSISTANT_INDEX=str(tmp_path / "fresh-index"),
        ASSISTANT_DATA_DIR=str(data),
        ASSISTANT_ABSTAIN_SIMILARITY="-1",
    )
    assert any(s.value.startswith("Index built: 2 papers") for s in at.success)
    assert any("bad.jsonl:1" in w.value and "abstract" in w.value for w in at.warning)
    assert any(m.value == "2" for m in at.sidebar.metric)
    at.chat_input[0].set_value("How does speculative decoding verify tokens?").run()
    assert "\\[1\\]" in "\n".join(texts(at.chat_message[1]))


# --- evals ------------------------------------------------------------------------------------

TINY_EVAL = [
    {
        "id": "single-001",
        "kind": "single",
        "question": "How does speculative decoding verify the drafted tokens?",
        "gold_titles": ["Speculative decoding with draft models"],
        "facts": ["The large model verifies drafted tokens in one forward pass."],
    },
    {
        "id": "single-002",
        "kind": "single",
        "question": "How do quantized low-rank adapters reduce fine-tuning memory?",
        "gold_titles": ["Quantized low-rank adapters"],
        "facts": [],
    },
]


def test_a_reasoning_models_thoughts_are_shown_apart_and_a_cut_answer_is_marked(
    monkeypatch, tiny_env, openai_server
) -> None:
    from assistant.components import Components

    monkeypatch.setattr(Components, "make_judge", lambda self, name: WordJudge())
    at = app(
        monkeypatch,
        **tiny_env,
        OPENAI_API_KEY=SECRET,
        OPENAI_BASE_URL=openai_server.base_url,
        ASSISTANT_ABSTAIN_SIMILARITY="-1",
        ASSISTANT_ABSTAIN_COVERAGE="0",
    )
    openai_server.queue_text(
        "Sparse attention reads long documents at linear cost [1].",
        think="They ask about sparse attention; source [1] says linear cost.",
        finish="length",
    )
    at.chat_input[0].set_value("What does sparse attention do for long documents?").run()
    assert not at.exception, at.exception
    body = next(m.value for m in at.chat_message[-1].markdown if "linear cost" in m.value)
    assert "think" not in body and "They ask about" not in body  # the answer, not the thoughts
    expander = next(e for e in at.main.expander if "reasoning" in e.label)
    assert any("They ask about sparse attention" in m.value for m in expander.markdown)
    assert any("Cut off" in w.value for w in at.chat_message[-1].warning)
    # The grounding check's verdict on each sentence, with the evidence behind it.
    check = next(e for e in at.main.expander if e.label.startswith("Grounding check"))
    assert check.label == "Grounding check: 1 of 1 sentences supported"
    assert any(m.value.startswith(":green-badge[supported]") for m in check.markdown)
    assert any("linear cost" in c.value and "\\[1\\]" in c.value for c in check.caption)


def test_evals_compares_two_reports_with_regressions_and_drill_down(
    monkeypatch, tmp_path: Path, tiny_env, real_embedder
) -> None:
    import copy

    from assistant import evals
    from assistant.components import Components
    from assistant.index import PaperIndex
    from assistant.settings import Settings

    settings = Settings(
        index_dir=Path(tiny_env["ASSISTANT_INDEX"]), abstain_similarity=-1, abstain_coverage=0
    )
    runs = settings.index_dir.parent / "eval-runs"
    dataset = write_jsonl(tmp_path / "sets" / "answers.jsonl", TINY_EVAL)
    base = evals.run_eval(
        settings,
        dataset=dataset,
        out_dir=runs / "baseline-run",
        components=Components(
            settings, index=PaperIndex.open(settings), embedder=real_embedder, judge=WordJudge()
        ),
        cache_dir=tmp_path / "cache",
    )
    # The candidate: the same run, except that its first answer lost its support.
    cand = copy.deepcopy(base)
    cand["created"] = "2999-01-01T00:00:00+00:00"
    item = cand["items"][0]
    assert item["sentences"], item
    for sentence in item["sentences"]:
        sentence["supported"] = False
    claims = len(item["sentences"])
    item["scores"]["citation_recall"] = [0, claims]
    item["scores"]["faithfulness"] = [0, claims]
    item["answer"] += "\nA sentence the candidate added [1]."
    (runs / "candidate-run").mkdir()
    (runs / "candidate-run" / "report.json").write_text(json.dumps(cand))
    monkeypatch.setattr(evals, "load_tolerances", lambda: {"faithfulness": 0.02})

    at = app(monkeypatch, **tiny_env)
    at.switch_page("evals.py").run()
    assert not at.exception, at.exception
    for key, run in (("eval_baseline", "baseline-run"), ("eval_candidate", "candidate-run")):
        box = at.selectbox(key=key)
        box.set_value(next(i for i, o in enumerate(box.options) if o.endswith(run))).run()
    assert not at.exception, at.exception
    assert any(
        "1 gated metric(s) regressed" in e.value and "faithfulness" in e.value for e in at.error
    )
    table = at.dataframe[1].value
    row = table[table["metric"] == "faithfulness"].iloc[0]
    assert row["delta"] < 0 and row["gate"] == "REGRESSED"

    drill = at.selectbox(key="eval_item")
    assert drill.options[0].startswith("answers:single-001")
    assert "A sentence the candidate added" in "\n".join(m.value for m in at.markdown)
    # The judge's verdict per sentence, baseline then candidate.
    verdicts = [m.value.splitlines() for m in at.markdown if m.value.startswith("- :")]
    assert len(verdicts) == 2
    assert any(line.startswith("- :green-badge[supported") for line in verdicts[0])
    assert all(line.startswith("- :red-badge[not supported") for line in verdicts[1])
    assert any("Speculative decoding with draft models" in m.value for m in at.markdown)


def test_evals_runs_the_harness_with_a_progress_bar(monkeypatch, seed_index) -> None:
    from assistant import evals
    from assistant.components import Components

    # Retrieval items are scored without a judge; the harness still opens one.
    monkeypatch.setattr(Components, "make_judge", lambda self, name: WordJudge())
    at = app(monkeypatch, ASSISTANT_INDEX=str(seed_index.settings.index_dir))
    at.switch_page("evals.py").run()
    box = at.selectbox(key="eval_dataset")
    box.set_value(
        next(
            p
            for p in [None, *evals.DATASETS_DIR.glob("*.jsonl")]
            if p and p.name == "retrieval.jsonl"
        )
    ).run()
    at.selectbox(key="eval_subset").set_value("all").run()
    next(b for b in at.button if b.label == "Run eval").click().run()
    assert not at.exception, at.exception
    assert at.session_state["eval_ran"]
    latest = Path(at.session_state["eval_ran"]) / "report.json"
    assert latest.exists()
    report = json.loads(latest.read_text())
    assert report["metrics"]["hit@5"]["value"] > 0.8
    shown = escape_md(latest.parent.name)
    assert any(c.value.endswith(shown) for c in at.caption)  # shown as the latest report


# --- summary ----------------------------------------------------------------------------------


def test_summary_writes_a_brief_with_progress_and_a_download(monkeypatch, seed_index) -> None:
    pytest.importorskip("assistant.summarize")
    at = app(monkeypatch, ASSISTANT_INDEX=str(seed_index.settings.index_dir))
    at.switch_page("summary.py").run()
    at.text_input(key="topic").input("KV cache compression")  # held by the form until submit
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    brief = at.session_state["summary_brief"]
    assert brief["citations"] and brief["themes"]
    assert at.status[0].proto.label == "Brief written"  # the progress box, finished
    body = "\n".join(m.value for m in at.markdown)
    assert ":blue[**\\[1\\]**]" in body  # cited, markers styled
    download = at.get("download_button")[0]
    assert download.proto.label == "Download Markdown"
    assert [b.proto.label for b in at.get("download_button")][1] == "Download table (CSV)"
    assert at.session_state["summary_csv"].startswith("marker,paper_id,title")
    # the evidence table as a sortable table, one row per cited paper
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == len(brief["citations"])


def test_summary_reports_a_bad_topic_and_keeps_going(monkeypatch, seed_index) -> None:
    pytest.importorskip("assistant.summarize")
    at = app(monkeypatch, ASSISTANT_INDEX=str(seed_index.settings.index_dir))
    at.switch_page("summary.py").run()
    at.text_input(key="topic").input("   ")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("topic is empty" in e.value for e in at.error)
    assert "summary_brief" not in at.session_state


def test_an_index_built_with_another_model_is_explained_not_a_traceback(
    monkeypatch, tiny_env
) -> None:
    at = app(monkeypatch, **tiny_env, ASSISTANT_EMBEDDINGS="openai", OPENAI_API_KEY=SECRET)
    message = escape_md("was built with local:all-MiniLM-L6-v2")
    assert any(message in e.value for e in at.error)
    assert any("rebuild it" in c.value for c in at.caption)  # the hint
    assert not at.chat_input  # the app stops there
