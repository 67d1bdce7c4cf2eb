"""Corpus files -> Papers.

One reader per format, picked from the file's extension: daily-papers listings
(.txt), JSON Lines and CSV. Readers never raise on bad records: they return
`Problem`s naming the file, line and field, so one bad line costs one paper and
not the whole ingest. `read_corpus` then merges records into deduplicated
papers with stable ids.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AssistantError, Problem
from .types import Paper

LISTING_SUFFIXES = {".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv"}

# Page chrome of the Hugging Face daily-papers listing; none of it is a paper.
CHROME = re.compile(
    r"^(new|subscribe|byak\b.*|get trending papers in your email inbox.*)$", re.IGNORECASE
)
DATE_HEADER = re.compile(
    r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$", re.IGNORECASE
)
MAX_TITLE_CHARS = 500
# One record's abstract is cut to this many MiniLM word pieces (and characters), so
# that a pasted book or a broken export costs seconds, not hours, and can't fill the
# index with one paper's chunks. Generous on purpose: the longest seed abstract has
# 436 word pieces and the longest SciFact abstract 1,921, so no real abstract comes
# near it; 4,000 word pieces is about 3,000 words and 21 chunks (a second to embed).
MAX_ABSTRACT_TOKENS = 4000
MAX_ABSTRACT_CHARS = 25 * MAX_ABSTRACT_TOKENS  # ~5x the characters 4,000 pieces take in prose
# Two listings' abstracts this alike (word 5-shingle Jaccard) are revisions of one
# paper. On the seed corpus the renamed paper scores 0.61 and the next pair 0.08.
NEAR_DUPLICATE_JACCARD = 0.4


@dataclass
class Record:
    """One paper as one file states it, before merging."""

    title: str
    abstract: str
    file: str
    line: int
    id: str | None = None
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    url: str | None = None
    categories: list[str] = field(default_factory=list)


@dataclass
class CorpusRead:
    papers: list[Paper]
    problems: list[Problem]
    files: list[str]
    records: int


def read_corpus(paths: Iterable[Path]) -> CorpusRead:
    """Read every file under `paths` and merge the records into papers."""
    files = list_files(paths)
    records: list[Record] = []
    problems: list[Problem] = []
    for path in files:
        file_records, file_problems = read_file(path)
        records += file_records
        problems += file_problems
    return CorpusRead(
        merge_records(records), problems, [source_path(p) for p in files], len(records)
    )


def list_files(paths: Iterable[Path]) -> list[Path]:
    """Files under the paths, hidden ones (.git, .ipynb_checkpoints, …) and READMEs left out."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.stem.upper() not in {"README", "LICENSE", "LICENCE"}
            )
        elif path.is_file():
            files.append(path)
        else:
            raise AssistantError(f"{path}: no such file or directory", "check the path")
    return files


def source_path(path: Path) -> str:
    """Absolute, so that an ingest from another working directory means the same file."""
    return str(path.resolve())


def display_path(source: str) -> str:
    """Shorter for people: relative to the working directory when the file is below it."""
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source


