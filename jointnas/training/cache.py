"""Decoded image folders, cached on disk as uint8 ``.npy`` files and opened memory-mapped.

Decoding a folder of JPEGs takes minutes; every worker process of a search and every rerun
would pay it again. The first one to decode writes the uint8 array (atomically: a killed
write leaves no half file), the others map it read-only, so N workers on one machine share one
copy in the page cache. The key hashes every file's path, size and modification time and the
stored size, so a changed folder is decoded afresh. ``np.load`` runs with pickling refused.

The cache lives in ``$JOINTNAS_CACHE_DIR`` (default ``~/.cache/jointnas``); ``--no-cache`` (or
``JOINTNAS_CACHE_DIR=off``) decodes in memory only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jointnas.files import atomic_path

ENV = "JOINTNAS_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where decoded folders are kept; None when caching is off."""
    value = os.environ.get(ENV, "")
    if value.lower() == "off":
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "jointnas"


def key(files: tuple[Path, ...], labels: np.ndarray, size: int, channels: int) -> str:
    """A hash of what the decoded array depends on."""
    h = hashlib.sha256(f"v1 {size} {channels}\n".encode())
    for f, label in zip(files, labels.tolist(), strict=True):
        st = f.stat()
        h.update(f"{f.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\t{label}\n".encode())
    return h.hexdigest()[:24]


def cached(
    name: str, decode: Callable[[], tuple[np.ndarray, np.ndarray]], *, directory: Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """``decode()``'s (x, y), from ``directory/name.{x,y}.npy`` when there, else decoded and
    stored there; x comes back memory-mapped read-only. ``directory`` None: no cache."""
    if directory is None:
        return decode()
    paths = [directory / f"{name}.{part}.npy" for part in ("x", "y")]
    if all(p.is_file() for p in paths):
        try:
            x = np.load(paths[0], mmap_mode="r", allow_pickle=False)
            return x, np.load(paths[1], allow_pickle=False)
        except (OSError, ValueError):  # damaged: decode again and overwrite it
            pass
    x, y = decode()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, array in zip(paths, (x, y), strict=True):
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
    except OSError:  # a read-only or full disk costs the next run a decode, nothing more
        return x, y
    return np.load(paths[0], mmap_mode="r", allow_pickle=False), y
