"""The values passed between pipeline stages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
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


@dataclass
class Source:
    """A retrieved paper as the answer sees it: numbered once per conversation."""

    marker: int
    paper: Paper
    score: float
    snippet: str

    def to_json(self) -> dict:
        return {
            "marker": self.marker,
            "paper_id": self.paper.paper_id,
            "title": self.paper.title,
            "score": round(self.score, 6),
        }


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None: a model whose price we don't know
    estimated: bool = False  # counted here with tiktoken: the server reported no usage

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.estimated = self.estimated or other.estimated
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd

    def to_json(self) -> dict:
        cost = None if self.cost_usd is None else round(self.cost_usd, 6)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": cost,
            "estimated": self.estimated,
        }


@dataclass
class Generation:
    """A reply's text deltas as they arrive; `text` and `usage` are complete once iterated."""

    deltas: Iterator[str]
    usage: Usage = field(default_factory=Usage)
    text: str = ""
    reasoning: str = ""  # what a reasoning model thought first: shown apart, never cited
    finish_reason: str | None = None  # "length": the model's output limit cut the answer

    def __iter__(self) -> Iterator[str]:
        for delta in self.deltas:
            self.text += delta
            yield delta

    def finish(self) -> str:
        for _ in self:
            pass
        return self.text


@dataclass
class Turn:
    question: str
    standalone: str
    answer: str
    sources: list[Source]
    cited: list[int]  # markers the answer kept, in order of first use


@dataclass
class Conversation:
    """The turns so far, and the number each paper got: a paper keeps it for the whole chat."""

    turns: list[Turn] = field(default_factory=list)
    markers: dict[str, int] = field(default_factory=dict)  # paper_id -> n
    papers: dict[int, Paper] = field(default_factory=dict)  # n -> paper

    def marker_for(self, paper: Paper) -> int:
        if paper.paper_id not in self.markers:
            n = len(self.markers) + 1
            self.markers[paper.paper_id] = n
            self.papers[n] = paper
        return self.markers[paper.paper_id]
