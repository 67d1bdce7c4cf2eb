"""Chunks -> embeddings -> Chroma, plus a BM25 index persisted beside it.

Chroma is the source of truth: every chunk carries its paper's id and content
hash, and each paper's first chunk carries the whole paper record. Everything
else (the paper table, the BM25 index) is a cache derived from the collection
and stamped with the collection's `generation`, so a cache that doesn't match
(after a crash, or on another machine sharing a Chroma server) is rebuilt
instead of trusted.

Ingest is incremental and resumable: a paper's chunks are added in one call,
so after Ctrl-C the collection holds whole papers only, and the next ingest
skips every paper whose content hash is already there.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .chunking import chunk_paper, minilm_token_counter
from .corpus import CorpusRead
from .embeddings import BULK_BATCH, Embedder
from .errors import AssistantError, IndexMissingError, ModelMismatchError
from .settings import Settings
from .text import bm25_tokenize, query_terms
from .types import Chunk, Paper

if TYPE_CHECKING:
    import bm25s
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# Chunks per Chroma write: one progress step, one resumable unit, and large enough
# for the embedder's bulk (bf16) path.
EMBED_BATCH_CHUNKS = BULK_BATCH
REBUILD_SUFFIX = "-rebuild"
T = TypeVar("T")


# --- Chroma -----------------------------------------------------------------


def open_client(settings: Settings) -> ClientAPI:
    """Embedded by default; a Chroma server when CHROMA_HOST is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        except Exception as exc:
            raise AssistantError(
                f"cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port}"
                f" ({type(exc).__name__})",
                "start it with `chroma run --path DIR --port PORT`, or unset CHROMA_HOST "
                "to use the embedded store",
            ) from exc
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(settings.index_dir / "chroma"), settings=chroma_settings
    )


@contextmanager
def server_errors(settings: Settings) -> Iterator[None]:
    """A Chroma server that goes away mid-session is an error to explain, not a traceback."""
    import httpx

    try:
        yield
    except httpx.TransportError as exc:
        raise AssistantError(
            f"lost the connection to {where_am_i(settings)} ({type(exc).__name__})",
            "check that the Chroma server is still running",
        ) from exc


def translates_server_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """For functions whose first argument is the Settings."""

    @functools.wraps(fn)
    def wrapper(settings: Settings, *args: Any, **kwargs: Any) -> T:
        with server_errors(settings):
            return fn(settings, *args, **kwargs)

    return wrapper


def find_collection(client: ClientAPI, name: str) -> Collection | None:
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name)
    except (NotFoundError, ValueError):
        return None


def where_am_i(settings: Settings) -> str:
    if settings.chroma_host:
        return f"the Chroma server {settings.chroma_host}:{settings.chroma_port}"
    return str(settings.index_dir)


def check_model(collection: Collection, settings: Settings, embedder_name: str) -> None:
    built_with = (collection.metadata or {}).get("embedding_model")
    if built_with != embedder_name:
        embeddings = built_with.split(":")[0] if built_with else "?"
        raise ModelMismatchError(
            f"the index at {where_am_i(settings)} was built with {built_with}, "
            f"but the configured embedding model is {embedder_name}",
            f"rebuild it with `python -m assistant ingest --rebuild`, or set "
            f"ASSISTANT_EMBEDDINGS={embeddings} to match the index",
        )


def read_collection(collection: Collection, include: list[str]) -> Iterator[dict[str, Any]]:
    """Everything in the collection, paged so a large index doesn't become one huge reply."""
    page = 5000
    for offset in range(0, collection.count(), page):
        batch = collection.get(include=include, limit=page, offset=offset)  # type: ignore[arg-type]
        for i, chunk_id in enumerate(batch["ids"]):
            row: dict[str, Any] = {"id": chunk_id}
            for key in include:
                row[key] = batch[key][i]  # type: ignore[literal-required]
            yield row


# --- the derived snapshot: papers and BM25 ------------------------------------


