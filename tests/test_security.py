"""No file a user passes in is ever loaded with a code-executing deserialiser."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from jointnas.training.data import DatasetError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("jointnas", "studies", "benchmarks") for p in (ROOT / d).rglob("*.py"))
UNSAFE = [
    re.compile(r"\bpickle\.loads?\("),
    re.compile(r"\bjoblib\.load\("),
    re.compile(r"\bdill\.loads?\("),
    re.compile(r"\btorch\.load\((?![^)]*weights_only=True)"),
    re.compile(r"\bnp\.load\((?![^)]*allow_pickle=False)"),
]


def test_no_unsafe_deserialisation_anywhere_in_the_code():
    assert len(SOURCES) > 30
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in SOURCES
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if any(rx.search(line) for rx in UNSAFE)
    ]
    assert hits == []


def test_a_pickled_npz_is_refused_not_executed(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([object()], dtype=object), y=np.array([0]))
    with pytest.raises(DatasetError, match="allow_pickle=False"):
        load_dataset(str(path))
