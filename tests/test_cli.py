"""The command line: fast help, the JSON shape other tools read, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO, write_jsonl

from assistant.cli import main
from assistant.corpus import read_corpus
from assistant.index import ingest


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
    monkeypatch.setattr("assistant.embeddings.make_embedder", lambda s: fake_embedder)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("sparse attention\nspeech\n"))
    assert main(["search", "-", "--json", "-k", "2", "--index", str(settings.index_dir)]) == 0
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