@dataclass
class Snapshot:
    """What search needs in memory, derived from the collection."""

    generation: str
    papers: dict[str, Paper]
    chunk_ids: list[str]
    chunk_papers: list[str]
    chunk_texts: list[str]
    bm25: bm25s.BM25 | None = None

    @cached_property
    def paper_of(self) -> dict[str, str]:
        return dict(zip(self.chunk_ids, self.chunk_papers, strict=True))

    @cached_property
    def text_of(self) -> dict[str, str]:
        return dict(zip(self.chunk_ids, self.chunk_texts, strict=True))

    @cached_property
    def paper_terms(self) -> dict[str, frozenset[str]]:
        """Each paper's BM25 terms (stemmed, no stop words), for coverage checks."""
        ids = list(self.papers)
        texts = [f"{self.papers[i].title} {self.papers[i].abstract}" for i in ids]
        return dict(zip(ids, map(frozenset, bm25_tokenize(texts)), strict=True))

    @cached_property
    def acronyms(self) -> frozenset[str]:
        """Initials of runs of 2-5 capitalised words ('Conditional Random Fields' -> 'crf')."""
        found: set[str] = set()
        pattern = re.compile(r"\b(?:[A-Z][\w-]*\s+){1,4}[A-Z][\w-]*")
        for paper in self.papers.values():
            for run in pattern.findall(f"{paper.title}. {paper.abstract}"):
                words = run.split()
                for i in range(len(words)):
                    for j in range(i + 2, len(words) + 1):
                        found.add("".join(w[0] for w in words[i:j]).lower())
        return frozenset(found)

    @cached_property
    def document_frequency(self) -> Counter[str]:
        return Counter(term for terms in self.paper_terms.values() for term in terms)


# Anserini's and Pyserini's defaults. Chunks are short
# (an abstract's worth at most), where saturating term frequency sooner (k1 0.9, not
# bm25s's 1.5) and normalising length less (b 0.4, not 0.75) rank better: on SciFact's
# training claims nDCG@10 goes from 0.685 to 0.691 for BM25 alone and from 0.731 to
# 0.740 for hybrid search (benchmarks/retrieval_scifact.py).
BM25_K1 = 0.9
BM25_B = 0.4
# Part of every cache's state: a cache built with other BM25 parameters is rebuilt.
CACHE_FORMAT = f"bm25s-lucene-k1={BM25_K1}-b={BM25_B}-stem=english"


def build_bm25(texts: list[str], k1: float = BM25_K1, b: float = BM25_B) -> bm25s.BM25:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25_tokenize(texts), show_progress=False)
    return retriever


