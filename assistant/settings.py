"""Settings: the one place that reads the environment and `.env`.

Everything else receives a `Settings` instance as an argument, so a test can
build one with `Settings(index_dir=tmp_path)` and nothing leaks between runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import AssistantError

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `OPENAI_API_KEY=` in a .env template means no key
    )

    # Where things live.
    data_dir: Path = Field(Path("data/papers"), description="Default corpus for `ingest`.")
    index_dir: Path = Field(
        Path(".assistant/index"),
        validation_alias=AliasChoices("ASSISTANT_INDEX", "ASSISTANT_INDEX_DIR", "index_dir"),
        description="Embedded Chroma store, BM25 index and caches.",
    )
    collection: str = Field("papers", description="Chroma collection name.")

    # Chroma server mode: set CHROMA_HOST to share one index across machines.
    chroma_host: str | None = Field(
        None, validation_alias=AliasChoices("CHROMA_HOST", "chroma_host")
    )
    chroma_port: int = Field(8000, validation_alias=AliasChoices("CHROMA_PORT", "chroma_port"))

    # Embeddings.
    embeddings: Literal["local", "openai"] = Field(
        "local", description="`local` MiniLM (offline) or `openai`."
    )
    openai_embedding_model: str = "text-embedding-3-small"
    embed_batch_size: int = Field(16, ge=1, description="Chunks per embedding batch.")
    embed_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Local model precision; auto uses bf16 where the CPU has it natively."
    )

    # OpenAI-compatible endpoint, shared by embeddings and (later) chat.
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )

    # Retrieval.
    # 100,000: at 190,027 chunks exact search took 31 ms a query and HNSW 15 (scale.py).
    exact_search_max_chunks: int = Field(
        100_000,
        ge=0,
        description="Dense search is exact (numpy over the stored vectors, kept in the local "
        "cache) up to this many chunks, and Chroma's approximate HNSW above it (0: always HNSW).",
    )
    top_k: int = Field(10, ge=1, description="Papers returned by a search.")
    candidates: int = Field(
        200,
        ge=1,
        description="Chunks each retriever contributes before fusion (at least 4 x k). "
        "More means fewer papers that one retriever misses outright.",
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="How hybrid search combines dense and BM25: `convex`, a weighted mean of "
        "each retriever's scores divided by its best score, or `rrf`, reciprocal rank fusion.",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (fusion=rrf).")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense retriever in fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 retriever in fusion.")
    short_query_words: int = Field(
        12, ge=0, description="A query of at most this many words counts as short."
    )
    # Off (1.0) for now: on the tune half of evals/datasets/retrieval_short.jsonl 1.5 lifts
    # short-query recall@5 0.717 -> 0.739, but it costs a multi-paper test question a gold
    # paper and the eval gate one (answers:multi-014); benchmarks/retrieval_hard.py has both.
    short_dense_boost: float = Field(
        1.0, ge=0, description="A short query's dense weight is dense_weight times this."
    )
    prf_docs: int = Field(
        0,
        ge=0,
        description="Pseudo-relevance feedback for short queries: expand the BM25 query with "
        "terms of this many top fused papers (0: off).",
    )
    prf_terms: int = Field(10, ge=1, description="Expansion terms added by feedback.")
    prf_weight: float = Field(
        0.5, ge=0, le=1, description="The expansion terms' share of the BM25 query (RM3's 1 - λ)."
    )
    title_weight: float = Field(
        0.0, ge=0, description="Weight of a title-only BM25 ranking in fusion (0: off)."
    )
    # Off: on the tune half of retrieval_multi.jsonl it finds more gold papers (0.794 ->
    # 0.819 in the top 10) but not on the test half (0.756 either way), it makes two
    # answerable questions of benchmarks/answers.py abstain, and each part is one more search.
    split_questions: bool = Field(
        False,
        description="Retrieve each part of a multi-part question ('compare X with Y', "
        "'X, Y or Z') as well as the whole, and fuse.",
    )
    part_weight: float = Field(
        0.5, ge=0, description="The parts' combined weight against the whole question's 1."
    )
    # 3: no seed paper has more (the cap changes nothing there), while a record cut at
    # corpus.MAX_ABSTRACT_TOKENS has ~21 chunks that would otherwise crowd out others.
    max_chunks_per_paper: int = Field(
        3,
        ge=0,
        description="Chunks one paper may take of a retriever's candidates (0: no cap).",
    )

    # Answering.
    llm: Literal["auto", "openai", "extractive"] = Field(
        "auto",
        description="`auto`: the OpenAI-compatible model when OPENAI_API_KEY is set, "
        "else the offline extractive backend.",
    )
    model: str = Field("gpt-4o-mini", description="Chat model name (ASSISTANT_MODEL).")
    temperature: float = Field(0.0, ge=0, le=2)
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the model.")
    llm_max_retries: int = Field(2, ge=0, description="Retries on 429, 5xx and timeouts.")
    answer_k: int = Field(5, ge=1, description="Papers retrieved as sources for an answer.")
    max_question_tokens: int = Field(
        1000, ge=10, description="A longer question is refused, not sent (tiktoken tokens)."
    )
    context_tokens: int = Field(
        3000, ge=200, description="Token budget for the sources in the answer prompt (tiktoken)."
    )
    history_tokens: int = Field(
        1000, ge=0, description="Token budget for past turns when condensing a follow-up."
    )
    # Abstention, calibrated by `benchmarks/answers.py --calibrate` on evals/datasets/answers.jsonl.
    abstain_similarity: float = Field(
        0.30, description="Abstain below this cosine between the question and its closest chunk."
    )
    abstain_coverage: float = Field(
        0.49,
        description="Abstain below this IDF-weighted share of the question's terms found in "
        "the top three papers (a question only: a phrase needs just the similarity).",
    )
    # Summaries: which retrieved papers a brief uses is decided by the topic model
    # (assistant/relevance.py, fitted by `python -m training.topic_relevance`).
    summary_min_relevance: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The probability of being about the topic a paper needs to be in a brief "
        "(unset: the topic model's own threshold, fitted with it).",
    )
    summary_tokens: int = Field(
        6000, ge=500, description="Token budget for the per-paper notes in the summary prompt."
    )
    prompts_dir: Path | None = Field(None, description="A folder of candidate prompts to use.")

    @property
    def backend(self) -> str:
        if self.llm == "auto":
            return "openai" if self.openai_api_key is not None else "extractive"
        return self.llm

    @property
    def embedding_model(self) -> str:
        """The name recorded in the index, so a query with another model is refused."""
        if self.embeddings == "openai":
            return f"openai:{self.openai_embedding_model}"
        return f"local:{LOCAL_EMBEDDING_MODEL}"


def public_url(url: str | None) -> str | None:
    """The server address without user:password or query (some servers take a key there)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{env_name(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors())
        raise AssistantError(
            f"bad setting: {problems}", "fix the environment variable or the .env line"
        ) from None


def env_name(field: str) -> str:
    """A field's environment variable: its alias (CHROMA_PORT) or ASSISTANT_ plus its name."""
    return field if field.isupper() else f"ASSISTANT_{field.upper()}"
