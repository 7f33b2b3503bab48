"""Encode any fixed Optuna search space as numbers, and back.

Everything that has to treat candidates as vectors (the predictors' features, quasi-random
sampling, vectorised cost, genetic mutation) goes through this one module, so that it works from
the distributions alone and so for any Optuna search space, not only ours.

Two views of a candidate:

* the *feature* view (``encode``/``decode``): numeric parameters scaled to [0, 1] (on a log scale
  where the distribution is log), categoricals one-hot; this is what a predictor sees;
* the *unit* view (``from_unit``): one coordinate in [0, 1) per parameter, mapped onto its
  distribution so that a uniform or Sobol point in the unit cube is a uniform draw from the space.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

Params = dict[str, Any]


def describe(dist: BaseDistribution) -> str:
    """A short human description of a distribution's allowed values, for error messages."""
    if isinstance(dist, CategoricalDistribution):
        return "one of " + ", ".join(repr(c) for c in dist.choices)
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    text = f"[{dist.low}, {dist.high}]"
    if dist.step is not None and not (isinstance(dist, IntDistribution) and dist.step == 1):
        text += f" in steps of {dist.step}"
    if dist.log:
        text += " (log scale)"
    return text


def check_value(name: str, dist: BaseDistribution, value: Any) -> Any:
    """Return ``value`` normalised to the distribution's type, or raise naming the parameter.

    numpy scalars (a row of a DataFrame or an array) count as the Python value they hold.
    """
    if isinstance(value, np.generic):
        value = value.item()
    out = _normalised(dist, value)
    if out is _BAD:
        raise ValueError(
            f"parameter {name!r} = {value!r} is not allowed: expected {describe(dist)}"
        )
    return out


def pin(
    spec: Mapping[str, Any], fix: Mapping[str, Any] | None, *, space: str
) -> tuple[dict[str, BaseDistribution], dict[str, Any], dict[str, Any]]:
    """Split a space's spec (name -> distribution, or a plain value: fixed by the layout) and
    the user's ``fix`` into what is searched, what is fixed (layout values and pinned ones) and
    what was pinned. Every space with a ``fix=`` option splits the same way, so a pinned name
    means the same everywhere; ValueError for a name that is not searched or a bad value."""
    pinned: dict[str, Any] = {}
    for key, value in (fix or {}).items():
        if not isinstance(spec.get(key), BaseDistribution):
            raise ValueError(f"cannot fix {key!r}: not a searched parameter of {space}")
        pinned[key] = check_value(key, spec[key], value)
    dists = {k: v for k, v in spec.items() if isinstance(v, BaseDistribution) and k not in pinned}
    fixed = {**{k: v for k, v in spec.items() if not isinstance(v, BaseDistribution)}, **pinned}
    return dists, fixed, pinned


_BAD = object()


def _normalised(dist: BaseDistribution, value: Any) -> Any:
    """``value`` as the distribution's type, or ``_BAD``. The error message is built only on
    failure: validation runs on every row a sampler encodes, thousands per proposal."""
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if value == choice and type(value) is type(choice):
                return choice
        return _BAD
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return _BAD
    try:  # inf/nan (or an int too large for a float) are not allowed either
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        return _BAD
    if isinstance(dist, IntDistribution):
        if float(value) != int(value):
            return _BAD
        value = int(value)
        if not dist.low <= value <= dist.high or (value - dist.low) % dist.step:
            return _BAD
        return value
    assert isinstance(dist, FloatDistribution)
    value = float(value)
    if not dist.low <= value <= dist.high:
        return _BAD
    if dist.step is not None:
        k = (value - dist.low) / dist.step
        if abs(k - round(k)) > 1e-8:
            return _BAD
    return value


def _bounds(dist: IntDistribution | FloatDistribution) -> tuple[float, float]:
    if dist.log:
        return math.log(dist.low), math.log(dist.high)
    return float(dist.low), float(dist.high)


def _snap(dist: IntDistribution | FloatDistribution, x: np.ndarray) -> np.ndarray:
    """Round raw numeric values onto the distribution's grid and clip them into range."""
    step = dist.step
    if isinstance(dist, IntDistribution):
        x = dist.low + np.round((x - dist.low) / step) * step
        return np.clip(x, dist.low, dist.high).astype(np.int64)
    if step is not None:
        x = dist.low + np.round((x - dist.low) / step) * step
    return np.clip(x, dist.low, dist.high)


def _choice_index(dist: CategoricalDistribution, value: Any) -> int:
    """Index of ``value`` among the choices, type-strict like ``check_value`` (Optuna's
    ``to_internal_repr`` confuses True with 1 and 1.0 with 1)."""
    for k, choice in enumerate(dist.choices):
        if value == choice and type(value) is type(choice):
            return k
    raise ValueError(f"{value!r} is not one of {dist.choices}")


