"""Artifacts are replaced whole or not at all."""

from __future__ import annotations

import pytest

from jointnas.files import atomic_path, copy, write_text


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = write_text(tmp_path / "sub" / "best.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["best.json"]  # no temp file left
    write_text(target, "new")
    assert target.read_text() == "new"
    assert copy(target, tmp_path / "copy.json").read_text() == "new"
