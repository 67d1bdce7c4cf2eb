"""Ingest and search at 640, 5,183, 25,000 and 100,000 abstracts, embedded and on a Chroma server.

    .venv/bin/python benchmarks/scale.py                       # 640 and 5,183, both stores
    .venv/bin/python benchmarks/scale.py --sizes 640,5183,25000 --stores embedded,server
    .venv/bin/python benchmarks/scale.py --sizes 100000          # about 75 minutes of embedding
    .venv/bin/python benchmarks/scale.py --sizes 640,5183 --search-only  # after a search change

The corpora: 640 is data/papers (639 papers once duplicates merge), 5,183 is SciFact
(../shared/benchmarks/scifact); a larger size is those 5,822 real abstracts padded with
abstracts recombined from their sentences (seeded; each made of as many sentences as a
real abstract, drawn from all of them), and the table says how many are recombined.

Every phase runs in a fresh process, so its peak RSS is its own:
- ingest: a new index, imports included; seconds, word pieces embedded per second, peak
  RSS; then a re-ingest of the unchanged corpus in the same process (nothing re-embedded);
- search: opening the index (its snapshot from the local cache), loading BM25 alone, warm
  hybrid search p50/p95 with exact dense search and through Chroma's HNSW, the first
  extractive `ask` and the warm `ask` p50, peak RSS (then, not counted in it, deriving the
  snapshot from the collection again: what every machine pays after another ingests);
- disk: the Chroma store and the local cache (snapshot, BM25, vectors, ONNX export).

Against a server (`chroma run` on localhost, one per size), ingest writes the vectors the
embedded build stored instead of embedding again (printed as "writes only"), unless
`--server-embeds`: embedding is the same work either way, and the server's cost is in
the writes and reads. Nothing here is extrapolated: a size not given is not printed.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before any heavy import: ingest seconds include them

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "scale"
SCIFACT = REPO.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"
SEED = REPO / "data" / "papers"
REAL_SIZES = {640: SEED, 5183: SCIFACT}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# --- corpora ---------------------------------------------------------------------------------


def real_papers() -> list[dict]:
    sys.path.insert(0, str(REPO))
    from assistant.corpus import read_corpus

    rows = [
        {"id": p.paper_id, "title": p.title, "abstract": p.abstract}
        for p in read_corpus([SEED]).papers
    ]
    for line in SCIFACT.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        rows.append({"id": f"scifact-{doc['_id']}", "title": doc["title"], "abstract": doc["text"]})
    return [r for r in rows if r["abstract"].strip()]


def corpus_for(size: int) -> tuple[Path, int]:
    """The corpus path for a size, and how many of its abstracts are recombined."""
    if size in REAL_SIZES:
        return REAL_SIZES[size], 0
    from assistant.text import split_sentences

    path = OUT / f"corpus-{size}.jsonl"
    real = real_papers()
    made = max(0, size - len(real))
    if not path.exists():
        rng = random.Random(size)
        split = [split_sentences(r["abstract"]) for r in real]
        pool = [s for sentences in split for s in sentences]
        rows = list(real[:size])
        for i in range(made):
            n = len(rng.choice(split)) or 1
            sentences = [rng.choice(pool) for _ in range(n)]
            title = " ".join(sentences[0].split()[:10]).rstrip(".")
            rows.append(
                {
                    "id": f"recombined-{i}",
                    "title": f"{title} ({i})",
                    "abstract": " ".join(sentences),
                }
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.rename(path)
    return path, made


# --- phases (each in its own process) ---------------------------------------------------------


def settings_for(size: int, store: str, port: int, **extra):
    sys.path.insert(0, str(REPO))
    from assistant.settings import Settings

    base = OUT / str(size)
    if store == "server":
        return Settings(
            index_dir=base / "server-local",
            chroma_host="127.0.0.1",
            chroma_port=port,
            collection="scale",
            llm="extractive",
            **extra,
        )
    return Settings(index_dir=base / "embedded", collection="scale", llm="extractive", **extra)


class StoredVectors:
    """The embedded build's vectors by chunk text: a server ingest then costs only writes."""

    def __init__(self, size: int) -> None:
        from assistant.index import PaperIndex

        index = PaperIndex.open(settings_for(size, "embedded", 0))
        snap = index.snapshot
        vectors = snap.vectors if snap.vectors is not None else index.vectors(snap.chunk_ids)
        self.by_text = dict(zip(snap.chunk_texts, vectors, strict=True))
        self.name = index.settings.embedding_model
        self.embedded = 0

    def embed_documents(self, texts: list[str]):
        import numpy as np

        self.embedded += len(texts)
        return np.asarray([self.by_text[t] for t in texts], np.float32)

    def embed_query(self, text: str):
        raise NotImplementedError("ingest never embeds a query")


