"""The predictor contract and its safe on-disk format.

A predictor maps a space's params (or their encoded rows, for search) to predicted accuracy. All
predictors share target standardisation (accuracies live in a narrow band near 1, which squashes
any loss with a fixed scale, e.g. a Huber slope of 1), the metadata that makes an artifact safe
to reuse (space fingerprint, feature names, library versions, a training-data summary, metrics)
and the checks on load. Weights are stored by each subclass in a format that cannot run code
(safetensors, XGBoost JSON); the metadata is written last, so a half-written directory never
loads as a predictor.
"""

from __future__ import annotations

import json
import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from jointnas.errors import JointNASError
from jointnas.spaces.base import Space
from jointnas.spaces.registry import space_from_legacy, space_from_record, space_record

FORMAT = "jointnas-predictor"
FORMAT_VERSION = 1
METADATA = "metadata.json"


#: kind -> predictor class, filled by ``Predictor.__init_subclass__``
KINDS: dict[str, type[Predictor]] = {}


class PredictorError(JointNASError):
    """A predictor directory that cannot be used: missing, corrupt, or made for another space."""


@dataclass(frozen=True, kw_only=True)
class Task:
    """What the candidates are built for; the analytic cost (the proxy target) depends on it."""

    num_classes: int = 10
    in_channels: int = 1

    def __post_init__(self) -> None:
        if self.num_classes < 2 or self.in_channels < 1:
            raise ValueError(f"bad task {self}: need num_classes >= 2 and in_channels >= 1")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("jointnas", "torch", "xgboost-cpu", "xgboost", "optuna", "numpy"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


class Predictor(ABC):
    """Base class: subclasses implement ``_fit``, ``_predict``, ``_save`` and ``_load``.

    Subclasses see the target standardised (zero mean, unit variance over the training set) and
    return predictions on that scale; the base class maps them back to accuracy.
    """

    kind: ClassVar[str]
    min_points: ClassVar[int] = 4

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each concrete predictor registers its ``kind``, which ``load_predictor`` reads
        back from the metadata (so this module imports no subclass)."""
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            KINDS[cls.kind] = cls

    def __init__(self, *, space: Space, seed: int = 0, task: Task | None = None) -> None:
        if not isinstance(space, Space):
            raise TypeError(f"space must be a jointnas Space, got {type(space).__name__}")
        self.space = space
        self.seed = int(seed)
        self.task = task or Task()
        self.y_mean = 0.0
        self.y_std = 1.0
        self.transform = "identity"
        self.training: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.fitted = False

    # -- public API -------------------------------------------------------------------------
    def fit(
        self,
        params_list: Sequence[Mapping[str, Any]] | np.ndarray,
        y: Sequence[float],
        *,
        source: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Fit on candidates (params dicts of ``space``, or their encoded matrix) and their
        measured accuracies; ``source`` (e.g. storage and study) is kept in the metadata."""
        return self.fit_encoded(self._as_matrix(params_list), y, source=source)

    def fit_encoded(
        self, X: np.ndarray, y: Sequence[float], *, source: Mapping[str, Any] | None = None
    ) -> Predictor:
        X = self._check_matrix(X)
        y = np.asarray(y, dtype=float)
        if y.shape != (len(X),):
            raise ValueError(f"y has shape {y.shape}; expected ({len(X)},) to match the params")
        if len(y) < self.min_points:
            raise ValueError(f"need at least {self.min_points} training points, got {len(y)}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or inf; drop failed trials before fitting")
        self.transform = "logit" if np.all((y >= 0) & (y <= 1)) else "identity"
        t = self._forward(y)
        self.y_mean, self.y_std = float(t.mean()), float(t.std()) or 1.0
        self._fit(X, (t - self.y_mean) / self.y_std)
        self.training = {
            "n": len(y),
            "y_mean": float(y.mean()),
            "y_std": float(y.std()),
            "y_min": float(y.min()),
            "y_max": float(y.max()),
            "source": dict(source or {}),
        }
        self.fitted = True
        return self

    def predict(self, params_list: Sequence[Mapping[str, Any]] | np.ndarray) -> np.ndarray:
        """Predicted accuracy of each candidate (params dicts, or their encoded matrix)."""
        return self.predict_encoded(self._as_matrix(params_list))

    def predict_encoded(self, X: np.ndarray) -> np.ndarray:
        """Predicted accuracy of each encoded row: the batch path the fine search uses."""
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() or load()")
        z = self._predict(self._check_matrix(X))
        return self._inverse(np.asarray(z, dtype=float) * self.y_std + self.y_mean)

    def _forward(self, y: np.ndarray) -> np.ndarray:
        """Targets in [0, 1] (accuracies) are fitted as logits: predictions then stay inside
        (0, 1) however far a search pushes the predictor, and the crowded top of the range
        (0.95 vs 0.96) is spread out. Other targets (any objective a sampler sees) as they are."""
        if self.transform == "identity":
            return y
        p = np.clip(y, 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    def _inverse(self, t: np.ndarray) -> np.ndarray:
        return t if self.transform == "identity" else 1.0 / (1.0 + np.exp(-t))

    def save(self, directory: str | os.PathLike) -> Path:
        """Write weights, then ``metadata.json`` (so a crash mid-save leaves no loadable dir)."""
        if not self.fitted:
            raise RuntimeError("fit the predictor before saving it")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / METADATA).unlink(missing_ok=True)
        self._save(path)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "space": {"name": self.space.name, "fingerprint": self.space.fingerprint()},
            "space_record": space_record(self.space),
            "feature_names": self.space.feature_names,
            "task": {"num_classes": self.task.num_classes, "in_channels": self.task.in_channels},
            "seed": self.seed,
            "hyperparameters": self.hyperparameters(),
            "target": {"mean": self.y_mean, "std": self.y_std, "transform": self.transform},
            "training": self.training,
            "metrics": self.metrics,
            "versions": _versions(),
        }
        tmp = path / (METADATA + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        tmp.replace(path / METADATA)
        return path

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able) that rebuild this predictor on load."""
        return {}

    # -- subclass hooks ---------------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: np.ndarray, z: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _save(self, path: Path) -> None: ...

    @abstractmethod
    def _load(self, path: Path) -> None: ...

    # -- helpers ----------------------------------------------------------------------------
    def _as_matrix(self, params_list: Sequence[Mapping[str, Any]] | np.ndarray) -> np.ndarray:
        """Encoded rows as they are; params dicts encoded. So ``fit(X, y)``/``predict(X)`` on
        matrices works like any sklearn-style regressor (what the samplers call)."""
        if isinstance(params_list, np.ndarray):
            return params_list
        return self.space.encode(params_list)

    def _check_matrix(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        width = self.space.encoder.width
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"expected an encoded matrix with {width} columns, got {X.shape}")
        return X


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a predictor directory, or a PredictorError saying what is wrong."""
    path = Path(directory)
    if not path.is_dir():
        raise PredictorError(f"no predictor directory at {str(path)!r}")
    meta_path = path / METADATA
    if not meta_path.is_file():
        raise PredictorError(f"{str(path)!r} is not a jointnas predictor: {METADATA} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictorError(f"{str(meta_path)!r} is not valid JSON (truncated?): {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PredictorError(f"{str(meta_path)!r} is not jointnas predictor metadata")
    if meta.get("format_version") != FORMAT_VERSION:
        raise PredictorError(
            f"{str(path)!r} has predictor format version {meta.get('format_version')!r}; this "
            f"jointnas reads version {FORMAT_VERSION}"
        )
    return meta


def load_predictor(directory: str | os.PathLike, *, space: Space | None = None) -> Predictor:
    """Load a saved predictor, checked against ``space`` (default: the space it names).

    Refuses, with one line each: a missing or corrupt directory, an unknown kind, a predictor
    fitted on another space (or on an older definition of the same space), truncated weights.
    """
    path = Path(directory)
    meta = read_metadata(path)
    try:
        cls = KINDS[meta["kind"]]
        stored = meta["space"]
        if space is None:
            if stored["name"] == "distributions":
                raise ValueError("a predictor of a plain Optuna space needs space= to load")
            if "space_record" in meta:
                space = space_from_record(meta["space_record"])
            else:  # written before spaces were recorded with their options
                space = space_from_legacy(
                    stored["name"], stored.get("fixed"), fingerprint=stored.get("fingerprint")
                )
        hyper = dict(meta["hyperparameters"])
        task = Task(**meta["task"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictorError(f"{str(path)!r}: unusable metadata ({exc!s})") from None
    if stored.get("fingerprint") != space.fingerprint():
        raise PredictorError(
            f"predictor {str(path)!r} was fitted on space {stored.get('name')!r} "
            f"(fingerprint {stored.get('fingerprint')}), not on {space.name!r} "
            f"(fingerprint {space.fingerprint()}); fit a new one on this space"
        )
    if meta.get("feature_names") != space.feature_names:
        raise PredictorError(f"predictor {str(path)!r} has other features than {space.name!r}")
    predictor = cls(space=space, seed=meta.get("seed", 0), task=task, **hyper)
    predictor.y_mean = float(meta["target"]["mean"])
    predictor.y_std = float(meta["target"]["std"])
    predictor.transform = meta["target"].get("transform", "identity")
    if predictor.transform not in ("identity", "logit"):
        raise PredictorError(f"{str(path)!r}: unknown target transform {predictor.transform!r}")
    predictor.training = dict(meta.get("training", {}))
    predictor.metrics = dict(meta.get("metrics", {}))
    try:
        predictor._load(path)
    except PredictorError:
        raise
    except Exception as exc:  # torch/safetensors/xgboost raise many types on corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PredictorError(f"cannot load weights from {str(path)!r}: {first}") from None
    predictor.fitted = True
    return predictor
