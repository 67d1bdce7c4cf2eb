"""Ingest into a real embedded Chroma on a temporary dir: incremental, resumable, never lossy.

The embedder is the fake one: these tests are about bookkeeping, not quality.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest import TOPICS, FakeEmbedder, paper_rows, run_ingest, write_jsonl

from assistant import ingest as ingest_module
from assistant import store
from assistant.cli import main
from assistant.corpus import read_corpus
from assistant.index import PaperIndex
from assistant.ingest import plan_ingest
from assistant.retrieval import search
from assistant.settings import Settings


def test_ingest_then_search(settings: Settings, corpus: Path, fake_embedder: FakeEmbedder) -> None:
    report = run_ingest(settings, [corpus], fake_embedder)
    assert (report.papers, report.added, report.chunks_embedded) == (6, 6, 6)
    index = PaperIndex.open(settings)
    hits = search(index, fake_embedder, "four bit quantization of weights", k=3)
    assert hits[0].paper.paper_id == "a1"
    meta = index.collection.get(ids=["a1#0"], include=["metadatas"])["metadatas"][0]
    assert meta["paper_id"] == "a1" and meta["title"] == TOPICS[1][0] and meta["position"] == 0
    assert meta["sources"] == [str(corpus / "a.jsonl")]
    assert index.papers["a1"].sources == [str(corpus / "a.jsonl")]


def test_progress_counts_the_papers_embedded(settings, corpus, fake_embedder, monkeypatch) -> None:
    monkeypatch.setattr("assistant.ingest.EMBED_BATCH_CHUNKS", 4)  # several writes, not one
    calls: list[tuple[int, int]] = []
    run_ingest(settings, [corpus], fake_embedder, on_progress=lambda *a: calls.append(a))
    assert calls == [(4, 6), (6, 6)]
    calls.clear()
    run_ingest(settings, [corpus], fake_embedder, on_progress=lambda *a: calls.append(a))
    assert calls == []  # nothing to embed, nothing to report


def test_unchanged_corpus_reembeds_nothing(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    before = fake_embedder.embedded
    report = run_ingest(settings, [corpus], fake_embedder)
    assert fake_embedder.embedded == before
    assert (report.unchanged, report.added, report.reembedded, report.deleted) == (6, 0, 0, 0)


def test_changed_abstract_is_reembedded_and_searchable(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    rows = paper_rows("a", TOPICS[:3])
    rows[2]["abstract"] = (
        "We now study zebra migration across the savanna in great detail. It is new."
    )
    write_jsonl(corpus / "a.jsonl", rows)
    before = fake_embedder.embedded
    report = run_ingest(settings, [corpus], fake_embedder)
    assert (report.reembedded, report.unchanged) == (1, 5)
    assert fake_embedder.embedded - before == 1
    index = PaperIndex.open(settings)
    assert search(index, fake_embedder, "zebra migration savanna", k=1)[0].paper.paper_id == "a2"
    assert len(index.snapshot.chunk_ids) == 6  # the old chunk is gone


def test_removed_file_deletes_its_papers_only(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    (corpus / "b.jsonl").unlink()
    report = run_ingest(settings, [corpus], fake_embedder)
    assert report.deleted == 3
    assert sorted(PaperIndex.open(settings).papers) == ["a0", "a1", "a2"]


def test_a_paper_listed_in_a_second_file_records_both(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    write_jsonl(corpus / "c.jsonl", paper_rows("a", TOPICS[:1]))  # a0 again, unchanged
    report = run_ingest(settings, [corpus], fake_embedder)
    assert (report.unchanged, report.added) == (6, 0)
    index = PaperIndex.open(settings)
    both = [str(corpus / "a.jsonl"), str(corpus / "c.jsonl")]
    assert index.papers["a0"].sources == both
    meta = index.collection.get(ids=["a0#0"], include=["metadatas"])["metadatas"][0]
    assert meta["sources"] == both


def test_sources_mean_the_same_from_any_working_directory(
    settings, corpus, fake_embedder, monkeypatch
) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    (corpus / "b.jsonl").unlink()
    monkeypatch.chdir(corpus.parent.parent)  # ingest the same folder from elsewhere
    report = run_ingest(settings, [corpus.resolve()], fake_embedder)
    assert report.deleted == 3
    assert PaperIndex.open(settings).papers["a0"].sources == [str(corpus / "a.jsonl")]


def test_ingesting_another_path_keeps_what_was_there(
    settings, corpus, tmp_path, fake_embedder
) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    extra = write_jsonl(
        tmp_path / "extra.jsonl", [{"id": "x", "title": "Extra", "abstract": "An extra paper."}]
    )
    report = run_ingest(settings, [extra], fake_embedder)
    assert (report.added, report.deleted, report.papers) == (1, 0, 7)


def test_a_file_with_a_bad_line_loses_nothing(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    text = (corpus / "b.jsonl").read_text()
    (corpus / "b.jsonl").write_text(text.replace('"b1"', '"b1" BROKEN'))
    report = run_ingest(settings, [corpus], fake_embedder)
    assert report.deleted == 0 and report.kept_despite_problems == 1
    assert "b1" in PaperIndex.open(settings).papers


def test_interrupted_ingest_resumes_where_it_stopped(
    settings, tmp_path, fake_embedder, monkeypatch
) -> None:
    topics = [(f"Paper number {i}", f"topic{i} words{i}") for i in range(10)]
    path = write_jsonl(tmp_path / "many.jsonl", paper_rows("m", topics))
    monkeypatch.setattr(ingest_module, "EMBED_BATCH_CHUNKS", 3)

    class Dies(FakeEmbedder):
        def embed_documents(self, texts):
            if len(self.calls) == 2:  # Ctrl-C during the third batch
                raise KeyboardInterrupt
            return super().embed_documents(texts)

    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, [path], Dies())
    index = PaperIndex.open(settings)  # consistent: the stale cache is rebuilt, whole papers only
    assert len(index.papers) == 6 and len(index.snapshot.chunk_ids) == 6
    report = run_ingest(settings, [path], fake_embedder)
    assert (report.unchanged, report.added, fake_embedder.embedded) == (6, 4, 4)
    assert len(PaperIndex.open(settings).papers) == 10


def test_rebuild_swaps_in_only_when_complete(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)

    class Dies(FakeEmbedder):
        def embed_documents(self, texts):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, [corpus], Dies(), rebuild=True)
    assert len(PaperIndex.open(settings).papers) == 6  # the old index still answers
    before = fake_embedder.embedded
    report = run_ingest(settings, [corpus], fake_embedder, rebuild=True)
    assert fake_embedder.embedded - before == 6 and report.papers == 6
    index = PaperIndex.open(settings)
    assert [c.name for c in store.open_client(settings).list_collections()] == ["papers"]
    assert search(index, fake_embedder, "protein folding", k=1)[0].paper.paper_id == "b0"


def test_strict_ingest_fails_and_leaves_the_index_untouched(
    settings, corpus, fake_embedder, capsys
) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    generation = PaperIndex.open(settings).snapshot.generation
    (corpus / "c.jsonl").write_text(
        '{"id": "c0", "title": "New", "abstract": "Fine."}\n{"title": "No abstract"}\n'
    )
    code = main(["ingest", str(corpus), "--strict", "--index", str(settings.index_dir)])
    assert code == 1
    err = capsys.readouterr().err
    assert "c.jsonl:2: abstract:" in err and "index was not changed" in err
    assert err.count("c.jsonl:2: abstract:") == 1  # each problem is printed once
    index = PaperIndex.open(settings)
    assert index.snapshot.generation == generation and "c0" not in index.papers


def test_interrupted_reembedding_keeps_the_old_versions(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    rows = paper_rows("a", TOPICS[:3])
    for row in rows:
        row["abstract"] += " Revised with new results on zebra migration."
    write_jsonl(corpus / "a.jsonl", rows)

    class Dies(FakeEmbedder):
        def embed_documents(self, texts):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, [corpus], Dies())
    index = PaperIndex.open(settings)
    assert sorted(index.papers) == ["a0", "a1", "a2", "b0", "b1", "b2"]  # nothing lost
    assert not index.complete
    report = run_ingest(settings, [corpus], fake_embedder)
    assert report.reembedded == 3 and PaperIndex.open(settings).complete


def test_noop_reingest_keeps_every_cache_valid(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    generation = PaperIndex.open(settings).snapshot.generation
    run_ingest(settings, [corpus], fake_embedder)
    assert PaperIndex.open(settings).snapshot.generation == generation


def test_rebuild_reports_what_it_leaves_out(settings, corpus, tmp_path, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    extra = write_jsonl(
        tmp_path / "extra.jsonl", [{"id": "z", "title": "Zebra", "abstract": "Zebra migration."}]
    )
    run_ingest(settings, [extra], fake_embedder)
    report = run_ingest(settings, [corpus], fake_embedder, rebuild=True)
    assert report.papers == 6
    assert any("leaves out 1 papers" in note and "extra.jsonl" in note for note in report.notes)


def test_a_stale_rebuild_for_another_model_starts_over(settings, corpus, fake_embedder) -> None:
    class Other(FakeEmbedder):
        name = "openai:text-embedding-3-small"

        def embed_documents(self, texts):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_ingest(settings, [corpus], Other(), rebuild=True)
    report = run_ingest(settings, [corpus], fake_embedder, rebuild=True)
    assert report.papers == 6


def test_calls_stay_under_chromas_batch_limit(settings, corpus, fake_embedder, monkeypatch) -> None:
    import chromadb.api.client

    monkeypatch.setattr(chromadb.api.client.Client, "get_max_batch_size", lambda self: 2)
    run_ingest(settings, [corpus], fake_embedder)
    write_jsonl(corpus / "c.jsonl", paper_rows("a", TOPICS[:3]))  # three papers gain a source
    (corpus / "b.jsonl").unlink()  # three papers go
    report = run_ingest(settings, [corpus], fake_embedder)
    assert (report.deleted, report.unchanged) == (3, 3)
    assert all(len(p.sources) == 2 for p in PaperIndex.open(settings).papers.values())


def test_planning_leaves_the_papers_read_as_they_were(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    extra = write_jsonl(corpus / "c.jsonl", paper_rows("a", TOPICS[:1]))  # a0, also in a.jsonl
    read = read_corpus([extra])
    before = copy.deepcopy(read.papers)
    plan = plan_ingest(PaperIndex.open(settings).collection, read, [extra])
    assert read.papers == before and read.papers[0].sources == [str(extra)]
    assert plan.relabel["a0"][1].sources == [str(corpus / "a.jsonl"), str(extra)]
    assert (plan.unchanged, plan.added, plan.reembedded, plan.deleted) == (1, 0, 0, 0)


def test_two_concurrent_ingests_embed_the_corpus_once(settings, corpus) -> None:
    """The second ingest waits for the first and finds its work done, instead of repeating it."""
    import threading
    import time

    class Slow(FakeEmbedder):
        def embed_documents(self, texts):
            time.sleep(0.2)  # long enough for the two ingests to overlap
            return super().embed_documents(texts)

    embedders = [Slow(), Slow()]
    threads = [threading.Thread(target=run_ingest, args=(settings, [corpus], e)) for e in embedders]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=60)
    chunks = len(PaperIndex.open(settings).snapshot.chunk_ids)
    assert sorted(e.embedded for e in embedders) == [0, chunks]


def test_a_giant_record_is_capped_and_the_other_papers_still_rank(
    settings, corpus, fake_embedder, capsys
) -> None:
    """A 5 MB abstract made of one topic's words: truncated at read, its chunks capped in
    the candidates, so dense search still finds the paper on that topic."""
    import time

    from conftest import components_with

    words = "attention sparsity long context windows. "
    giant = write_jsonl(
        corpus / "giant.jsonl",
        [{"id": "giant", "title": "Everything", "abstract": words * 125_000}],
    )
    assert giant.stat().st_size > 5_000_000
    started = time.perf_counter()
    args = ["ingest", str(corpus), "--quiet", "--index", str(settings.index_dir)]
    assert main(args, make_components=components_with(fake_embedder)) == 0
    assert time.perf_counter() - started < 60  # ~3 s here; uncapped it would be 20,000 chunks
    err = capsys.readouterr().err
    assert f"warning: {giant}:1: abstract: longer than 4,000 tokens, truncated" in err
    assert "1 truncated" in err and "skipped" not in err

    index = PaperIndex.open(settings)
    assert len(index.papers) == 7
    chunks = index.snapshot.chunk_papers.count("giant")
    assert 10 < chunks < 30  # 4,000 word pieces in chunks of up to 256
    # Every giant chunk is closer to the query than a0 is; with candidates for 2 papers
    # (4 x k = 8 chunks), uncapped they would all be the giant's.
    small = settings.model_copy(update={"candidates": 1})
    query = "attention sparsity long context windows"

    def dense_top(per_paper: int) -> list[str]:
        index.settings = small.model_copy(update={"max_chunks_per_paper": per_paper})
        return [h.paper.paper_id for h in search(index, fake_embedder, query, k=2, mode="dense")]

    assert dense_top(3) == ["giant", "a0"]
    assert dense_top(0) == ["giant"]  # what the cap prevents


def test_a_truncated_record_does_not_keep_deleted_papers(settings, tmp_path, fake_embedder) -> None:
    """Only a skipped record makes its file 'troubled' (papers it lost are kept, in case the
    bad line was one of them); a truncated one was read, so removals still delete."""
    rows = paper_rows("a", TOPICS[:2])
    path = write_jsonl(tmp_path / "p" / "a.jsonl", rows)
    run_ingest(settings, [path.parent], fake_embedder)
    big = {"id": "big", "title": "Big", "abstract": "many words here " * 3000}
    write_jsonl(path, [rows[0], big])
    read = read_corpus([path.parent])
    assert [p.kept for p in read.problems] == [True]
    report = run_ingest(settings, [path.parent], fake_embedder)
    assert (report.deleted, report.kept_despite_problems) == (1, 0)
    assert "a1" not in PaperIndex.open(settings).papers