def phase_ingest(size: int, store: str, port: int, reuse: bool) -> dict:
    from assistant.corpus import read_corpus
    from assistant.embeddings import make_embedder
    from assistant.ingest import ingest

    path, _ = corpus_for(size)
    settings = settings_for(size, store, port)
    embedder = StoredVectors(size) if reuse else make_embedder(settings)
    started = START if not reuse else time.perf_counter()
    report = ingest(settings, read_corpus([path]), [path], embedder, progress=False)
    seconds = time.perf_counter() - started
    rss = peak_rss_mb()
    again = time.perf_counter()
    second = ingest(settings, read_corpus([path]), [path], embedder, progress=False)
    return {
        "papers": report.papers,
        "chunks": report.chunks_embedded,
        "tokens": report.tokens_embedded,
        "seconds": seconds,
        "rss_mb": rss,
        "reingest_seconds": time.perf_counter() - again,
        "reembedded": second.chunks_embedded,
    }


def questions() -> tuple[list[str], list[str]]:
    datasets = REPO / "evals" / "datasets"
    rows = [
        json.loads(line)
        for name in ("retrieval.jsonl", "retrieval_short.jsonl")
        for line in (datasets / name).read_text().splitlines()
        if line.strip()
    ]
    answers = [json.loads(line) for line in (datasets / "answers.jsonl").read_text().splitlines()]
    return [r["question"] for r in rows], [a["question"] for a in answers if not a.get("turns")]


def latencies(fn, items: list[str]) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - started)
    return out


def phase_search(size: int, store: str, port: int, n_queries: int, n_asks: int) -> dict:
    import bm25s

    from assistant.answer import ask
    from assistant.components import Components
    from assistant.retrieval import search
    from assistant.snapshot import cache_dir, snapshot_from_collection
    from assistant.types import Conversation

    settings = settings_for(size, store, port)
    started = time.perf_counter()
    opened = Components(settings)
    index = opened.index
    open_seconds = time.perf_counter() - started
    bm25_seconds = []
    for mmap in (True, False):  # as the snapshot opens it, and read whole
        started = time.perf_counter()
        bm25s.BM25.load(str(cache_dir(settings) / "bm25"), mmap=mmap, show_progress=False)
        bm25_seconds.append(time.perf_counter() - started)
    queries, asks = questions()
    queries, asks = queries[:n_queries], asks[:n_asks]
    embedder = opened.embedder
    for q in queries[:5]:
        search(index, embedder, q)  # the ONNX session and the page cache warm up
    result = {
        "open_seconds": open_seconds,
        "bm25_load_seconds": bm25_seconds,
    }
    result["exact"] = index.snapshot.vectors is not None
    result["search"] = latencies(lambda q: search(index, embedder, q), queries)
    backend = opened.backend

    def one_ask(question: str) -> None:
        ask(question, Conversation(), index, embedder, backend, settings)

    result["first_ask"] = latencies(one_ask, asks[:1])[0]
    result["ask"] = latencies(one_ask, asks[1:])
    result["search_rss_mb"] = peak_rss_mb()
    vectors, index.snapshot.vectors = index.snapshot.vectors, None  # the same index, via HNSW
    for q in queries[:5]:
        search(index, embedder, q)
    result["search_hnsw"] = latencies(lambda q: search(index, embedder, q), queries)
    index.snapshot.vectors = vectors
    started = time.perf_counter()  # what each machine pays after another one ingests
    snapshot_from_collection(index.collection, settings)
    result["derive_seconds"] = time.perf_counter() - started
    return result


# --- the driver ------------------------------------------------------------------------------


