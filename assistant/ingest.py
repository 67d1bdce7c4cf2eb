"""Ingest: bring the collection in line with a corpus just read, embedding only what changed.

Ingest is incremental and resumable: a paper's chunks are added in one call,
so after Ctrl-C the collection holds whole papers only, and the next ingest
skips every paper whose content hash is already there.

Planning only compares: `plan_ingest` returns what to delete, relabel and
embed, with its counts, and leaves the papers it was given as they were read;
`ingest` carries the plan out and reports it.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunking import chunk_paper, minilm_token_counter
from .corpus import CorpusRead
from .embeddings import BULK_BATCH, Embedder
from .settings import Settings
from .snapshot import current_snapshot
from .store import (
    REBUILD_SUFFIX,
    check_model,
    find_collection,
    in_batches,
    mark,
    open_client,
    read_collection,
    translates_server_errors,
    where_am_i,
)
from .types import Chunk, Paper

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

# Chunks per Chroma write: one progress step, one resumable unit, and large enough
# for the embedder's bulk (bf16) path.
EMBED_BATCH_CHUNKS = BULK_BATCH


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
    started = time.perf_counter()
    with writer_lock(settings, progress):
        return write_ingest(
            settings, read, roots, embedder, rebuild, progress, on_progress, started
        )


def write_ingest(
    settings: Settings,
    read: CorpusRead,
    roots: list[Path],
    embedder: Embedder,
    rebuild: bool,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
    started: float,
) -> IngestReport:
    """The ingest itself, under the writer lock."""
    client = open_client(settings)
    collection = target_collection(client, settings, embedder.name, rebuild)
    plan = plan_ingest(collection, read, roots)
    report = IngestReport(
        added=plan.added,
        reembedded=plan.reembedded,
        unchanged=plan.unchanged,
        deleted=plan.deleted,
        kept_despite_problems=plan.kept_despite_problems,
        collection=where_am_i(settings),
    )
    batch_size = client.get_max_batch_size()

    changed = bool(plan.removed or plan.relabel or plan.embed)
    if changed:
        # Stamp the collection before touching it: a crash from here on leaves the
        # local caches visibly stale, and the index marked unfinished.
        mark(collection, complete=False)
    for ids in in_batches(plan.removed, batch_size):
        collection.delete(ids=ids)
    relabel(collection, plan.relabel, batch_size)
    embed_papers(collection, embedder, plan, report, progress, on_progress)

    if changed or not (collection.metadata or {}).get("complete"):
        mark(collection, complete=True)
    if rebuild:
        swap_in(client, settings, collection, report)
    report.papers = len(current_snapshot(settings, collection).papers)
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def writer_lock(settings: Settings, progress: bool) -> Iterator[None]:
    """One ingest at a time into an embedded index: a second one waits, then plans against
    what the first wrote, so the work isn't done twice. (A Chroma server is shared across
    machines, where a local lock can't reach; see the README.)"""
    if settings.chroma_host:
        yield
        return
    import fcntl

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.index_dir / "ingest.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(
                    f"another ingest into {settings.index_dir} is running; waiting for it "
                    "to finish (what it writes won't be embedded again)",
                    file=sys.stderr,
                    flush=True,
                )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embed_papers(
    collection: Collection,
    embedder: Embedder,
    plan: IngestPlan,
    report: IngestReport,
    progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Embed and write the plan's papers, whole papers per write, counting into the report."""
    from tqdm import tqdm

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


@dataclass
class IngestPlan:
    """What an ingest will do, and how many papers each decision concerns."""

    removed: list[str] = field(default_factory=list)  # chunk ids of papers that are gone
    relabel: dict[str, tuple[list[str], Paper]] = field(default_factory=dict)  # new sources only
    embed: list[Paper] = field(default_factory=list)  # new or changed papers
    old_chunks: dict[str, list[str]] = field(default_factory=dict)  # changed paper -> its old ids
    added: int = 0
    reembedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept_despite_problems: int = 0


def plan_ingest(collection: Collection, read: CorpusRead, roots: list[Path]) -> IngestPlan:
    """Compare what was read with what the collection holds, by content hash.

    Nothing given is changed: a paper whose sources change is a new Paper in the plan.
    """
    plan = IngestPlan()
    roots = [r.resolve() for r in roots]
    troubled_files = {p.file for p in read.problems if not p.kept}  # a record was skipped
    stored = stored_state(collection)
    incoming = {p.paper_id: p for p in read.papers}
    for paper_id, (content_hash, chunk_ids, old) in stored.items():
        kept_sources = [s for s in (old.sources if old else []) if not in_scope(s, roots)]
        paper = incoming.get(paper_id)
        if paper is None:
            if old is not None and kept_sources:
                # Still listed in a file this ingest wasn't asked about.
                if kept_sources != old.sources:
                    plan.relabel[paper_id] = (chunk_ids, replace(old, sources=kept_sources))
                continue
            if old is not None and troubled_files & set(old.sources):
                # Its file has a bad line now; deleting would lose what the user didn't remove.
                plan.kept_despite_problems += 1
                continue
            plan.removed += chunk_ids
            plan.deleted += 1
            continue
        paper = replace(paper, sources=sorted(set(paper.sources) | set(kept_sources)))
        if old is not None and content_hash == paper.content_hash():
            plan.unchanged += 1
            if old.to_dict() != paper.to_dict():
                plan.relabel[paper_id] = (chunk_ids, paper)
        else:
            plan.old_chunks[paper_id] = chunk_ids
            plan.embed.append(paper)
            plan.reembedded += 1
    plan.added = sum(1 for pid in incoming if pid not in stored)
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