class Encoder:
    """Vector views of a fixed search space (a mapping name -> Optuna distribution)."""

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        if not distributions:
            raise ValueError("a search space needs at least one parameter")
        for name, dist in distributions.items():
            if not isinstance(dist, (IntDistribution, FloatDistribution, CategoricalDistribution)):
                raise TypeError(f"parameter {name!r}: unsupported distribution {dist!r}")
        self.distributions: dict[str, BaseDistribution] = dict(distributions)
        self.names: list[str] = list(distributions)
        self._slices: dict[str, slice] = {}
        features: list[str] = []
        for name, dist in self.distributions.items():
            start = len(features)
            if isinstance(dist, CategoricalDistribution):
                features += [f"{name}={choice}" for choice in dist.choices]
            else:
                features.append(name)
            self._slices[name] = slice(start, len(features))
        self.feature_names: list[str] = features

    @property
    def width(self) -> int:
        """Number of encoded features (columns of ``encode``)."""
        return len(self.feature_names)

    def feature_mask(self, names: Iterable[str]) -> np.ndarray:
        """Boolean mask over encoded columns: True for the columns of the parameters ``names``."""
        mask = np.zeros(self.width, dtype=bool)
        for name in names:
            if name not in self._slices:
                raise ValueError(f"unknown parameter {name!r}; the space has {self.names}")
            mask[self._slices[name]] = True
        return mask

    def validate(self, params: Mapping[str, Any]) -> Params:
        """Check a complete params dict; return it normalised, in space order."""
        missing = [n for n in self.names if n not in params]
        unknown = [n for n in params if n not in self.distributions]
        if missing or unknown:
            raise ValueError(f"params do not match the space: missing {missing}, unknown {unknown}")
        return {n: check_value(n, d, params[n]) for n, d in self.distributions.items()}

    def encode(
        self, params_list: Sequence[Mapping[str, Any]], *, validated: bool = False
    ) -> np.ndarray:
        """Feature matrix (n, width): numeric in [0, 1] (log where log), categoricals one-hot.
        ``validated``: every dict is already ``validate``'s output (skips checking it again)."""
        out = np.zeros((len(params_list), self.width))
        for i, raw in enumerate(params_list):
            params = raw if validated else self.validate(raw)
            for name, dist in self.distributions.items():
                s = self._slices[name]
                if isinstance(dist, CategoricalDistribution):
                    out[i, s.start + _choice_index(dist, params[name])] = 1.0
                else:
                    lo, hi = _bounds(dist)
                    v = math.log(params[name]) if dist.log else float(params[name])
                    out[i, s.start] = (v - lo) / (hi - lo) if hi > lo else 0.0
        return out

    def columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Decode a feature matrix column-wise: numeric values, or category *indices*.

        This is the vectorised path (no Python loop over rows), used by batch cost and search.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.width:
            raise ValueError(f"expected a matrix with {self.width} columns, got shape {X.shape}")
        cols: dict[str, np.ndarray] = {}
        for name, dist in self.distributions.items():
            block = X[:, self._slices[name]]
            if isinstance(dist, CategoricalDistribution):
                cols[name] = np.argmax(block, axis=1)
            else:
                lo, hi = _bounds(dist)
                raw = lo + np.clip(block[:, 0], 0.0, 1.0) * (hi - lo)
                cols[name] = _snap(dist, np.exp(raw) if dist.log else raw)
        return cols

    def decode(self, X: np.ndarray) -> list[Params]:
        """Inverse of ``encode`` (exact on encoded rows; snaps any other row to the grid)."""
        return self._rows(self.columns(X))

    def from_unit(self, U: np.ndarray) -> list[Params]:
        """Map points of the unit cube (n, len(names)) to params, uniformly per distribution."""
        return self._rows(self.unit_columns(U))

    def unit_columns(self, U: np.ndarray) -> dict[str, np.ndarray]:
        """``from_unit`` as columns (numeric values, category indices): no Python row loop."""
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[1] != len(self.names):
            raise ValueError(f"expected a matrix with {len(self.names)} columns, got {U.shape}")
        U = np.clip(U, 0.0, np.nextafter(1.0, 0.0))
        cols: dict[str, np.ndarray] = {}
        for j, (name, dist) in enumerate(self.distributions.items()):
            u = U[:, j]
            if isinstance(dist, CategoricalDistribution):
                cols[name] = np.floor(u * len(dist.choices)).astype(np.int64)
            elif isinstance(dist, IntDistribution) and not dist.log:
                count = (dist.high - dist.low) // dist.step + 1
                cols[name] = dist.low + np.floor(u * count).astype(np.int64) * dist.step
            else:
                lo, hi = _bounds(dist)
                if isinstance(dist, IntDistribution):  # log int: widen by half a step each side
                    lo, hi = math.log(dist.low - 0.5 + 1e-9), math.log(dist.high + 0.5 - 1e-9)
                raw = lo + u * (hi - lo)
                cols[name] = _snap(dist, np.exp(raw) if dist.log else raw)
        return cols

    def encode_columns(self, cols: Mapping[str, np.ndarray]) -> np.ndarray:
        """Vectorised ``encode`` of columns as ``columns`` returns them (values, indices)."""
        n = len(next(iter(cols.values())))
        out = np.zeros((n, self.width))
        for name, dist in self.distributions.items():
            s = self._slices[name]
            if isinstance(dist, CategoricalDistribution):
                out[np.arange(n), s.start + np.asarray(cols[name], dtype=np.int64)] = 1.0
            else:
                lo, hi = _bounds(dist)
                v = np.asarray(cols[name], dtype=float)
                v = np.log(v) if dist.log else v
                out[:, s.start] = (v - lo) / (hi - lo) if hi > lo else 0.0
        return out

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Project any matrix onto encoded rows of valid params (grid, range, one one-hot)."""
        return self.encode_columns(self.columns(X))

    def categorical_slices(self) -> dict[str, slice]:
        """Column ranges of the one-hot blocks, for operators that treat them as one gene."""
        return {
            n: self._slices[n]
            for n, d in self.distributions.items()
            if isinstance(d, CategoricalDistribution)
        }

    def _rows(self, cols: Mapping[str, np.ndarray]) -> list[Params]:
        n = len(next(iter(cols.values())))
        rows: list[Params] = [{} for _ in range(n)]
        for name, dist in self.distributions.items():
            values = cols[name]
            for i in range(n):
                if isinstance(dist, CategoricalDistribution):
                    rows[i][name] = dist.choices[int(values[i])]
                elif isinstance(dist, IntDistribution):
                    rows[i][name] = int(values[i])
                else:
                    rows[i][name] = float(values[i])
        return rows
