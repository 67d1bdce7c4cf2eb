"""What `pip install` of the built wheel gets: every module and every prompt, usable outside
the checkout (prompts/ lives at the top of the repo, not inside the package)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("paper_assistant-*.whl")
    return built


def test_the_wheel_holds_every_module_and_prompt(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = sorted((REPO / "prompts").glob("*.md"))
    assert prompts
    for prompt in prompts:
        assert f"assistant/prompt_files/{prompt.name}" in names, prompt.name
    for module in sorted((REPO / "assistant").rglob("*.py")):
        assert module.relative_to(REPO).as_posix() in names, module


def test_prompts_load_from_an_installed_copy_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    names = sorted(p.stem for p in (REPO / "prompts").glob("*.md"))
    code = (
        "import assistant.prompts as p\n"
        "print(p.__file__)\n"
        "print(p.DEFAULT_PROMPTS_DIR)\n"
        f"for name in {names!r}:\n"
        "    print(p.load_prompt(name).label)\n"
    )
    # -S: no site-packages, so neither the checkout's editable install nor anything else
    # can supply the package; only the unpacked wheel is on the path.
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    module, directory, *labels = out.stdout.splitlines()
    assert Path(module).is_relative_to(site) and Path(directory).is_relative_to(site)
    assert [label.split("@")[0] for label in labels] == names
