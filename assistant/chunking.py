"""Paper -> Chunks, sentence-aware and sized in the embedding model's word pieces.

MiniLM sees at most 256 word pieces and sentence-transformers silently cuts the
rest, so a whole abstract (median ~300 pieces in the seed corpus) would lose its
last sentences. Each chunk here is the title plus whole sentences, and is
checked against the limit rather than trusted to fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from .errors import AssistantError
from .tokens import use_offline_tiktoken
from .types import Chunk, Paper

MODEL_MAX_TOKENS = 256  # MiniLM's max_seq_length, [CLS] and [SEP] included
SPECIAL_TOKENS = 2
MAX_HEADER_TOKENS = 64  # the title copy in each chunk; the rest of the window is the abstract
MIN_BODY_TOKENS = 48

TokenCounter = Callable[[str], int]


@lru_cache(maxsize=1)
def minilm_token_counter() -> TokenCounter:
    """Counts with the model's own tokenizer (the Rust `tokenizers` package: no torch needed)."""
    from .embeddings import minilm_tokenizer

    tokenizer = minilm_tokenizer()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def chunk_paper(
    paper: Paper, count_tokens: TokenCounter, max_tokens: int = MODEL_MAX_TOKENS
) -> list[Chunk]:
    """Split the abstract into as few, evenly sized sentence groups as fit under the limit."""
    use_offline_tiktoken()  # llama-index may load a tiktoken encoding on import
    from llama_index.core.node_parser import SentenceSplitter

    header = chunk_header(paper, count_tokens)
    budget = max_tokens - SPECIAL_TOKENS - count_tokens(header + "\n")
    body_tokens = count_tokens(paper.abstract)
    pieces = max(1, math.ceil(body_tokens / budget))
    # Aim for even pieces, so the last chunk isn't one stray sentence.
    target = min(budget, math.ceil(body_tokens / pieces) + 24)
    while True:
        splitter = SentenceSplitter(
            chunk_size=target, chunk_overlap=0, tokenizer=_encode(count_tokens)
        )
        bodies = splitter.split_text(paper.abstract) if body_tokens > budget else [paper.abstract]
        texts = [f"{header}\n{body}" for body in bodies]
        sizes = [count_tokens(t) + SPECIAL_TOKENS for t in texts]
        if max(sizes) <= max_tokens:
            break
        # The splitter joins sentences with spaces, which can re-tokenize a little longer.
        target -= 8
        if target < MIN_BODY_TOKENS:
            raise AssistantError(
                f"paper {paper.paper_id}: could not chunk under {max_tokens} tokens"
            )
    return [
        Chunk(f"{paper.paper_id}#{i}", paper.paper_id, i, text, size)
        for i, (text, size) in enumerate(zip(texts, sizes, strict=True))
    ]


def chunk_header(paper: Paper, count_tokens: TokenCounter) -> str:
    """The title (and any other titles) that every chunk repeats, at most MAX_HEADER_TOKENS.

    A very long title is cut here, in the copy each chunk carries, and nowhere
    else: the paper keeps its full title, and the abstract is never cut.
    """
    header = (
        paper.title if not paper.aliases else f"{paper.title} (also: {'; '.join(paper.aliases)})"
    )
    words = header.split()
    while count_tokens(header) > MAX_HEADER_TOKENS and len(words) > 1:
        words = words[: max(1, len(words) * 3 // 4)]
        header = " ".join(words) + " …"
    return header


def _encode(count_tokens: TokenCounter) -> Callable[[str], list[int]]:
    """SentenceSplitter wants a tokenizer returning a list; only its length matters."""
    return lambda text: [0] * count_tokens(text)
