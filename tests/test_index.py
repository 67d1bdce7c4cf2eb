"""The opened index over a real embedded Chroma: which model, filters, other ingests, caches.

The embedder is the fake one: these tests are about bookkeeping, not quality.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_ingest, write_jsonl

from assistant.errors import ModelMismatchError
from assistant.index import PaperIndex, best_first
from assistant.retrieval import search


def test_query_with_another_model_is_refused(settings, corpus, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    other = settings.model_copy(update={"embeddings": "openai"})
    with pytest.raises(ModelMismatchError) as err:
        PaperIndex.open(other)
    assert "local:all-MiniLM-L6-v2" in str(err.value) and "--rebuild" in str(err.value)


def test_search_filters_by_source(settings, corpus, fake_embedder) -> None:
    from assistant.retrieval import Filters

    run_ingest(settings, [corpus], fake_embedder)
    index = PaperIndex.open(settings)
    for mode in ("hybrid", "dense", "bm25"):
        hits = search(
            index,
            fake_embedder,
            "quantization protein speech",
            k=10,
            mode=mode,
            filters=Filters(source="b.jsonl"),
        )
        assert hits and {h.paper.paper_id for h in hits} <= {"b0", "b1", "b2"}


def test_an_open_index_follows_another_ingest(settings, corpus, tmp_path, fake_embedder) -> None:
    run_ingest(settings, [corpus], fake_embedder)
    index = PaperIndex.open(settings)
    extra = write_jsonl(
        tmp_path / "extra.jsonl", [{"id": "z", "title": "Zebra", "abstract": "Zebra migration."}]
    )
    run_ingest(settings, [extra], fake_embedder)  # e.g. another process, or the UI's button
    index._checked -= PaperIndex.FRESHNESS_SECONDS
    assert search(index, fake_embedder, "zebra migration", k=1)[0].paper.paper_id == "z"


def test_concurrent_cold_opens_never_crash(settings, corpus, fake_embedder) -> None:
    """Read-only commands rebuild a stale cache; several at once must not trip over each other."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from assistant.snapshot import cache_dir

    run_ingest(settings, [corpus], fake_embedder)
    for _ in range(3):
        shutil.rmtree(cache_dir(settings), ignore_errors=True)
        with ThreadPoolExecutor(4) as pool:
            opened = list(pool.map(lambda _: PaperIndex.open(settings), range(4)))
        assert all(len(index.papers) == 6 for index in opened)
    assert len(PaperIndex.open(settings).papers) == 6


def test_weighted_terms_titles_and_the_chunk_cap(settings, corpus, fake_embedder) -> None:
    from assistant.index import cap_per_paper

    run_ingest(settings, [corpus], fake_embedder)
    index = PaperIndex.open(settings)
    plain = dict(index.lexical(["protein", "fold"], 10))
    weighted = dict(index.lexical({"protein": 2.0, "fold": 2.0, "absent": 5.0}, 10))
    assert weighted.keys() == plain.keys()
    assert all(weighted[c] == pytest.approx(2 * plain[c], rel=1e-5) for c in plain)
    assert index.lexical({"absent": 1.0}, 10) == []
    # The title index: "quantiz" is in a1's title; b0's abstract repeats "protein" but so
    # does its title, so both title searches find their paper first.
    assert index.titles(["quantiz"], 5)[0][0] == "a1"
    assert index.titles(["protein"], 5)[0][0] == "b0"
    assert index.snapshot.first_chunk["a1"] == "a1#0"

    paper_of = {"x#0": "x", "x#1": "x", "x#2": "x", "y#0": "y"}
    ranked = [("x#0", 0.9), ("x#1", 0.8), ("x#2", 0.7), ("y#0", 0.6)]
    assert cap_per_paper(ranked, paper_of, 2, 3) == [("x#0", 0.9), ("x#1", 0.8), ("y#0", 0.6)]
    assert cap_per_paper(ranked, paper_of, 0, 3) == ranked[:3]


def test_exact_dense_search_agrees_with_chroma_and_follows_filters_and_the_cap(
    settings, corpus, fake_embedder
) -> None:
    """Small indexes are searched exactly over the cached vectors; Chroma's HNSW (what a
    large index uses) must rank the same here, with the same cosines, filter or not."""
    run_ingest(settings, [corpus], fake_embedder)
    exact = PaperIndex.open(settings)
    approximate = PaperIndex.open(settings.model_copy(update={"exact_search_max_chunks": 0}))
    assert exact.snapshot.vectors is not None and approximate.snapshot.vectors is None
    vector = fake_embedder.embed_query("quantization of speech models")
    for allowed in (None, {"b0", "b2"}):
        ours = exact.dense(vector, 4, allowed, per_paper=1)
        chroma = approximate.dense(vector, 4, allowed, per_paper=1)
        assert [c for c, _ in ours] == [c for c, _ in chroma]
        assert ours[0][1] == pytest.approx(chroma[0][1], abs=1e-5)
        papers = [exact.snapshot.paper_of[c] for c, _ in ours]
        assert len(set(papers)) == len(papers)
        assert allowed is None or set(papers) <= allowed
    ids = exact.snapshot.chunk_ids[:3]
    assert (exact.vectors(ids) == approximate.vectors(ids)).all()


def test_the_cached_snapshot_matches_a_fresh_one_and_reads_rows_on_demand(
    settings, corpus, fake_embedder
) -> None:
    """A one-shot command opens the cache without parsing every paper and chunk text."""
    from assistant.line_table import KeyedRows
    from assistant.snapshot import snapshot_from_collection

    run_ingest(settings, [corpus], fake_embedder)
    cached = PaperIndex.open(settings)
    fresh = snapshot_from_collection(cached.collection, settings)
    snap = cached.snapshot
    assert isinstance(snap.papers, KeyedRows) and not snap.papers._made
    assert dict(snap.papers) == fresh.papers
    assert list(snap.chunk_texts) == list(fresh.chunk_texts)
    assert snap.text_of[snap.chunk_ids[-1]] == fresh.text_of[snap.chunk_ids[-1]]
    assert snap.document_frequency == fresh.document_frequency
    assert snap.acronyms == fresh.acronyms
    assert snap.terms_of("a0") == fresh.terms_of("a0") != frozenset()


@pytest.mark.parametrize("k", [0, 1, 7, 50, 200, 300])
def test_best_first_is_a_stable_argsort_prefix(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 12, 200).astype(np.float32)  # many ties
    scores[rng.integers(0, 200, 20)] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:k]
    assert best_first(scores, k).tolist() == expected.tolist()
