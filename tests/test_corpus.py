"""Corpus readers, deduplication, stable ids and bad-input reporting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SEED_CORPUS, write_jsonl

from assistant.corpus import read_corpus, read_file, read_listing, title_id

ABSTRACT = (
    "We study a problem that matters. Our method improves results on three benchmarks. "
    "It is simple, fast and general, and we release the code for others to build on."
)


def test_seed_corpus_has_640_titles_merged_into_639_papers() -> None:
    read = read_corpus([SEED_CORPUS])
    assert read.problems == []
    assert read.records == 697  # entries across the four listings, with repeats
    titles = {t for p in read.papers for t in [p.title, *p.aliases]}
    assert len(titles) == 640
    # Two titles are revisions of one abstract (a renamed paper): one paper keeps both.
    assert len(read.papers) == 639
    [renamed] = [p for p in read.papers if p.aliases]
    assert renamed.title.startswith("The Limited Impact of Medical Adaptation")
    assert renamed.aliases == [
        "Medical Adaptation of Large Language and Vision-Language Models: Are We Making Progress?"
    ]


def test_both_listing_layouts_parse() -> None:
    for name, expected in [("000", 85), ("001", 67), ("003", 234), ("004", 311)]:
        [path] = SEED_CORPUS.glob(f"{name}_*.txt")
        records, problems = read_file(path)
        assert problems == []
        assert len(records) == expected
        # No page chrome or date header became a paper, and the glued "Subscribe" is gone.
        for record in records:
            assert not record.title.startswith(("Subscribe", "Get trending", "byAK"))
            assert record.title not in {"new", "Mar 11", "Mar 17"}
            assert len(record.abstract) > 200


def test_same_title_in_several_files_is_one_paper_with_the_longer_abstract() -> None:
    read = read_corpus([SEED_CORPUS])
    [paper] = [
        p for p in read.papers if p.title == "A Comprehensive Overview of Large Language Models"
    ]
    assert len(paper.sources) == 3
    assert len(paper.abstract) == 1801  # the other two listings carry a 1363-character version


def test_ids_are_stable_across_file_order_and_reingest(tmp_path: Path) -> None:
    first = {p.title: p.paper_id for p in read_corpus([SEED_CORPUS]).papers}
    reordered = tmp_path / "reordered"
    reordered.mkdir()
    for i, path in enumerate(sorted(SEED_CORPUS.iterdir(), reverse=True)):
        shutil.copy(path, reordered / f"{i}_{path.name}")
    second = {p.title: p.paper_id for p in read_corpus([reordered]).papers}
    assert first == second
    assert first["Effectively Compress KV Heads for LLM"] == title_id(
        "effectively compress kv heads  for LLM"
    )


def test_jsonl_keeps_its_own_ids_and_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "id": "2401.00001",
                "title": "A",
                "abstract": ABSTRACT,
                "authors": "Ann Lee, Bo Chan and Cy Dee",
                "update_date": "2024-01-02",
                "categories": "cs.CL cs.LG",
                "url": "https://arxiv.org/abs/2401.00001",
            },
            {"_id": "42", "title": "B", "text": ABSTRACT},
        ],
    )
    read = read_corpus([path])
    assert read.problems == []
    a, b = sorted(read.papers, key=lambda p: p.title)
    assert (a.paper_id, b.paper_id) == ("2401.00001", "42")
    assert a.authors == ["Ann Lee", "Bo Chan", "Cy Dee"]
    assert a.date == "2024-01-02" and a.categories == ["cs.CL", "cs.LG"]


def test_beir_corpus_reads_with_its_ids() -> None:
    scifact = SEED_CORPUS.parents[2] / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"
    if not scifact.exists():
        pytest.skip("shared benchmarks not present")
    records, problems = read_file(scifact)
    assert problems == [] and len(records) == 5183
    assert records[0].id == "4983"


def test_csv_with_the_same_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f'id,title,abstract,date\nx1,"Title, with comma","{ABSTRACT}",2023-05-01\n')
    [paper] = read_corpus([path]).papers
    assert (paper.paper_id, paper.title, paper.date) == ("x1", "Title, with comma", "2023-05-01")


@pytest.mark.parametrize(
    ("name", "content", "line", "field", "message"),
    [
        ("empty.txt", b"", None, "file", "empty file"),
        ("blank.jsonl", b"\n  \n", None, "file", "empty file"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", None, "file", "binary"),
        ("latin1.jsonl", '{"title": "caf\xe9"}'.encode("latin-1"), 1, "file", "UTF-8"),
        ("paper.pdf", b"%PDF-1.4 something", None, "file", "unknown format '.pdf'"),
        (
            "broken.jsonl",
            b'{"title": "A", "abstract": "x"}\n{"title": "B", "abs',
            2,
            "json",
            "broken JSON",
        ),
        (
            "noabs.jsonl",
            b'{"title": "Lonely title"}\n',
            1,
            "abstract",
            "'Lonely title' has no abstract",
        ),
        ("notitle.jsonl", b'{"abstract": "Text."}\n', 1, "title", "missing"),
        ("array.jsonl", b"[1, 2]\n", 1, "json", "object"),
        ("cols.csv", b"name,summary\nA,B\n", 1, "header", "missing column(s) title, abstract|text"),
    ],
)
def test_bad_input_names_file_line_and_field(
    tmp_path: Path, name: str, content: bytes, line: int | None, field: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _, problems = read_file(path)
    assert problems, "bad input must be reported"
    problem = problems[-1]
    assert problem.file.endswith(name)
    assert (problem.line, problem.field) == (line, field)
    assert message in problem.message
    assert name in str(problem)


def test_listing_title_without_abstract_is_reported_and_the_rest_still_read() -> None:
    text = f"Good Paper\n\n{ABSTRACT}\n\nOrphan Title\n\nAnother Good Paper\n\n{ABSTRACT} More.\n"
    records, problems = read_listing(text, "x.txt")
    assert [r.title for r in records] == ["Good Paper", "Another Good Paper"]
    [problem] = problems
    assert (problem.line, problem.field) == (5, "abstract")
    assert "Orphan Title" in problem.message


def test_hidden_folders_readmes_and_control_characters(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "title": "Fine\x1b[2J", "abstract": ABSTRACT}])
    write_jsonl(tmp_path / ".ipynb_checkpoints" / "p-checkpoint.jsonl", [{"id": "old"}])
    (tmp_path / "README.md").write_text("# About these papers\n")
    (tmp_path / "LICENSE").write_text("MIT License\n")
    read = read_corpus([tmp_path])
    assert [(p.paper_id, p.title) for p in read.papers] == [("1", "Fine[2J")]
    assert read.problems == [] and len(read.files) == 1


def test_titles_that_normalise_to_nothing_or_alike(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        f'title,abstract\n???,"{ABSTRACT}"\nC++ for ML,"{ABSTRACT}"\n'
        'C for ML,"A different study of the C language for machine learning. It is fast."\n'
    )
    read = read_corpus([path])
    assert sorted(p.title for p in read.papers) == ["C for ML", "C++ for ML"]
    assert [(p.line, p.field) for p in read.problems] == [(2, "title")]


def test_bad_lines_cost_only_themselves(tmp_path: Path) -> None:
    good = write_jsonl(
        tmp_path / "good.jsonl", [{"id": "1", "title": "Fine", "abstract": ABSTRACT}]
    )
    (tmp_path / "bad.jsonl").write_text(
        '{"id": "2", "title": "Also fine", "abstract": "Yes it is."}\n{oops\n'
    )
    read = read_corpus([tmp_path])
    assert sorted(p.paper_id for p in read.papers) == ["1", "2"]
    assert [(p.line, p.field) for p in read.problems] == [(2, "json")]
    assert good.exists()


def test_a_giant_abstract_is_kept_truncated_with_a_warning(tmp_path: Path) -> None:
    import time

    from assistant.chunking import minilm_token_counter
    from assistant.corpus import MAX_ABSTRACT_TOKENS

    path = write_jsonl(
        tmp_path / "dump.jsonl",
        [
            {"id": "ok", "title": "A normal paper", "abstract": ABSTRACT},
            {"id": "big", "title": "A pasted book", "abstract": ("Chapter one. " * 400_000)},
        ],
    )
    assert path.stat().st_size > 5_000_000
    started = time.perf_counter()
    read = read_corpus([path])
    assert time.perf_counter() - started < 10  # ~0.5 s: only the first 100 kB is tokenised
    [problem] = read.problems
    assert str(problem) == f"{path}:2: abstract: longer than 4,000 tokens, truncated"
    assert problem.kept
    papers = {p.paper_id: p for p in read.papers}
    assert papers["ok"].abstract == ABSTRACT
    assert minilm_token_counter()(papers["big"].abstract) <= MAX_ABSTRACT_TOKENS
    assert papers["big"].abstract.startswith("Chapter one. Chapter one.")
