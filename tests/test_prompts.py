"""Prompts load by name, carry a version, and their placeholders are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.prompts import DEFAULT_PROMPTS_DIR, load_prompt, prompt_versions


@pytest.mark.parametrize("path", sorted(DEFAULT_PROMPTS_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_every_bundled_prompt_loads(path: Path) -> None:
    prompt = load_prompt(path.stem)
    assert prompt.version and prompt.placeholders


def test_render_leaves_braces_in_values_alone() -> None:
    text = load_prompt("answer").render(sources="{question} {not_a_field}", question="Q?")
    assert "{question} {not_a_field}" in text and "Question: Q?" in text


def test_versions_record_content_hashes(tmp_path: Path) -> None:
    edited = tmp_path / "answer.md"
    edited.write_text((DEFAULT_PROMPTS_DIR / "answer.md").read_text() + "\nBe brief.\n")
    default, custom = load_prompt("answer"), load_prompt("answer", tmp_path)
    assert default.version == custom.version and default.sha != custom.sha
    assert prompt_versions({"answer": custom})["answer"] == f"{custom.version}-{custom.sha}"


def test_custom_prompt_must_keep_the_placeholders(tmp_path: Path) -> None:
    (tmp_path / "answer.md").write_text(
        "---\nversion: 2\nplaceholders: [question]\n---\nAnswer {question}\n"
    )
    with pytest.raises(AssistantError, match="differ from the default"):
        load_prompt("answer", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter {question}", "front matter"),
        ("---\nplaceholders: [question]\n---\n{question}", "version"),
        ("---\nversion: 1\nplaceholders: [question]\n---\n{question} {sources}", "placeholders"),
    ],
)
def test_malformed_prompts_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x.md").write_text(text)
    with pytest.raises(AssistantError, match=message):
        load_prompt("x", tmp_path)
