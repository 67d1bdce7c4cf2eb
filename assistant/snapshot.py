"""What search needs in memory, derived from the collection, and its cache on disk.

Chroma is the source of truth; everything else (the paper table, the BM25
index) is a cache derived from the collection and stamped with the
collection's `generation`, so a cache that doesn't match (after a crash, or on
another machine sharing a Chroma server) is rebuilt instead of trusted.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .line_table import KeyedRows, LineTable, write_lines
from .settings import Settings
from .store import generation_of, read_collection
from .text import bm25_tokenize
from .types import Paper

if TYPE_CHECKING:
    import bm25s
    from chromadb.api.models.Collection import Collection


@dataclass
class Snapshot:
    """What search needs in memory, derived from the collection."""

    generation: str
    papers: Mapping[str, Paper]  # from the cache, each parsed on first use (line_table.py)
    chunk_ids: list[str]
    chunk_papers: list[str]
    chunk_texts: Sequence[str]
    bm25: bm25s.BM25 | None = None
    # The stored vectors, row i for chunk_ids[i], when the index is small enough to search
    # exactly (Settings.exact_search_max_chunks); None sends dense search to Chroma's HNSW.
    vectors: np.ndarray | None = None
    directory: Path | None = None  # the cache it was loaded from: where derived tables are
    _terms: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def paper_of(self) -> dict[str, str]:
        return dict(zip(self.chunk_ids, self.chunk_papers, strict=True))

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {chunk_id: i for i, chunk_id in enumerate(self.chunk_ids)}

    @cached_property
    def text_of(self) -> Mapping[str, str]:
        return KeyedRows(self.row_of, self.chunk_texts, str)

    @cached_property
    def first_chunk(self) -> dict[str, str]:
        """Each paper's first chunk (the one that stands for it where no chunk matched)."""
        first: dict[str, str] = {}
        for chunk_id, paper_id in zip(self.chunk_ids, self.chunk_papers, strict=True):
            first.setdefault(paper_id, chunk_id)
        return first

    @cached_property
    def title_index(self) -> tuple[list[str], bm25s.BM25 | None]:
        """A BM25 index of the titles alone (every title a paper is known by), one per paper.
        Built on first use: it takes well under a second even for SciFact's 5,183 papers."""
        ids = [pid for pid in self.papers if pid in self.first_chunk]
        texts = [" ".join([self.papers[i].title, *self.papers[i].aliases]) for i in ids]
        return ids, build_bm25(texts) if texts else None

    def terms_of(self, paper_id: str) -> frozenset[str]:
        """A paper's BM25 terms (stemmed, no stop words), for coverage checks: tokenised on
        demand, since an answer needs three papers' and the index may hold 100,000."""
        if paper_id not in self._terms:
            paper = self.papers.get(paper_id)
            text = f"{paper.title} {paper.abstract}" if paper else ""
            self._terms[paper_id] = frozenset(bm25_tokenize([text])[0]) if text else frozenset()
        return self._terms[paper_id]

    @cached_property
    def document_frequency(self) -> Counter[str]:
        """How many papers use each term. Computed once per generation, with the snapshot's
        other caches, and read from disk after: tokenising every abstract takes seconds at
        tens of thousands of papers, which a one-shot `ask` shouldn't pay."""
        saved = self._saved("document_frequency.json")
        if saved is not None:
            return Counter(saved)
        ids = list(self.papers)
        texts = [f"{self.papers[i].title} {self.papers[i].abstract}" for i in ids]
        return Counter(term for terms in bm25_tokenize(texts) for term in set(terms))

    @cached_property
    def acronyms(self) -> frozenset[str]:
        """Initials of runs of 2-5 capitalised words ('Conditional Random Fields' -> 'crf');
        like the document frequencies, cached on disk with the snapshot."""
        saved = self._saved("acronyms.json")
        if saved is not None:
            return frozenset(saved)
        found: set[str] = set()
        pattern = re.compile(r"\b(?:[A-Z][\w-]*\s+){1,4}[A-Z][\w-]*")
        for paper in self.papers.values():
            for run in pattern.findall(f"{paper.title}. {paper.abstract}"):
                words = run.split()
                for i in range(len(words)):
                    for j in range(i + 2, len(words) + 1):
                        found.add("".join(w[0] for w in words[i:j]).lower())
        return frozenset(found)

    def _saved(self, name: str) -> Any:
        """A derived table from the snapshot's cache folder; None when there is none."""
        if self.directory is None:
            return None
        try:
            state = json.loads((self.directory / "state.json").read_text())
            if state.get("generation") != self.generation:
                return None  # a newer cache was swapped in since this one was opened
            return json.loads((self.directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


# Anserini's and Pyserini's defaults. Chunks are short
# (an abstract's worth at most), where saturating term frequency sooner (k1 0.9, not
# bm25s's 1.5) and normalising length less (b 0.4, not 0.75) rank better: on SciFact's
# training claims nDCG@10 goes from 0.685 to 0.691 for BM25 alone and from 0.731 to
# 0.740 for hybrid search (benchmarks/retrieval_scifact.py).
BM25_K1 = 0.9
BM25_B = 0.4
# Part of every cache's state: a cache built with other BM25 parameters is rebuilt.
CACHE_FORMAT = f"bm25s-lucene-k1={BM25_K1}-b={BM25_B}-stem=english-rows=2"


def build_bm25(texts: list[str], k1: float = BM25_K1, b: float = BM25_B) -> bm25s.BM25:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25_tokenize(texts), show_progress=False)
    return retriever


def wants_vectors(settings: Settings, chunks: int) -> bool:
    """Whether dense search over this many chunks is exact (numpy) rather than Chroma's HNSW."""
    return 0 < chunks <= settings.exact_search_max_chunks


def snapshot_from_collection(collection: Collection, settings: Settings) -> Snapshot:
    include = ["documents", "metadatas"]
    with_vectors = wants_vectors(settings, collection.count())
    rows = sorted(
        read_collection(collection, [*include, "embeddings"] if with_vectors else include),
        key=lambda r: (r["metadatas"]["paper_id"], r["metadatas"]["position"]),
    )
    papers = {
        r["metadatas"]["paper_id"]: Paper.from_dict(json.loads(r["metadatas"]["paper"]))
        for r in rows
        if "paper" in r["metadatas"]
    }
    for r in rows:  # a paper whose first chunk (and record) was lost keeps its other chunks
        meta = r["metadatas"]
        if meta["paper_id"] not in papers:
            body = " ".join(
                x["documents"].split("\n", 1)[-1]
                for x in rows
                if x["metadatas"]["paper_id"] == meta["paper_id"]
            )
            sources = list(meta.get("sources", []))
            papers[meta["paper_id"]] = Paper(meta["paper_id"], meta.get("title", ""), body, sources)
    texts = [r["documents"] for r in rows]
    return Snapshot(
        generation=(collection.metadata or {}).get("generation", ""),
        papers=papers,
        chunk_ids=[r["id"] for r in rows],
        chunk_papers=[r["metadatas"]["paper_id"] for r in rows],
        chunk_texts=texts,
        bm25=build_bm25(texts) if texts else None,
        vectors=np.asarray([r["embeddings"] for r in rows], np.float32) if with_vectors else None,
    )


def cache_dir(settings: Settings) -> Path:
    return settings.index_dir / "cache" / settings.collection


def save_snapshot(snapshot: Snapshot, directory: Path) -> None:
    """Best effort: written aside and swapped in, so a reader never sees half a cache.

    Two processes may both find the cache stale and both write it; whichever
    swap loses just drops its copy. A cache that couldn't be written is only a
    cache: the next open derives it again.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        write_lines(tmp / "papers.jsonl", (p.to_dict() for p in snapshot.papers.values()))
        write_lines(tmp / "texts.jsonl", snapshot.chunk_texts)
        chunks = {
            "ids": snapshot.chunk_ids,
            "papers": snapshot.chunk_papers,
            "paper_ids": list(snapshot.papers),
        }
        (tmp / "chunks.json").write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
        if snapshot.bm25 is not None:
            snapshot.bm25.save(str(tmp / "bm25"), show_progress=False)
        if snapshot.vectors is not None:
            np.save(tmp / "vectors.npy", snapshot.vectors)
        for name, table in (
            ("document_frequency.json", dict(snapshot.document_frequency)),
            ("acronyms.json", sorted(snapshot.acronyms)),
        ):
            (tmp / name).write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        state = {
            "generation": snapshot.generation,
            "format": CACHE_FORMAT,
            "chunks": len(snapshot.chunk_ids),
            "vectors": snapshot.vectors is not None,
        }
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_snapshot(directory: Path, generation: str, settings: Settings) -> Snapshot | None:
    """The cache if it is whole and of this generation; None sends the caller to Chroma.

    Papers and chunk texts are read a row at a time when asked for, and the vectors and
    BM25's arrays are memory-mapped: opening reads the chunk ids and little else, and
    processes sharing an index share those pages in the page cache.
    """
    try:
        state = json.loads((directory / "state.json").read_text())
        if state.get("generation") != generation or state.get("format") != CACHE_FORMAT:
            return None  # the collection changed, or the cache was built another way
        with_vectors = wants_vectors(settings, state["chunks"])
        if with_vectors and not state["vectors"]:
            return None  # written under a lower exact_search_max_chunks
        import bm25s

        chunks = json.loads((directory / "chunks.json").read_text(encoding="utf-8"))
        rows = {paper_id: i for i, paper_id in enumerate(chunks["paper_ids"])}
        papers = KeyedRows(rows, LineTable(directory / "papers.jsonl"), Paper.from_dict)
        texts = LineTable(directory / "texts.jsonl")
        if len(texts) != len(chunks["ids"]):
            return None
        bm25 = None
        if (directory / "bm25").exists():
            # Memory-mapped too: a query reads only its terms' postings.
            bm25 = bm25s.BM25.load(str(directory / "bm25"), mmap=True, show_progress=False)
        vectors = np.load(directory / "vectors.npy", mmap_mode="r") if with_vectors else None
        if vectors is not None and vectors.shape[0] != len(chunks["ids"]):
            return None
        return Snapshot(
            generation,
            papers,
            chunks["ids"],
            chunks["papers"],
            texts,
            bm25,
            vectors,
            directory,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # half-written by a process that died, or removed under us


def current_snapshot(settings: Settings, collection: Collection) -> Snapshot:
    """The cached snapshot when it matches the collection, else one derived afresh."""
    snapshot = load_snapshot(cache_dir(settings), generation_of(collection), settings)
    if snapshot is None:
        snapshot = snapshot_from_collection(collection, settings)
        save_snapshot(snapshot, cache_dir(settings))
    return snapshot