def read_file(path: Path) -> tuple[list[Record], list[Problem]]:
    """Pick the reader from the extension; an unreadable file is one Problem, not a crash."""
    name = source_path(path)
    raw = path.read_bytes()
    if not raw.strip():
        return [], [Problem(name, None, "file", "empty file")]
    if b"\x00" in raw[:8192]:
        return [], [Problem(name, None, "file", "binary file, not text")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [Problem(name, line, "file", "not UTF-8 text (binary file?)")]
    text = strip_control(text)
    suffix = path.suffix.lower()
    if suffix in LISTING_SUFFIXES:
        records, problems = read_listing(text, name)
    elif suffix in JSONL_SUFFIXES:
        records, problems = read_jsonl(text, name)
    elif suffix in CSV_SUFFIXES:
        records, problems = read_csv(text, name)
    else:
        message = f"unknown format {suffix!r}: expected .txt listing, .jsonl or .csv"
        return [], [Problem(name, None, "file", message)]
    return records, problems + cap_abstracts(records)


def cap_abstracts(records: list[Record]) -> list[Problem]:
    """Cut every abstract over MAX_ABSTRACT_TOKENS; each cut is a Problem, the record is kept."""
    from .chunking import truncate_to_tokens

    problems = []
    for record in records:
        cut = truncate_to_tokens(record.abstract, MAX_ABSTRACT_TOKENS, MAX_ABSTRACT_CHARS)
        if cut is not None:
            record.abstract, limit = cut
            message = f"longer than {limit}, truncated"
            problems.append(Problem(record.file, record.line, "abstract", message, kept=True))
    return problems


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """Escape sequences in a title could rewrite a terminal (OSC 8 links, screen clears)."""
    return CONTROL.sub("", text.replace("\r\n", "\n"))


def looks_like_abstract(line: str) -> bool:
    """Abstracts are long, or at least read as sentences: a break inside and a full stop at the end.

    Titles may hold a question mark ("…an induction head? A mechanistic study…"),
    but none ends with a full stop. On the seed corpus the longest title has 213
    characters and the shortest abstract 265.
    """
    if len(line) >= 250:
        return True
    return line.endswith(".") and re.search(r"[.!?]\s+[A-Z(]", line) is not None


def read_listing(text: str, name: str) -> tuple[list[Record], list[Problem]]:
    """Daily-papers listings: title then abstract, with or without blank lines between.

    Both layouts reduce to the same sequence once blank lines, page chrome and
    date headers are dropped: title, abstract, title, abstract, …
    """
    records: list[Record] = []
    problems: list[Problem] = []
    pending: tuple[int, str] | None = None  # a title waiting for its abstract
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or CHROME.match(line) or DATE_HEADER.match(line):
            continue
        if line.startswith("Subscribe"):  # the first title is glued to the button's label
            line = line.removeprefix("Subscribe").strip()
        if pending is None:
            if looks_like_abstract(line):
                problems.append(Problem(name, lineno, "title", "abstract with no title before it"))
            else:
                pending = (lineno, line)
        elif looks_like_abstract(line):
            records.append(Record(title=pending[1], abstract=line, file=name, line=pending[0]))
            pending = None
        else:
            problems.append(no_abstract(name, *pending))
            pending = (lineno, line)
    if pending is not None:
        problems.append(no_abstract(name, *pending))
    if not records and not problems:
        problems.append(Problem(name, None, "file", "no papers found in this listing"))
    return records, problems


def no_abstract(name: str, line: int, title: str) -> Problem:
    return Problem(name, line, "abstract", f"title {shorten(title)!r} has no abstract")


def read_jsonl(text: str, name: str) -> tuple[list[Record], list[Problem]]:
    records: list[Record] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(name, lineno, "json", f"broken JSON: {exc.msg} (column {exc.colno})")
            )
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(name, lineno, "json", "expected an object per line"))
            continue
        record_or_problem(obj, name, lineno, records, problems)
    return records, problems


def read_csv(text: str, name: str) -> tuple[list[Record], list[Problem]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    missing = [c for c in ("title", "abstract|text") if not columns & set(c.split("|"))]
    if missing:
        found = ", ".join(sorted(columns)) or "none"
        return [], [
            Problem(name, 1, "header", f"missing column(s) {', '.join(missing)}; found: {found}")
        ]
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        for row in reader:
            row = {(k or "").strip().lower(): v for k, v in row.items()}
            record_or_problem(row, name, reader.line_num, records, problems)
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, "csv", str(exc)))
    return records, problems


def record_or_problem(
    row: Mapping, name: str, line: int, records: list[Record], problems: list[Problem]
) -> None:
    """Shared by JSON Lines and CSV, whose columns are the same."""
    title = as_text(row.get("title"))
    abstract = as_text(row.get("abstract")) or as_text(row.get("text"))
    if not title:
        problems.append(Problem(name, line, "title", "missing or empty"))
    elif not normalize_title(title):
        problems.append(Problem(name, line, "title", f"{title!r} has no letters or digits"))
    elif len(title) > MAX_TITLE_CHARS:
        problems.append(Problem(name, line, "title", f"longer than {MAX_TITLE_CHARS} characters"))
    elif not abstract:
        problems.append(no_abstract(name, line, title))
    else:
        records.append(
            Record(
                title=title,
                abstract=abstract,
                file=name,
                line=line,
                id=as_text(row.get("id")) or as_text(row.get("_id")) or None,
                authors=as_list(row.get("authors"), r",|\band\b"),
                date=as_text(row.get("date")) or as_text(row.get("update_date")) or None,
                url=as_text(row.get("url")) or None,
                categories=as_list(row.get("categories"), r"[\s,;]+"),
            )
        )


