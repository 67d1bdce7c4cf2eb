"""Prompts live in prompts/*.md, one per file, with a front-matter version line.

A prompt is loaded by name, its placeholders are checked against the file's
declaration (and a custom prompt's against the default's), and every answer
records the versions and content hashes of the prompts that produced it.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AssistantError
from .text import neutralize_markers

if TYPE_CHECKING:
    from .types import Source


def default_prompts_dir() -> Path:
    """prompts/ at the top of a checkout; in an installed wheel, the same files ship as
    the package `assistant.prompt_files` (pyproject.toml maps one onto the other)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent / "prompts"
    return checkout if (checkout / "answer.md").is_file() else package / "prompt_files"


DEFAULT_PROMPTS_DIR = default_prompts_dir()
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str
    placeholders: frozenset[str]
    path: Path

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **values: str) -> str:
        missing = self.placeholders - values.keys()
        if missing:
            raise AssistantError(f"prompt {self.name}: no value for {sorted(missing)}")
        # str.format would choke on braces inside values such as abstracts; substitute by name.
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.template)


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def template_fields(template: str) -> set[str]:
    """The same pattern `render` fills, so what is checked is what is substituted."""
    return set(PLACEHOLDER.findall(template))


def load_prompt(name: str, directory: Path | None = None) -> Prompt:
    path = (directory or DEFAULT_PROMPTS_DIR) / f"{name}.md"
    if not path.is_file():
        raise AssistantError(f"no prompt {name!r} at {path}", "prompts live in prompts/NAME.md")
    text = path.read_text(encoding="utf-8")
    match = FRONT_MATTER.match(text)
    if not match:
        raise AssistantError(
            f"{path}:1: front matter: missing", "start the file with ---, version: N, ---"
        )
    meta = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in match.group(1).splitlines())
        if k.strip()
    )
    if not meta.get("version"):
        raise AssistantError(f"{path}: version: missing from the front matter", "add `version: 1`")
    template = text[match.end() :].strip() + "\n"
    declared = set(re.findall(r"\w+", meta.get("placeholders", "")))
    used = template_fields(template)
    if declared != used:
        raise AssistantError(
            f"{path}: placeholders: the front matter declares {sorted(declared)} "
            f"but the text uses {sorted(used)}",
            "make the `placeholders:` line match the {names} in the text",
        )
    prompt = Prompt(name, meta["version"], template, frozenset(used), path)
    if directory is not None and directory.resolve() != DEFAULT_PROMPTS_DIR:
        default = load_prompt(name)
        if prompt.placeholders != default.placeholders:
            raise AssistantError(
                f"{path}: placeholders {sorted(prompt.placeholders)} differ from the default "
                f"prompt's {sorted(default.placeholders)}",
                "a custom prompt must use the same placeholders as prompts/" + name + ".md",
            )
    return prompt


def prompt_versions(prompts: dict[str, Prompt]) -> dict[str, str]:
    """What every answer and eval report records: version and content hash per prompt."""
    return {name: f"{p.version}-{p.sha}" for name, p in sorted(prompts.items())}


# --- corpus text inside a prompt --------------------------------------------------------


# The tags the prompts themselves use to fence off data: corpus text, past turns and claims
# must not open or close any of them, whichever prompt they end up in.
PROMPT_TAG = re.compile(r"<(?=\s*/?\s*(?:source|turn|claim)\b)", re.IGNORECASE)


def defuse(text: str) -> str:
    """Text from outside can't open or close a <source>, <turn> or <claim> block: its '<'
    becomes '&lt;'."""
    return PROMPT_TAG.sub("&lt;", text)


def format_sources(sources: list[Source]) -> str:
    """Delimited so that text inside a title or abstract can't pass for the prompt's own words."""
    return "\n\n".join(
        source_block(s.marker, s.paper.title, neutralize_markers(s.paper.abstract)) for s in sources
    )


def source_block(marker: int, title: str, body: str) -> str:
    """One numbered source: the title escaped as an attribute, the body defused."""
    title = html.escape(" ".join(title.split()), quote=True)
    return f'<source n="{marker}" title="{title}">\n{defuse(body)}\n</source>'
