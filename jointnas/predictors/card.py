"""A human-readable card for a saved predictor, rendered from its metadata alone."""

from __future__ import annotations

import os
from pathlib import Path

from jointnas import files
from jointnas.predictors.base import read_metadata

CARD = "CARD.md"


def metrics_line(m: dict) -> str:
    return (
        f"Kendall tau {m['kendall_tau']:.3f}, Spearman {m['spearman']:.3f}, "
        f"precision@10% {m['precision_at_10']:.2f}, MAE {m['mae']:.4f} (n={m['n']})"
    )


def write_card(directory: str | os.PathLike, *, command: str, notes: str = "") -> Path:
    """Write ``CARD.md``: what the predictor was fitted on, how, how well, for which space."""
    meta = read_metadata(directory)
    train, space = meta["training"], meta["space"]
    lines = [
        f"# {meta['kind']} accuracy predictor",
        "",
        f"- **Space**: `{space['name']}`, fingerprint `{space['fingerprint']}` "
        f"({len(meta['feature_names'])} encoded features); task {meta['task']}",
        f"- **Data**: {train['n']} completed trials from {train.get('source') or 'direct fit'}; "
        f"accuracy {train['y_min']:.3f}-{train['y_max']:.3f} (mean {train['y_mean']:.3f})",
        f"- **Command**: `{command}`",
        f"- **Seed**: {meta['seed']}; hyperparameters: `{meta['hyperparameters']}`",
        f"- **Versions**: {meta['versions']}",
    ]
    for key, m in meta.get("metrics", {}).items():
        lines.append(f"- **Metrics ({key})**: {metrics_line(m)}")
    if notes:
        lines += ["", notes]
    lines += [
        "",
        "Load it with `jointnas.predictors.load_predictor(DIR)`; loading checks the space",
        "fingerprint, so a predictor is never silently applied to another space.",
        "",
    ]
    path = Path(directory) / CARD
    return files.write_text(path, "\n".join(lines))
