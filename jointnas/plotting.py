"""The two ends of every PNG jointnas draws: a headless figure, and saving it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def axes(figsize: tuple[float, float] = (6, 4), **subplots: Any) -> tuple[Any, Any]:
    """A figure and axes on the non-interactive Agg backend (no display on servers/CI);
    ``subplots`` goes to ``plt.subplots`` (e.g. ``ncols=2``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, **subplots)


def save(fig: Any, path: str | Path) -> Path:
    """Lay out, write as PNG and close ``fig`` (an open figure leaks memory in long runs)."""
    import matplotlib.pyplot as plt

    from jointnas.files import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
