"""The command line: fast help, the JSON shape other tools read, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO, components_with, write_jsonl

from assistant.cli import main
from assistant.corpus import read_corpus
from assistant.ingest import ingest


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from assistant.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'chromadb', 'streamlit', 'sentence_transformers',"
        " 'llama_index') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_search_json_shape(settings, tmp_path: Path, fake_embedder, monkeypatch, capsys) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {
                "id": "1",
                "title": "Sparse attention",
                "abstract": "Sparse attention for long inputs.",
            },
            {
                "id": "2",
                "title": "Speech models",
                "abstract": "Speech recognition for many languages.",
            },
        ],
    )
    ingest(settings, read_corpus([path]), [path], fake_embedder, progress=False)
    fake = components_with(fake_embedder)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("sparse attention\nspeech\n"))
    assert (
        main(
            ["search", "-", "--json", "-k", "2", "--index", str(settings.index_dir)],
            make_components=fake,
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["sparse attention", "speech"]
    first = lines[0]
    assert set(first) == {"query", "results"}
    assert set(first["results"][0]) == {"rank", "paper_id", "title", "score", "snippet"}
    assert first["results"][0]["paper_id"] == "1" and first["results"][0]["rank"] == 1
    assert lines[1]["results"][0]["title"] == "Speech models"


def test_search_without_an_index_says_how_to_build_one(settings, capsys) -> None:
    assert main(["search", "x", "--index", str(settings.index_dir)]) == 1
    err = capsys.readouterr().err
    assert "no index" in err and "python -m assistant ingest" in err


def test_papers_stats_and_find(settings, tmp_path: Path, fake_embedder, capsys) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": "1", "title": "Sparse attention", "abstract": "Sparse attention for long inputs."}],
    )
    ingest(settings, read_corpus([path]), [path], fake_embedder, progress=False)
    assert main(["papers", "--json", "--index", str(settings.index_dir)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["papers"] == 1 and stats["embedding model"] == "local:all-MiniLM-L6-v2"
    assert main(["papers", "--find", "sparse", "--index", str(settings.index_dir)]) == 0
    assert "Sparse attention" in capsys.readouterr().out


def test_ask_and_chat_json_from_stdin(
    settings, tmp_path: Path, fake_embedder, monkeypatch, capsys
) -> None:
    """`ask -` answers each line on its own; `chat` reads lines as turns of one conversation."""
    import io

    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {
                "id": "1",
                "title": "EMS: evicting and merging the KV cache",
                "abstract": "We compress the KV cache by evicting and merging tokens. "
                "EMS keeps accuracy at a tenth of the cache memory in our experiments.",
            },
            {
                "id": "2",
                "title": "Speech recognition for Fon and Igbo",
                "abstract": "We build speech recognition for Fon and Igbo. "
                "Our models reach usable word error rates on both languages in evaluation.",
            },
        ],
    )
    ingest(settings, read_corpus([path]), [path], fake_embedder, progress=False)
    fake = components_with(fake_embedder)
    monkeypatch.setenv("ASSISTANT_ABSTAIN_SIMILARITY", "-1")
    monkeypatch.setenv("ASSISTANT_ABSTAIN_COVERAGE", "0")
    index = ["--index", str(settings.index_dir), "--json"]

    monkeypatch.setattr("sys.stdin", io.StringIO("kv cache eviction merging\nspeech Fon Igbo\n"))
    assert main(["ask", "-", *index], make_components=fake) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and all(line["backend"] == "extractive" for line in lines)
    assert set(lines[0]) == {
        "question",
        "standalone_question",
        "answer",
        "abstained",
        "citations",
        "sources",
        "citation_check",
        "backend",
        "model",
        "prompt_versions",
        "usage",
        "latency_s",
        "truncated",
    }
    assert lines[0]["citations"][0]["paper_id"] == "1"
    assert lines[1]["citations"][0]["paper_id"] == "2"
    assert lines[1]["standalone_question"] == "speech Fon Igbo"  # answered on its own

    monkeypatch.setattr("sys.stdin", io.StringIO("kv cache eviction merging\nwhat did it keep?\n"))
    assert main(["chat", *index], make_components=fake) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert second["standalone_question"].startswith("what did it keep? (context: kv cache")
    assert second["citations"][0]["marker"] == first["citations"][0]["marker"]


def test_chat_goes_on_after_an_llm_failure(
    settings,
    tmp_path: Path,
    fake_embedder,
    monkeypatch,
    capsys,
    openai_server,
) -> None:
    import io

    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": "1", "title": "Sparse attention", "abstract": "Sparse attention for long inputs."}],
    )
    ingest(settings, read_corpus([path]), [path], fake_embedder, progress=False)
    fake = components_with(fake_embedder)
    for name, value in {
        "OPENAI_API_KEY": "sk-test-secret",
        "OPENAI_BASE_URL": openai_server.base_url,
        "ASSISTANT_LLM_TIMEOUT": "0.3",
        "ASSISTANT_LLM_MAX_RETRIES": "0",
        "ASSISTANT_ABSTAIN_SIMILARITY": "-1",
        "ASSISTANT_ABSTAIN_COVERAGE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    openai_server.queue_hang(2.0)
    openai_server.queue_text("Sparse attention handles long inputs [1].", pieces=3)
    monkeypatch.setattr("sys.stdin", io.StringIO("sparse attention?\nsparse attention again?\n"))
    assert main(["chat", "--index", str(settings.index_dir)], make_components=fake) == 0
    out, err = capsys.readouterr()
    assert "error: the model did not answer within 0.3 s" in err
    assert "Sparse attention handles long inputs [1]." in out and "[1] Sparse attention" in out
    assert "sk-test-secret" not in out + err


def test_bad_input_is_one_clear_line(capsys, monkeypatch) -> None:
    import pytest

    with pytest.raises(SystemExit):
        main(["search", "x", "-k", "0"])
    assert "must be 1 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "x", "--date-from", "2024-3-1"])
    assert "not a date like 2024-03-01" in capsys.readouterr().err
    monkeypatch.setenv("ASSISTANT_TOP_K", "many")
    assert main(["search", "x"]) == 1
    assert "bad setting: ASSISTANT_TOP_K" in capsys.readouterr().err
    monkeypatch.delenv("ASSISTANT_TOP_K")
    assert main(["ask", "   "]) == 1
    assert "the question is empty" in capsys.readouterr().err


def test_an_empty_key_in_the_environment_means_no_key(monkeypatch) -> None:
    from assistant.settings import Settings

    monkeypatch.setenv("OPENAI_API_KEY", "")
    assert Settings().backend == "extractive"


def test_a_read_only_command_makes_nothing_at_a_mistyped_path(tmp_path: Path, capsys) -> None:
    wrong = tmp_path / "wrong" / "dir"
    for argv in (["search", "x"], ["papers"], ["ask", "what is MLA?"]):
        assert main([*argv, "--index", str(wrong)]) == 1
        assert "no index at" in capsys.readouterr().err
    assert not wrong.exists() and not (tmp_path / "wrong").exists()
