"""The house rules, checked on the source: wings import only downwards (no cycle either:
test_spine.py), no module too long to read in one go, every wing says at its top what lives
there, and the public names load lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jointnas"

#: lowest first; a module may import its own wing and the wings before it
WINGS = (
    ("errors", "files", "plotting", "validated"),
    ("spaces",),
    ("constraints",),
    ("training",),
    ("storage",),
    ("supernet",),
    ("evaluators",),
    ("predictors",),
    ("samplers",),
    ("runs",),
    ("tools",),
    ("designs",),
    ("testing",),
    ("cli",),
)
RANK = {wing: rank for rank, names in enumerate(WINGS) for wing in names}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """``jointnas.a.b`` -> path, for every module but the package's own ``__init__`` (the
    public facade: it names everything, lazily)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _wing(module: str) -> str:
    return module.split(".")[1]


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The jointnas modules ``path`` imports (``from pkg import sub`` counts as ``pkg.sub``
    when ``sub`` is a module). ``top_level_only``: what runs at import time (not inside
    functions, not under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree)
    if top_level_only:
        nodes = (
            n
            for n in tree.body
            if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test))
        )
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            if not all(n in MODULES for n in names):  # names defined in the module itself
                names.append(node.module)
        else:
            continue
        found.update(n for n in names if n in MODULES)
    return found


def test_the_wings_are_the_ones_the_house_declares() -> None:
    assert {_wing(m) for m in MODULES} == set(RANK)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_wing_imports_a_higher_one(module: str) -> None:
    upward = [
        target
        for target in _imports(MODULES[module], top_level_only=False)
        if RANK[_wing(target)] > RANK[_wing(module)]
    ]
    assert not upward, f"{module} ({_wing(module)}) imports higher wings: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_reads_in_one_go(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it"


@pytest.mark.parametrize(
    "wing", sorted({m for m in MODULES if (PACKAGE / Path(*m.split(".")[1:])).is_dir()})
)
def test_every_wing_says_what_lives_there(wing: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[wing].read_text()))
    assert doc and len(doc.split()) >= 12, f"{wing}/__init__.py needs a docstring saying its role"


def test_the_public_names_load_lazily_and_still_work() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jointnas\n"
        "assert 'torch' not in sys.modules, 'import jointnas pulled in torch'\n"
        "for name in jointnas.__all__: getattr(jointnas, name)\n"
        "from jointnas.spaces import get_space\n"
        "assert jointnas.run.__module__ == 'jointnas.runs.pipeline'\n"
        "assert jointnas.get_space is get_space\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
