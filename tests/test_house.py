"""The house rules, checked on the source: wings import only downwards (no cycle either:
test_spine.py), no module too long to read in one go, every wing says at its top what lives
there, and the public names load lazily."""

from __future__ import annotations

import ast
import re
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
        "assert jointnas.spaces.get_space('regnet').key == 'regnet'  # a wing, no import\n"
        "for name in jointnas.__all__: getattr(jointnas, name)\n"
        "from jointnas.spaces import get_space\n"
        "assert jointnas.run.__module__ == 'jointnas.runs.pipeline'\n"
        "assert jointnas.get_space is get_space\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_readme_layout_names_what_is_there() -> None:
    """Every file the README's layout names exists, and every wing and root module is named."""
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    named: set[Path] = set()
    folder = PACKAGE.parent
    for line in block.splitlines():
        head = line.split()[0] if line.strip() and not line.startswith(" ") else ""
        if head.startswith("jointnas/"):
            path = PACKAGE.parent / head.rstrip(",")
            folder = path if path.is_dir() else path.parent
            named.add(path)
        for word in re.findall(r"[\w/]+\.py", line):
            named.add(PACKAGE.parent / word if word.startswith("jointnas/") else folder / word)
    missing = sorted(str(p.relative_to(PACKAGE.parent)) for p in named if not p.exists())
    assert not missing, f"the README's layout names files that are not there: {missing}"
    unnamed = sorted(
        str(p.relative_to(PACKAGE.parent))
        for p in [*PACKAGE.iterdir()]
        if ((p.is_dir() and p.name != "__pycache__") or p.suffix == ".py")
        and p.name != "__init__.py"
        and p not in named
    )
    assert not unnamed, f"the README's layout does not name {unnamed}"
