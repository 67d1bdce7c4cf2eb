"""The values passed between pipeline stages."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass
class Paper:
    """One paper, however many files and titles it was read from."""

    paper_id: str
    title: str
    abstract: str
    sources: list[str] = field(default_factory=list)  # files it was read from
    aliases: list[str] = field(default_factory=list)  # other titles it was listed under
    authors: list[str] = field(default_factory=list)
    date: str | None = None  # ISO date when the source gives one
    url: str | None = None
    categories: list[str] = field(default_factory=list)

    def content_hash(self) -> str:
        """Hash of what gets embedded; sources are left out so moving a file re-embeds nothing."""
        payload = json.dumps([self.title, self.aliases, self.abstract], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Paper:
        return cls(**data)


@dataclass(frozen=True)
class Chunk:
    """A token-bounded piece of one paper, with the title prepended so it stands alone."""

    chunk_id: str
    paper_id: str
    position: int
    text: str
    n_tokens: int


@dataclass
class Hit:
    """A paper returned by a search, with the chunk that matched best as its snippet."""

    rank: int
    paper: Paper
    score: float
    snippet: str
    chunk_id: str

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "paper_id": self.paper.paper_id,
            "title": self.paper.title,
            "score": round(self.score, 6),
            "snippet": self.snippet,
        }