def run_phase(args: list[str]) -> dict:
    command = [sys.executable, __file__, "--phase", *args]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_server(data: Path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_index_server import CHROMA, free_port, heartbeat

    port = free_port()
    data.parent.mkdir(parents=True, exist_ok=True)
    log = (data.parent / "server.log").open("wb")
    command = [str(CHROMA), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not heartbeat(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"`{' '.join(command)}` did not start; see {data.parent}/server.log")
        time.sleep(0.2)
    return process, port


def measure(size: int, store: str, args: argparse.Namespace) -> dict:
    import shutil

    _, made = corpus_for(size)
    base = OUT / str(size)
    reuse = store == "server" and not args.server_embeds and (base / "embedded").exists()
    if not args.search_only:
        for name in ("server-local", "server-data") if store == "server" else ("embedded",):
            shutil.rmtree(base / name, ignore_errors=True)
    server, port = start_server(base / "server-data") if store == "server" else (None, 0)
    try:
        common = ["--size", str(size), "--store", store, "--port", str(port)]
        ingested = (
            {}
            if args.search_only
            else run_phase(["ingest", *common, *(["--reuse"] if reuse else [])])
        )
        searched = run_phase(
            ["search", *common, "--queries", str(args.queries), "--asks", str(args.asks)]
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    chroma = base / ("server-data" if store == "server" else "embedded/chroma")
    local = base / ("server-local" if store == "server" else "embedded")
    return {
        "size": size,
        "recombined": made,
        **({} if args.search_only else {"writes_only": reuse}),
        **ingested,
        **searched,
        "chroma_mb": disk_mb(chroma),
        "local_mb": disk_mb(local) - (disk_mb(chroma) if store == "embedded" else 0.0),
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(rows: list[dict], store: str) -> list[str]:
    lines = [
        f"Store: {'a `chroma run` server on localhost' if store == 'server' else 'embedded'}",
        "| abstracts (recombined) | papers / chunks | ingest s | tokens/s | ingest peak RSS MB "
        "| re-ingest s | Chroma MB | local cache MB | open s | re-derive s "
        "| BM25 load s, mapped / read "
        "| search p50 / p95 ms, exact | HNSW | first ask s | ask p50 ms | search peak RSS MB |",
        "|" + "---|" * 16,
    ]
    for r in rows:
        ingest = f"{r['seconds']:.1f}" + (" (writes only)" if r["writes_only"] else "")
        rate = "" if r["writes_only"] else f"{r['tokens'] / r['seconds']:,.0f}"
        exact = (
            f"{pct(r['search'], 50) * 1000:.1f} / {pct(r['search'], 95) * 1000:.1f}"
            if r["exact"]
            else "(HNSW above the limit)"
        )
        hnsw = f"{pct(r['search_hnsw'], 50) * 1000:.1f} / {pct(r['search_hnsw'], 95) * 1000:.1f}"
        lines.append(
            f"| {r['size']:,} ({r['recombined']:,}) | {r['papers']:,} / {r['chunks']:,} "
            f"| {ingest} | {rate} | {r['rss_mb']:.0f} | {r['reingest_seconds']:.1f} "
            f"| {r['chroma_mb']:.0f} | {r['local_mb']:.0f} | {r['open_seconds']:.2f} "
            f"| {r['derive_seconds']:.1f} "
            f"| {r['bm25_load_seconds'][0]:.2f} / {r['bm25_load_seconds'][1]:.2f} "
            f"| {exact} | {hnsw} | {r['first_ask']:.2f} "
            f"| {statistics.median(r['ask']) * 1000:.0f} | {r['search_rss_mb']:.0f} |"
        )
    return lines


def growth(rows: list[dict]) -> list[str]:
    """How each cost grew from one size to the next, beside how the corpus grew."""
    lines = []
    for a, b in itertools.pairwise(rows):
        lines.append(
            f"{a['papers']:,} -> {b['papers']:,} papers (x{b['papers'] / a['papers']:.1f}): "
            f"ingest x{b['seconds'] / a['seconds']:.1f}, "
            f"re-ingest x{b['reingest_seconds'] / a['reingest_seconds']:.1f}, "
            f"open x{b['open_seconds'] / a['open_seconds']:.1f}, "
            f"search p50 x{pct(b['search'], 50) / pct(a['search'], 50):.1f} "
            f"(HNSW x{pct(b['search_hnsw'], 50) / pct(a['search_hnsw'], 50):.1f}), "
            f"ask p50 x{statistics.median(b['ask']) / statistics.median(a['ask']):.1f}, "
            f"local cache x{b['local_mb'] / a['local_mb']:.1f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640,5183", help="comma-separated corpus sizes")
    parser.add_argument("--stores", default="embedded,server", help="embedded, server or both")
    parser.add_argument("--queries", type=int, default=100, help="searches timed per size")
    parser.add_argument("--asks", type=int, default=30, help="extractive answers timed per size")
    parser.add_argument("--server-embeds", action="store_true", help="embed again for the server")
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="measure search again on the indexes already built (after a change to search); "
        "the ingest figures stay those of the last full run",
    )
    parser.add_argument("--phase", choices=["ingest", "search"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--reuse", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.phase == "ingest":
        print(json.dumps(phase_ingest(args.size, args.store, args.port, args.reuse)))
        return
    if args.phase == "search":
        print(json.dumps(phase_search(args.size, args.store, args.port, args.queries, args.asks)))
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for store in args.stores.split(","):
        for size in sizes:
            print(f"measuring {size:,} abstracts, {store} ...", file=sys.stderr, flush=True)
            key = f"{store}:{size}"
            results[key] = {**results.get(key, {}), **measure(size, store, args)}
            results_path.write_text(json.dumps(results, indent=1))
    import os

    print(f"Scale ({os.cpu_count()} cores; {args.queries} searches and {args.asks} asks per size)")
    for store in args.stores.split(","):  # every size measured so far, this run's or earlier
        rows = sorted(
            (r for k, r in results.items() if k.startswith(f"{store}:")), key=lambda r: r["size"]
        )
        print("\n".join(["", *table(rows, store), "", *growth(rows)]))


if __name__ == "__main__":
    main()
