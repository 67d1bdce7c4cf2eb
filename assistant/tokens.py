"""Token counting with tiktoken, offline: its encodings ship inside llama-index-core."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken


def tiktoken_cache_dir() -> Path:
    spec = importlib.util.find_spec("llama_index.core")
    assert spec and spec.submodule_search_locations, "llama-index-core is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "_static" / "tiktoken_cache"


def use_offline_tiktoken() -> None:
    """Must run before any encoding loads, or tiktoken tries to download it."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))


@lru_cache(maxsize=8)
def encoding_for(model: str) -> tiktoken.Encoding:
    use_offline_tiktoken()
    import tiktoken

    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        # Local models (llama, qwen, …) have their own tokenizers; o200k_base is a
        # close enough estimate for budgeting.
        return tiktoken.get_encoding("o200k_base")


def count_tokens(text: str, model: str) -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))
