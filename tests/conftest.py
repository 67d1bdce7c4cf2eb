"""Shared fixtures: temporary homes, a fast fake embedder, and the real one when quality matters."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from assistant.settings import Settings

# The scripted OpenAI-compatible server's fixture (`openai_server`), for every test module.
pytest_plugins = ["openai_server"]

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "data" / "papers"

# Six short, clearly distinct papers: for tests where answer quality is not what is tested.
SMALL_PAPERS = [
    (
        "attn",
        "Sparse attention for long documents",
        "Sparse attention lets transformers read long documents. Attending to a few blocks "
        "per token cuts the quadratic cost of attention over long context windows.",
    ),
    (
        "quant",
        "Quantizing language models to four bits",
        "We quantize the weights of language models to four-bit integers. Quantization "
        "saves memory and speeds up inference with little loss in accuracy.",
    ),
    (
        "speech",
        "Speech recognition for low-resource languages",
        "We transcribe speech audio in low-resource languages. Self-supervised pretraining "
        "on untranscribed recordings lowers the word error rate.",
    ),
    (
        "protein",
        "Protein folding with transformers",
        "We predict protein structure from amino acid sequences. A transformer trained on "
        "crystal structures folds proteins accurately.",
    ),
    (
        "reward",
        "Reward models for dialogue agents",
        "We train reward models from human preference comparisons of dialogue replies. "
        "The reward model then guides reinforcement learning.",
    ),
    (
        "cache",
        "Compressing the key-value cache",
        "We compress the key-value cache during decoding. Evicting stale cache entries keeps "
        "memory bounded for long generations.",
    ),
]


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No keys, no .env, no index of the developer's: what every test runs in (and a
    module-scoped fixture, which runs before this file's autouse fixture, calls itself)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHROMA_HOST", "CHROMA_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(home)  # so a stray .env in the repo is never read


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's keys, .env or index."""
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "papers")


class FakeEmbedder:
    """Bag-of-words hashed into 64 dimensions: fast, deterministic, similar texts stay close."""

    name = "local:all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes, so tests can see what was (re-)embedded

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(64, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return np.stack([self.vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.vector(text)

    @property
    def embedded(self) -> int:
        return sum(self.calls)


def components_with(embedder: object):
    """What `cli.main(make_components=...)` takes: the real wiring, with this embedder."""
    from assistant.components import Components

    return lambda settings: Components(settings, embedder=embedder)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from assistant.embeddings import LocalEmbedder

    return LocalEmbedder(Settings())


WORD = re.compile(r"[a-z0-9-]{4,}")


class WordJudge:
    """The one fake grounding judge, for tests of what is decided from verdicts (the eval's
    scores, the chat page's flags): supported when the evidence holds at least 80% of the
    claim's words of 4+ letters, a rule easy to predict."""

    name = "words"

    def __init__(self) -> None:
        self.pairs = 0

    def describe(self) -> dict:
        return {"judge": "words", "threshold": 0.8}

    def judge_many(self, pairs: list[tuple[str, str]]) -> list:
        from assistant.grounding import Verdict

        self.pairs += len(pairs)
        verdicts = []
        for claim, evidence in pairs:
            words = set(WORD.findall(claim.lower()))
            found = set(WORD.findall(evidence.lower()))
            score = len(words & found) / len(words) if words else 0.0
            verdicts.append(Verdict(score, "supported" if score >= 0.8 else "not_supported"))
        return verdicts


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_papers(path: Path, papers: list[tuple[str, str, str]]) -> Path:
    """(id, title, abstract) triples as a JSON Lines corpus."""
    return write_jsonl(path, [{"id": i, "title": t, "abstract": a} for i, t, a in papers])


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder):
    """The real seed corpus in a real Chroma with the real model, built once per run (~25 s)."""
    from assistant.corpus import read_corpus
    from assistant.index import PaperIndex
    from assistant.ingest import ingest

    settings = Settings(index_dir=tmp_path_factory.mktemp("seed") / "index", llm="extractive")
    ingest(settings, read_corpus([SEED_CORPUS]), [SEED_CORPUS], real_embedder, progress=False)
    return PaperIndex.open(settings)


# Six papers in two files (a.jsonl, b.jsonl): for the index and ingest tests.
TOPICS = [
    ("Sparse attention for long documents", "attention sparsity long context windows"),
    ("Quantizing language models to four bits", "quantization integer weights memory"),
    ("Speech recognition for low-resource languages", "speech audio transcription languages"),
    ("Protein folding with transformers", "protein structure biology folding"),
    ("Reward models for dialogue agents", "reward preference dialogue reinforcement"),
    ("Compressing the key-value cache", "cache compression eviction decoding"),
]


def paper_rows(prefix: str, topics=TOPICS) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "title": title,
            "abstract": f"This paper studies {words}. We propose a method for {words}. "
            f"Experiments on {words} show clear gains over strong baselines.",
        }
        for i, (title, words) in enumerate(topics)
    ]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "papers"
    write_jsonl(folder / "a.jsonl", paper_rows("a", TOPICS[:3]))
    write_jsonl(folder / "b.jsonl", paper_rows("b", TOPICS[3:]))
    return folder


def run_ingest(settings: Settings, paths: list[Path], embedder: FakeEmbedder, **kw):
    from assistant.corpus import read_corpus
    from assistant.ingest import ingest

    return ingest(settings, read_corpus(paths), paths, embedder, progress=False, **kw)