def as_text(value: object) -> str:
    if value is None:
        return ""
    return " ".join(strip_control(str(value)).split())


def as_list(value: object, separator: str) -> list[str]:
    if isinstance(value, list):
        return [as_text(v) for v in value if as_text(v)]
    return [part.strip() for part in re.split(separator, as_text(value)) if part.strip()]


def shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- merging -----------------------------------------------------------------


def normalize_title(title: str) -> str:
    """Case, spacing and punctuation don't make another paper; '+' and '#' do (C++, C#)."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(re.findall(r"[\w+#]+", folded))


def title_id(title: str) -> str:
    """Stable across re-ingest and file order: it depends on the title alone."""
    return "p" + hashlib.sha1(normalize_title(title).encode()).hexdigest()[:12]


def merge_records(records: list[Record]) -> list[Paper]:
    """One paper per explicit id, or per normalized title, then near-duplicate titles merged.

    Records that carry their own id (JSON Lines, CSV) keep it as `paper_id`, so
    results can be scored against published relevance judgements; those are
    never merged by content.
    """
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        key = f"id:{record.id}" if record.id else f"title:{normalize_title(record.title)}"
        groups[key].append(record)
    papers = [paper_from_group(group) for group in groups.values()]
    explicit = {key.removeprefix("id:") for key in groups if key.startswith("id:")}
    return merge_near_duplicates(papers, explicit)


def paper_from_group(group: list[Record]) -> Paper:
    # The longest abstract is the most complete revision; its title leads.
    best = max(group, key=lambda r: (len(r.abstract), r.file, -r.line))
    first = lambda attr: next((getattr(r, attr) for r in group if getattr(r, attr)), None)  # noqa: E731
    return Paper(
        paper_id=best.id or title_id(best.title),
        title=best.title,
        abstract=best.abstract,
        sources=sorted({r.file for r in group}),
        authors=first("authors") or [],
        date=first("date"),
        url=first("url"),
        categories=first("categories") or [],
    )


def shingles(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.casefold())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def merge_near_duplicates(papers: list[Paper], explicit_ids: set[str]) -> list[Paper]:
    """Merge listing papers whose abstracts are revisions of one another (a renamed paper)."""
    candidates = [p for p in papers if p.paper_id not in explicit_ids]
    sets = {p.paper_id: shingles(p.abstract) for p in candidates}
    postings: dict[str, list[str]] = defaultdict(list)
    for pid, items in sets.items():
        for item in items:
            postings[item].append(pid)
    overlap: dict[tuple[str, str], int] = defaultdict(int)
    for pids in postings.values():
        if 1 < len(pids) <= 50:  # very common phrases say nothing about identity
            for i, a in enumerate(pids):
                for b in pids[i + 1 :]:
                    overlap[(a, b)] += 1
    parent = {p.paper_id: p.paper_id for p in papers}

    def root(pid: str) -> str:
        while parent[pid] != pid:
            pid = parent[pid]
        return pid

    for (a, b), shared in overlap.items():
        if shared / len(sets[a] | sets[b]) >= NEAR_DUPLICATE_JACCARD:
            parent[root(b)] = root(a)
    clusters: dict[str, list[Paper]] = defaultdict(list)
    for paper in papers:
        clusters[root(paper.paper_id)].append(paper)
    return sorted((combine(c) for c in clusters.values()), key=lambda p: p.paper_id)


def combine(cluster: list[Paper]) -> Paper:
    if len(cluster) == 1:
        return cluster[0]
    best = max(cluster, key=lambda p: (len(p.abstract), p.title))
    return Paper(
        paper_id=min(p.paper_id for p in cluster),  # independent of which revision is longer
        title=best.title,
        abstract=best.abstract,
        sources=sorted({s for p in cluster for s in p.sources}),
        aliases=sorted(p.title for p in cluster if p.title != best.title),
        authors=best.authors,
        date=best.date,
        url=best.url,
        categories=best.categories,
    )
