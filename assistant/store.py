"""The Chroma client and the collection helpers every other index module uses.

Chroma is the source of truth: every chunk carries its paper's id and content
hash, and each paper's first chunk carries the whole paper record. The
collection's metadata records the embedding model that built it, a
`generation` that changes with every write (what the derived caches are
stamped with), and whether the last ingest into it finished.

The store is embedded by default, or a Chroma server shared by a team when
CHROMA_HOST is set; a server that goes away mid-session is an error to
explain, not a traceback.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import AssistantError, IndexMissingError, ModelMismatchError
from .settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

REBUILD_SUFFIX = "-rebuild"
T = TypeVar("T")


def open_client(settings: Settings, create: bool = True) -> ClientAPI:
    """Embedded by default; a Chroma server when CHROMA_HOST is set. With `create=False` (a
    command that only reads) an embedded store that isn't there is an error, and nothing is
    made at a mistyped path."""
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
    if not create and not (settings.index_dir / "chroma" / "chroma.sqlite3").is_file():
        raise IndexMissingError(
            f"no index at {where_am_i(settings)}",
            "build it with `python -m assistant ingest` (reads data/papers by default), "
            "or check the path given to --index / ASSISTANT_INDEX",
        )
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


def finish_rebuild(client: ClientAPI, settings: Settings) -> Collection | None:
    """A rebuild that finished but died before the rename is completed here."""
    pending = find_collection(client, settings.collection + REBUILD_SUFFIX)
    if pending is not None and (pending.metadata or {}).get("complete"):
        pending.modify(name=settings.collection)
        return pending
    return None
