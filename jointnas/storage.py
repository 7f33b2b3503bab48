"""Open Optuna storages and studies with one-line errors instead of driver tracebacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from jointnas.errors import ConfigError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url`` (any RDB URL Optuna accepts), or a ConfigError."""
    if "://" not in url:
        raise ConfigError(f"storage {url!r} is not a URL; try sqlite:///jointnas.db")
    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # drivers raise many types; the user needs the one line
        raise ConfigError(f"cannot open storage {url!r}: {_first_line(exc)}") from exc


def load_study(storage: str | optuna.storages.BaseStorage, study_name: str) -> optuna.Study:
    """Load an existing study, or a ConfigError listing the studies that do exist."""
    st = open_storage(storage) if isinstance(storage, str) else storage
    try:
        return optuna.load_study(study_name=study_name, storage=st)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(st)]
        raise ConfigError(f"no study named {study_name!r} in the storage; it has {names}") from None


def check_study_attrs(study: optuna.Study, expected: Mapping[str, Any]) -> None:
    """Stamp a new study with ``expected``; refuse to reuse one made with different settings."""
    current = study.user_attrs
    for key, value in expected.items():
        if key in current and current[key] != value:
            raise ConfigError(
                f"study {study.study_name!r} was made with {key}={current[key]!r}, not "
                f"{value!r}; use another --study name or the same settings"
            )
    for key, value in expected.items():
        if key not in current:
            study.set_user_attr(key, value)