def snapshot_from_collection(collection: Collection) -> Snapshot:
    rows = sorted(
        read_collection(collection, ["documents", "metadatas"]),
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
        with (tmp / "papers.jsonl").open("w", encoding="utf-8") as f:
            for paper in snapshot.papers.values():
                f.write(json.dumps(paper.to_dict(), ensure_ascii=False) + "\n")
        chunks = {
            "ids": snapshot.chunk_ids,
            "papers": snapshot.chunk_papers,
            "texts": snapshot.chunk_texts,
        }
        (tmp / "chunks.json").write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
        if snapshot.bm25 is not None:
            snapshot.bm25.save(str(tmp / "bm25"), show_progress=False)
        state = {"generation": snapshot.generation, "format": CACHE_FORMAT}
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_snapshot(directory: Path, generation: str) -> Snapshot | None:
    """The cache if it is whole and of this generation; None sends the caller to Chroma."""
    try:
        state = json.loads((directory / "state.json").read_text())
        if state.get("generation") != generation or state.get("format") != CACHE_FORMAT:
            return None  # the collection changed, or the cache was built another way
        import bm25s

        with (directory / "papers.jsonl").open(encoding="utf-8") as f:
            papers = [Paper.from_dict(json.loads(line)) for line in f]
        chunks = json.loads((directory / "chunks.json").read_text(encoding="utf-8"))
        bm25 = None
        if (directory / "bm25").exists():
            bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
        return Snapshot(
            generation,
            {p.paper_id: p for p in papers},
            chunks["ids"],
            chunks["papers"],
            chunks["texts"],
            bm25,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # half-written by a process that died, or removed under us


# --- the index ----------------------------------------------------------------


class PaperIndex:
    """An opened index: the collection for dense search, the snapshot for the rest."""

    FRESHNESS_SECONDS = 2.0  # how often a long-running session asks whether others ingested

    def __init__(
        self, settings: Settings, client: ClientAPI, collection: Collection, snapshot: Snapshot
    ) -> None:
        self.settings = settings
        self.client = client
        self.collection = collection
        self.snapshot = snapshot
        self._checked = time.monotonic()

    @classmethod
    @translates_server_errors
    def open(cls, settings: Settings, embedder_name: str | None = None) -> PaperIndex:
        client = open_client(settings)
        collection = find_collection(client, settings.collection) or finish_rebuild(
            client, settings
        )
        if collection is None:
            raise IndexMissingError(
                f"no index at {where_am_i(settings)}",
                "build it with `python -m assistant ingest` (reads data/papers by default)",
            )
        check_model(collection, settings, embedder_name or settings.embedding_model)
        return cls(settings, client, collection, current_snapshot(settings, collection))

    @property
    def complete(self) -> bool:
        """False when the last ingest into this collection was cut short."""
        return bool((self.collection.metadata or {}).get("complete", True))

    def ensure_fresh(self) -> None:
        """Another process (or machine) may have ingested since we opened: follow it."""
        now = time.monotonic()
        if now - self._checked < self.FRESHNESS_SECONDS:
            return
        self._checked = now
        with server_errors(self.settings):
            collection = find_collection(self.client, self.settings.collection)
            if collection is None or generation_of(collection) == self.snapshot.generation:
                return
            self.collection = collection
            self.snapshot = current_snapshot(self.settings, collection)

    @property
    def papers(self) -> dict[str, Paper]:
        return self.snapshot.papers

    def dense(
        self, vector: np.ndarray, n: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Chunk ids with cosine similarity, best first."""
        total = len(self.snapshot.chunk_ids)
        if total == 0 or (allowed is not None and not allowed):
            return []
        where = {"paper_id": {"$in": sorted(allowed)}} if allowed is not None else None
        with server_errors(self.settings):
            result = self.collection.query(
                query_embeddings=[vector.tolist()],
                n_results=min(n, total),
                where=where,  # type: ignore[arg-type]
                include=["distances"],  # type: ignore[list-item]
            )
        return [
            (cid, 1.0 - dist)
            for cid, dist in zip(result["ids"][0], result["distances"][0], strict=True)  # type: ignore[index]
        ]

    def vectors(self, chunk_ids: list[str]) -> np.ndarray:
        """The stored embeddings of these chunks, in this order: nothing is re-embedded."""
        if not chunk_ids:
            return np.zeros((0, 0), np.float32)
        with server_errors(self.settings):
            result = self.collection.get(ids=chunk_ids, include=["embeddings"])  # type: ignore[list-item]
        by_id = dict(zip(result["ids"], result["embeddings"], strict=True))  # type: ignore[arg-type]
        return np.asarray([by_id[c] for c in chunk_ids], dtype=np.float32)

    def lexical(
        self, query: str, n: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Chunk ids with BM25 scores, best first; chunks without a query term are left out."""
        snap = self.snapshot
        if snap.bm25 is None:
            return []
        tokens = query_terms(query)
        vocab = snap.bm25.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        scores = snap.bm25.get_scores(tokens)
        if allowed is not None:
            mask = np.fromiter((p in allowed for p in snap.chunk_papers), bool, len(scores))
            scores = np.where(mask, scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:n]
        return [(snap.chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]


def current_snapshot(settings: Settings, collection: Collection) -> Snapshot:
    """The cached snapshot when it matches the collection, else one derived afresh."""
    snapshot = load_snapshot(cache_dir(settings), generation_of(collection))
    if snapshot is None:
        snapshot = snapshot_from_collection(collection)
        save_snapshot(snapshot, cache_dir(settings))
    return snapshot


def finish_rebuild(client: ClientAPI, settings: Settings) -> Collection | None:
    """A rebuild that finished but died before the rename is completed here."""
    pending = find_collection(client, settings.collection + REBUILD_SUFFIX)
    if pending is not None and (pending.metadata or {}).get("complete"):
        pending.modify(name=settings.collection)
        return pending
    return None


# --- ingest -------------------------------------------------------------------


@dataclass
class IngestReport:
    papers: int = 0
    added: int = 0
    reembedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept_despite_problems: int = 0
    chunks_embedded: int = 0
    tokens_embedded: int = 0
    seconds: float = 0.0
    collection: str = ""  # where the index lives: a folder or a Chroma server
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.tokens_embedded / self.seconds if self.seconds else 0.0
        parts = [
            f"{self.papers} papers in the index at {self.collection}",
            f"{self.added} added",
            f"{self.reembedded} re-embedded",
            f"{self.unchanged} unchanged",
            f"{self.deleted} deleted",
        ]
        if self.kept_despite_problems:
            parts.append(f"{self.kept_despite_problems} kept from files with problems")
        line = ", ".join(parts)
        notes = "".join(f"\nnote: {note}" for note in self.notes)
        return (
            f"{line}; {self.chunks_embedded} chunks ({self.tokens_embedded} tokens) embedded "
            f"in {self.seconds:.1f}s ({rate:,.0f} tokens/s){notes}"
        )


def in_scope(source: str, roots: list[Path]) -> bool:
    """Was this file among the paths just ingested? Only such files can have been removed."""
    path = Path(source).resolve()
    return any(path == root or root in path.parents for root in roots)


def stored_state(collection: Collection) -> dict[str, tuple[str, list[str], Paper | None]]:
    """paper_id -> (content hash, chunk ids, paper record) as the collection holds them."""
    state: dict[str, tuple[str, list[str], Paper | None]] = {}
    for row in read_collection(collection, ["metadatas"]):
        meta = row["metadatas"]
        content_hash, ids, paper = state.get(meta["paper_id"], (meta["content_hash"], [], None))
        ids.append(row["id"])
        if "paper" in meta:
            paper = Paper.from_dict(json.loads(meta["paper"]))
        state[meta["paper_id"]] = (content_hash, ids, paper)
    return state


def chunk_metadata(chunk: Chunk, paper: Paper) -> dict[str, Any]:
    return {
        "position": chunk.position,
        "content_hash": paper.content_hash(),
        "n_tokens": chunk.n_tokens,
        **paper_metadata(paper, chunk.position),
    }


def paper_metadata(paper: Paper, position: int) -> dict[str, Any]:
    """What a chunk says about its paper; sources can change without re-embedding."""
    meta: dict[str, Any] = {
        "paper_id": paper.paper_id,
        "title": paper.title,
        "sources": paper.sources or ["?"],  # Chroma takes no empty lists
    }
    if position == 0:
        meta["paper"] = json.dumps(paper.to_dict(), ensure_ascii=False)
    return meta


@translates_server_errors
def ingest(
    settings: Settings,
    read: CorpusRead,
    roots: list[Path],
    embedder: Embedder,
    rebuild: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Bring the collection in line with what was just read; embed only what changed.

    `progress` draws a terminal bar; `on_progress(papers embedded, papers to embed)`
    is called after each write, for a bar of the caller's own (the app's).

    Nothing is deleted before its replacement is written: a changed paper keeps
    its old chunks until the new ones are in, so Ctrl-C at any point leaves
    every paper findable, and the next ingest picks up where this one stopped.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    report = IngestReport()
    client = open_client(settings)
    collection = target_collection(client, settings, embedder.name, rebuild)
    report.collection = where_am_i(settings)
    plan = plan_ingest(collection, read, roots, report)
    batch_size = client.get_max_batch_size()

    changed = bool(plan.removed or plan.relabel or plan.embed)
    if changed:
        # Stamp the collection before touching it: a crash from here on leaves the
        # local caches visibly stale, and the index marked unfinished.
        mark(collection, complete=False)
    for ids in in_batches(plan.removed, batch_size):
        collection.delete(ids=ids)
    relabel(collection, plan.relabel, batch_size)

    count_tokens = minilm_token_counter() if plan.embed else None
    bar = tqdm(
        total=len(plan.embed),
        unit="paper",
        desc="Embedding",
        disable=not progress or not plan.embed,
    )
    batch: list[tuple[Chunk, Paper]] = []
    done = 0
    for i, paper in enumerate(plan.embed):
        assert count_tokens is not None
        batch += [(chunk, paper) for chunk in chunk_paper(paper, count_tokens)]
        if len(batch) >= EMBED_BATCH_CHUNKS or i == len(plan.embed) - 1:
            write_batch(collection, embedder, batch, plan.old_chunks, report)
            written = len({p.paper_id for _, p in batch})
            bar.update(written)
            bar.set_postfix(chunks=report.chunks_embedded)
            done += written
            if on_progress is not None:
                on_progress(done, len(plan.embed))
            batch = []
    bar.close()

    if changed or not (collection.metadata or {}).get("complete"):
        mark(collection, complete=True)
    if rebuild:
        swap_in(client, settings, collection, report)
    report.papers = len(current_snapshot(settings, collection).papers)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class IngestPlan:
    removed: list[str] = field(default_factory=list)  # chunk ids of papers that are gone
    relabel: dict[str, tuple[list[str], Paper]] = field(default_factory=dict)  # new sources only
    embed: list[Paper] = field(default_factory=list)  # new or changed papers
    old_chunks: dict[str, list[str]] = field(default_factory=dict)  # changed paper -> its old ids


def plan_ingest(
    collection: Collection, read: CorpusRead, roots: list[Path], report: IngestReport
) -> IngestPlan:
    """Compare what was read with what the collection holds, by content hash."""
    plan = IngestPlan()
    roots = [r.resolve() for r in roots]
    troubled_files = {p.file for p in read.problems}
    stored = stored_state(collection)
    incoming = {p.paper_id: p for p in read.papers}
    for paper_id, (content_hash, chunk_ids, old) in stored.items():
        kept_sources = [s for s in (old.sources if old else []) if not in_scope(s, roots)]
        paper = incoming.get(paper_id)
        if paper is None:
            if old is not None and kept_sources:
                # Still listed in a file this ingest wasn't asked about.
                if kept_sources != old.sources:
                    old.sources = kept_sources
                    plan.relabel[paper_id] = (chunk_ids, old)
                continue
            if old is not None and troubled_files & set(old.sources):
                # Its file has a bad line now; deleting would lose what the user didn't remove.
                report.kept_despite_problems += 1
                continue
            plan.removed += chunk_ids
            report.deleted += 1
            continue
        paper.sources = sorted(set(paper.sources) | set(kept_sources))
        if old is not None and content_hash == paper.content_hash():
            report.unchanged += 1
            if old.to_dict() != paper.to_dict():
                plan.relabel[paper_id] = (chunk_ids, paper)
        else:
            plan.old_chunks[paper_id] = chunk_ids
            plan.embed.append(paper)
            report.reembedded += 1
    report.added = sum(1 for pid in incoming if pid not in stored)
    plan.embed += [p for pid, p in incoming.items() if pid not in stored]
    return plan


def target_collection(
    client: ClientAPI, settings: Settings, embedder_name: str, rebuild: bool
) -> Collection:
    """The live collection, or for --rebuild a new one beside it (resumed if it was cut short)."""
    name = settings.collection + (REBUILD_SUFFIX if rebuild else "")
    collection = find_collection(client, name)
    model = (collection.metadata or {}).get("embedding_model") if collection else None
    if rebuild and collection is not None and model != embedder_name:
        client.delete_collection(name)  # an unfinished rebuild for another model: start over
        collection = None
    if collection is None:
        collection = client.create_collection(
            name,
            metadata={"embedding_model": embedder_name, "generation": uuid.uuid4().hex},
            configuration={"hnsw": {"space": "cosine"}},  # type: ignore[typeddict-item]
            embedding_function=None,  # never let Chroma fetch its default model
        )
    check_model(collection, settings, embedder_name)
    return collection


def swap_in(
    client: ClientAPI, settings: Settings, collection: Collection, report: IngestReport
) -> None:
    """Replace the live collection with the finished rebuild, saying what it no longer holds."""
    live = find_collection(client, settings.collection)
    if live is not None:
        kept = set(stored_state(collection))
        dropped = {pid: old for pid, (_, _, old) in stored_state(live).items() if pid not in kept}
        if dropped:
            files = sorted({s for old in dropped.values() if old for s in old.sources})
            report.notes.append(
                f"the rebuilt index leaves out {len(dropped)} papers that came from files not "
                f"given to this rebuild: {', '.join(files[:5])}{' …' if len(files) > 5 else ''}"
            )
        client.delete_collection(settings.collection)
    collection.modify(name=settings.collection)


def mark(collection: Collection, complete: bool) -> None:
    meta = dict(collection.metadata or {})
    meta.update(generation=uuid.uuid4().hex, complete=complete)
    collection.modify(metadata=meta)


def generation_of(collection: Collection) -> str:
    return (collection.metadata or {}).get("generation", "")


def in_batches(items: list[T], size: int) -> Iterator[list[T]]:
    """Chroma refuses calls larger than its max batch size (5,461 ids here)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def relabel(
    collection: Collection, changes: dict[str, tuple[list[str], Paper]], batch_size: int
) -> None:
    """New source files (or titles' spellings) for papers whose content didn't change."""
    ids = [cid for chunk_ids, _ in changes.values() for cid in chunk_ids]
    for part in in_batches(ids, batch_size):
        current = collection.get(ids=part, include=["metadatas"])
        metadatas = [
            {**meta, **paper_metadata(changes[meta["paper_id"]][1], meta["position"])}
            for meta in current["metadatas"]  # type: ignore[union-attr]
        ]
        collection.update(ids=current["ids"], metadatas=metadatas)  # type: ignore[arg-type]


def write_batch(
    collection: Collection,
    embedder: Embedder,
    batch: list[tuple[Chunk, Paper]],
    old_chunks: dict[str, list[str]],
    report: IngestReport,
) -> None:
    """One Chroma write of whole papers only: an interrupted ingest never leaves half a paper.

    A changed paper's new chunks overwrite its old ones (ids are paper#position),
    and only then are old chunks beyond its new length deleted.
    """
    vectors = embedder.embed_documents([chunk.text for chunk, _ in batch])
    new_ids = [chunk.chunk_id for chunk, _ in batch]
    collection.upsert(
        ids=new_ids,
        embeddings=vectors,  # type: ignore[arg-type]
        documents=[chunk.text for chunk, _ in batch],
        metadatas=[chunk_metadata(chunk, paper) for chunk, paper in batch],
    )
    written = set(new_ids)
    stale = [
        cid
        for pid in dict.fromkeys(paper.paper_id for _, paper in batch)
        for cid in old_chunks.get(pid, [])
        if cid not in written
    ]
    if stale:
        collection.delete(ids=stale)
    report.chunks_embedded += len(batch)
    report.tokens_embedded += sum(chunk.n_tokens for chunk, _ in batch)
