"""The seed corpus and its index, for the training commands that search it.

The index is the benchmarks' own (`benchmarks/out/seed-index`), brought up to date
incrementally, so a machine that ran a benchmark embeds nothing again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.components import Components
    from assistant.corpus import CorpusRead

REPO = Path(__file__).resolve().parents[1]
SEED_PAPERS = REPO / "data" / "papers"
SEED_INDEX = REPO / "benchmarks" / "out" / "seed-index"


def seed_index() -> tuple[Components, CorpusRead]:
    """The index's components, and the corpus as read (one read serves both)."""
    from assistant.components import Components
    from assistant.corpus import read_corpus
    from assistant.ingest import ingest
    from assistant.settings import Settings

    settings = Settings(index_dir=SEED_INDEX)
    components = Components(settings)
    read = read_corpus([SEED_PAPERS])
    ingest(settings, read, [SEED_PAPERS], components.embedder, progress=False)
    return components, read
