"""The code's layout as the README describes it: every module listed and none invented, no
import cycles, no module over 500 lines and no function over 80."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PRODUCT = [REPO / "assistant", REPO / "ui"]


def modules() -> list[Path]:
    return sorted(p for root in PRODUCT for p in root.rglob("*.py"))


def layout_table() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]


def test_the_readme_lists_every_module_and_only_real_ones() -> None:
    table = layout_table()
    named = set(re.findall(r"`((?:assistant|ui|training)/[\w/]*(?:\.py|/))`", table))
    for name in named:
        assert (REPO / name).exists(), f"the README names {name}, which does not exist"
    folders = {n for n in named if n.endswith("/")}
    # A package listed as a folder covers its modules if the row names each of them.
    for module in modules():
        rel = module.relative_to(REPO).as_posix()
        if module.name in ("__init__.py", "__main__.py") and module.parent.name != "cli":
            continue
        folder = next((f for f in folders if rel.startswith(f)), None)
        if folder is None:
            assert f"`{rel}`" in table, f"{rel} is missing from 'How the code is laid out'"
        elif module.name != "__init__.py" and folder == "assistant/cli/":
            assert f"`{module.stem}`" in table, f"{rel} is missing from the cli row"


def imports_of(module: Path) -> set[str]:
    """The package modules this file imports (at any depth: lazy imports count too)."""
    package = ".".join(module.relative_to(REPO).with_suffix("").parts)
    if module.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            found |= {target, *names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_no_import_cycles() -> None:
    names = {
        ".".join(m.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): m
        for m in modules()
    }
    graph = {
        name: {n for n in imports_of(path) if n in names and n != name}
        for name, path in names.items()
    }
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {n for n in graph[name] if not (n.startswith(name + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_and_functions_stay_small() -> None:
    for module in modules():
        text = module.read_text(encoding="utf-8")
        lines = text.count("\n")
        assert lines <= 500, f"{module.relative_to(REPO)} has {lines} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert length <= 80, f"{module.relative_to(REPO)}:{node.lineno} {node.name}"
