"""What every benchmark script does first: bring an index up to date and open it."""

from __future__ import annotations

import sys
from pathlib import Path

from assistant.components import Components
from assistant.corpus import read_corpus
from assistant.embeddings import Embedder
from assistant.ingest import ingest
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "data" / "papers"
SEED_INDEX = REPO / "benchmarks" / "out" / "seed-index"


def open_index(corpus: Path, settings: Settings, embedder: Embedder | None = None) -> Components:
    """Ingest the corpus (incremental: a second run embeds nothing); the index and embedder
    come from the returned Components, as the CLI and the app get theirs."""
    components = Components(settings, embedder=embedder)
    read = read_corpus([corpus])
    if read.problems:
        print(f"{len(read.problems)} corpus problems, e.g. {read.problems[0]}", file=sys.stderr)
    report = ingest(settings, read, [corpus], components.embedder, progress=True)
    print(f"index: {report.summary()}", file=sys.stderr)
    return components
