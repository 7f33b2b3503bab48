"""Open Optuna storages and studies with one-line errors instead of driver tracebacks."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from jointnas.errors import ConfigError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


JOURNAL_SUFFIXES = (".log", ".journal")


def open_storage(url: str, *, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``, or a ConfigError.

    ``url`` is any RDB URL Optuna accepts, or a path ending in ``.log``/``.journal`` for a
    journal file: the storage optuna-dashboard also opens by path, and the one that lets several
    local processes share a study without SQLite's write locks.

    With ``heartbeat`` (seconds), a running trial beats every ``heartbeat`` s; one silent for 3
    beats (its process was killed) is failed by the next ``optimize`` on the study and
    re-enqueued with the same params, so the candidate is trained again instead of being lost.
    RDB storages use Optuna's own heartbeat; journal files ``jointnas.storage.heartbeat``'s.
    """
    if "://" not in url:
        if url.endswith(JOURNAL_SUFFIXES):
            return _open_journal(url, heartbeat)
        raise ConfigError(
            f"storage {url!r} is neither a URL nor a journal file (*.log, *.journal); "
            "try sqlite:///jointnas.db"
        )
    try:
        if heartbeat is not None:
            return _rdb_with_heartbeat(url, heartbeat)
        return optuna.storages.get_storage(url)
    except Exception as exc:  # drivers raise many types; the user needs the one line
        raise ConfigError(f"cannot open storage {url!r}: {_first_line(exc)}") from exc


def _retry() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """A stale (killed) trial's params are enqueued again, up to 3 times per candidate."""
    return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)


def _rdb_with_heartbeat(url: str, heartbeat: int) -> optuna.storages.BaseStorage:
    # Optuna marks heartbeats experimental; its warnings would break the CLI's one-line errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=_retry(),
        )


def _open_journal(path: str, heartbeat: int | None) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    from jointnas.storage.heartbeat import HeartbeatJournalStorage

    try:
        backend = JournalFileBackend(path)
        if heartbeat is None:
            return optuna.storages.JournalStorage(backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return HeartbeatJournalStorage(
                backend, heartbeat_interval=heartbeat, stale_trial_callback=_retry()
            )
    except Exception as exc:  # unreadable, a directory, a corrupt log
        raise ConfigError(f"cannot open journal storage {path!r}: {_first_line(exc)}") from exc


def check_multiprocess_storage(url: str, workers: int) -> None:
    """Refuse SQLite for several processes: it locks the whole database file on every write,
    so workers queue behind each other's writes and hit "database is locked" under load."""
    if workers > 1 and url.startswith("sqlite"):
        raise ConfigError(
            f"--workers {workers} needs a storage several processes can write: a PostgreSQL URL "
            "(postgresql+psycopg://user@host/db) or a journal file (*.log); SQLite locks the "
            "whole database on every write"
        )


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
            if isinstance(value, Mapping) and isinstance(current[key], Mapping):
                stored = current[key]
                diff = sorted(k for k in {*value, *stored} if stored.get(k) != value.get(k))
                raise ConfigError(
                    f"study {study.study_name!r} was made with other settings ({diff}) in "
                    f"{key}; use another --study name or the same settings"
                )
            raise ConfigError(
                f"study {study.study_name!r} was made with {key}={current[key]!r}, not "
                f"{value!r}; use another --study name or the same settings"
            )
    for key, value in expected.items():
        if key not in current:
            study.set_user_attr(key, value)
