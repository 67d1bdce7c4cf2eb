"""The Chroma *server* path: with CHROMA_HOST set, the same library code talks to `chroma run`.

The embedded store is what every other test exercises; a team sharing one index
runs a server instead, and there the collection is remote while the paper table
and BM25 index stay a local cache. These tests start a real server on localhost
so that split is checked end to end, not mocked.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_jsonl

from assistant.corpus import read_corpus
from assistant.errors import AssistantError
from assistant.index import PaperIndex
from assistant.ingest import ingest
from assistant.retrieval import search
from assistant.settings import Settings

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).parent / "chroma"
STARTUP_SECONDS = 60

PAPERS = [
    {
        "id": "protein",
        "title": "Predicting protein structure from amino acid sequences",
        "abstract": "We predict the three-dimensional folding of proteins from their amino "
        "acid sequence with an attention network trained on crystallography data.",
    },
    {
        "id": "weather",
        "title": "Neural weather forecasting at kilometre scale",
        "abstract": "A graph network forecasts rainfall, wind and temperature ten days ahead, "
        "beating numerical weather prediction on most atmospheric variables.",
    },
    {
        "id": "speech",
        "title": "Robust speech recognition for noisy call centres",
        "abstract": "We transcribe telephone audio with heavy background noise by training an "
        "acoustic model on augmented recordings of spoken conversations.",
    },
    {
        "id": "chess",
        "title": "Self-play reinforcement learning for board games",
        "abstract": "An agent learns chess and Go purely from games against itself, using "
        "Monte Carlo tree search guided by a value network.",
    },
    {
        "id": "legal",
        "title": "Summarizing court rulings for non-lawyers",
        "abstract": "We generate plain-language summaries of judicial decisions and measure "
        "how well readers without legal training understand the verdicts.",
    },
    {
        "id": "robots",
        "title": "Grasping unfamiliar objects with a robot arm",
        "abstract": "A manipulator picks up household items it has never seen, using tactile "
        "sensors and a camera to adjust its grip in real time.",
    },
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ChromaServer:
    host: str
    port: int

    def settings(self, index_dir: Path, collection: str) -> Settings:
        return Settings(
            chroma_host=self.host, chroma_port=self.port, index_dir=index_dir, collection=collection
        )


def heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One server for the module: startup is cheap, but each test uses its own collection."""
    if not CHROMA.exists():
        pytest.fail(f"no chroma executable at {CHROMA}; is chromadb installed in this venv?")
    home = tmp_path_factory.mktemp("chroma-server")
    log_path = home / "server.log"
    port = free_port()
    command = [str(CHROMA), "run", "--path", str(home / "data"), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    # Output goes to a file, not a pipe: a chatty server must never block on a full pipe.
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not heartbeat(port):
            if process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with {process.returncode}"
                    if process.poll() is not None
                    else f"no heartbeat within {STARTUP_SECONDS}s"
                )
                output = log_path.read_text(errors="replace")[-4000:]
                pytest.fail(f"`{' '.join(command)}` {state}; its output:\n{output}")
            time.sleep(0.2)
        yield ChromaServer("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_hybrid_search_through_the_server_ranks_the_right_paper_first(
    chroma_server: ChromaServer, tmp_path: Path, real_embedder
) -> None:
    """Dense scores come back from the server; if they were garbage, fusion would show it.

    The query shares no content word with the target, so BM25 alone cannot carry it:
    the right answer at rank 1 means the vectors made the round trip intact.
    """
    corpus = write_jsonl(tmp_path / "papers" / "papers.jsonl", PAPERS)
    settings = chroma_server.settings(tmp_path / "index", "server-search")
    read = read_corpus([corpus])
    report = ingest(settings, read, [corpus], real_embedder, progress=False)
    assert report.added == len(PAPERS)
    assert "127.0.0.1" in report.collection

    index = PaperIndex.open(settings, real_embedder.name)
    hits = search(index, real_embedder, "will it rain tomorrow", mode="hybrid")
    assert hits, "the server returned no results"
    assert hits[0].paper.paper_id == "weather", [h.paper.paper_id for h in hits]

    dense = search(index, real_embedder, "will it rain tomorrow", mode="dense")
    assert dense[0].paper.paper_id == "weather"
    assert dense[0].score > dense[-1].score


def test_the_server_is_the_source_of_truth_and_the_local_cache_is_disposable(
    chroma_server: ChromaServer, tmp_path: Path, fake_embedder
) -> None:
    """Another machine sharing the server starts with no local files at all; it must still work.

    And since the content hashes live in the server, re-ingesting there costs no embedding.
    """
    corpus = write_jsonl(tmp_path / "papers" / "papers.jsonl", PAPERS)
    settings = chroma_server.settings(tmp_path / "index", "server-cache")
    ingest(settings, read_corpus([corpus]), [corpus], fake_embedder, progress=False)
    assert fake_embedder.embedded > 0
    assert not (settings.index_dir / "chroma").exists(), "an embedded store was created locally"

    shutil.rmtree(settings.index_dir)
    index = PaperIndex.open(settings, fake_embedder.name)
    assert sorted(index.papers) == sorted(p["id"] for p in PAPERS)
    hits = search(index, fake_embedder, "robot arm grasping household objects")
    assert hits[0].paper.paper_id == "robots"
    assert (settings.index_dir / "cache" / settings.collection / "state.json").exists()

    embedded_before = fake_embedder.embedded
    shutil.rmtree(settings.index_dir)
    report = ingest(settings, read_corpus([corpus]), [corpus], fake_embedder, progress=False)
    assert fake_embedder.embedded == embedded_before, "an unchanged corpus was re-embedded"
    assert (report.added, report.reembedded, report.unchanged) == (0, 0, len(PAPERS))
    assert report.papers == len(PAPERS)


def test_a_server_that_is_not_running_is_a_clear_error(tmp_path: Path, fake_embedder) -> None:
    """A wrong CHROMA_PORT is a configuration mistake; the user needs the address, not a traceback.

    The port is held bound but not listening, so connections are refused and nothing
    else can start listening on it during the test.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        settings = ChromaServer("127.0.0.1", port).settings(tmp_path / "index", "papers")
        corpus = write_jsonl(tmp_path / "papers" / "papers.jsonl", PAPERS[:1])

        with pytest.raises(AssistantError, match=f"127.0.0.1:{port}") as opening:
            PaperIndex.open(settings, fake_embedder.name)
        assert opening.value.hint

        with pytest.raises(AssistantError, match=f"127.0.0.1:{port}"):
            ingest(settings, read_corpus([corpus]), [corpus], fake_embedder, progress=False)
    assert fake_embedder.embedded == 0
