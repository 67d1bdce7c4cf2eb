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
from typing import TYPE_CHECKING

from .errors import AssistantError
from .tokens import use_offline_tiktoken
from .types import Chunk, Paper

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_MAX_TOKENS = 256  # MiniLM's max_seq_length, [CLS] and [SEP] included
SPECIAL_TOKENS = 2
MAX_HEADER_TOKENS = 64  # the title copy in each chunk; the rest of the window is the abstract
MIN_BODY_TOKENS = 48

TokenCounter = Callable[[str], int]


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    """The model's own tokenizer (the Rust `tokenizers` package: no torch needed)."""
    from .embeddings import minilm_tokenizer

    return minilm_tokenizer()


@lru_cache(maxsize=1)
def minilm_token_counter() -> TokenCounter:
    """Counts with the model's own tokenizer. Remembered: the sentence splitter counts the
    same sentences and joins again as it packs them, and a title once per chunk."""
    tokenizer = _tokenizer()

    @lru_cache(maxsize=16384)
    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def truncate_to_tokens(text: str, max_tokens: int, max_chars: int) -> tuple[str, str] | None:
    """The text cut at a space to at most `max_tokens` MiniLM word pieces and `max_chars`
    characters, with the limit it was over ("4,000 tokens"); None when it fits both.

    Only the first `max_chars` characters are ever tokenised, so a 5 MB record costs
    what 100 kB does. A word piece spans at least one character, so a text no longer
    than `max_tokens` characters fits without being tokenised at all.
    """
    if len(text) <= max_tokens:
        return None
    window = text[:max_chars]
    encoding = _tokenizer().encode(window, add_special_tokens=False)
    if len(encoding.ids) > max_tokens:
        window = window[: encoding.offsets[max_tokens][0]]  # where the first piece over starts
        limit = f"{max_tokens:,} tokens"
    elif len(text) > max_chars:  # few pieces in many characters: one endless "word"
        limit = f"{max_chars:,} characters"
    else:
        return None
    space = window.rfind(" ")  # don't end inside a word
    return (window[:space] if space > 0 else window).rstrip(), limit


def chunk_paper(
    paper: Paper, count_tokens: TokenCounter, max_tokens: int = MODEL_MAX_TOKENS
) -> list[Chunk]:
    """Split the abstract into as few, evenly sized sentence groups as fit under the limit."""
    header = chunk_header(paper, count_tokens)
    budget = max_tokens - SPECIAL_TOKENS - count_tokens(header + "\n")
    body_tokens = count_tokens(paper.abstract)
    pieces = max(1, math.ceil(body_tokens / budget))
    # Aim for even pieces, so the last chunk isn't one stray sentence.
    target = min(budget, math.ceil(body_tokens / pieces) + 24)
    while True:
        bodies = (
            split_body(paper.abstract, target, count_tokens)
            if body_tokens > budget
            else [paper.abstract]
        )
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


def split_body(abstract: str, target: int, count_tokens: TokenCounter) -> list[str]:
    """Whole sentences packed into pieces of about `target` word pieces (llama-index's
    splitter, imported only for an abstract that needs it: most fit in one chunk)."""
    use_offline_tiktoken()  # llama-index may load a tiktoken encoding on import
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=target, chunk_overlap=0, tokenizer=_encode(count_tokens))
    return splitter.split_text(abstract)


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
