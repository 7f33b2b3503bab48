"""The spine knows no space: no module of the pipeline names one, and no module imports back.

The first test is the issue's grep as a test: the modules every space goes through (pipeline,
stages, objective, CLI, workers, export, reuse, search, report, trainer, predictors, layout,
evaluators: the wings runs, cli, tools, training, predictors, storage, evaluators, samplers) never
import FBNetV3's module or mention its presets. The second builds the import
graph of the package (module-level *and* function-level imports) and asserts it has no cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "jointnas"
SPINE = [
    "runs",
    "cli",
    "tools",
    "training",
    "predictors",
    "storage",
    "evaluators",
    "samplers",
    "constraints.py",
    "validated.py",
]
SPACE_WORDS = re.compile(r"fbnet|['\"](small|imagenet)['\"]", re.IGNORECASE)


def _files(entry: str) -> list[Path]:
    path = ROOT / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("entry", SPINE)
def test_spine_modules_name_no_space(entry: str) -> None:
    for path in _files(entry):
        hits = [
            f"{path.name}:{n}: {line.strip()}"
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if SPACE_WORDS.search(line)
        ]
        assert not hits, hits


def _module(path: Path) -> str:
    parts = ["jointnas", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        typing_only = {  # `if TYPE_CHECKING:` imports never run
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                while t and t not in modules:  # `from pkg.mod import name` -> pkg.mod
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                # importing a submodule runs its package __init__ too, but that edge is the
                # package's own business; the dependency is on the module named
                if t and t != name:
                    graph[name].add(t)
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # a package's __init__ re-exporting its own submodules is not a cycle in the design
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c[1:])]
    assert not real, "\n".join(" -> ".join(c) for c in real)
