"""The contract every jointnas search space keeps.

A space is *data*: a fixed mapping name -> Optuna distribution, plus ``decode`` into frozen
dataclasses. Sampling, suggesting, encoding and fingerprinting are derived from the
distributions here, once, so a second space (RegNet/AnyNet, a supernet's paths) only writes its
distributions and its ``decode``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from jointnas.spaces.encoding import Encoder, Params

ArchT = TypeVar("ArchT")
RecipeT = TypeVar("RecipeT")


@dataclass(frozen=True)
class Candidate(Generic[ArchT, RecipeT]):
    """One point of a joint space: what to build and how to train it."""

    arch: ArchT
    recipe: RecipeT


class Space(ABC):
    """Base class: subclasses provide ``distributions``, ``decode`` and ``to_params``."""

    name: str = "space"
    #: parameters that describe training, not the network; predictors feed them to the accuracy
    #: head beside the architecture embedding. A pure-architecture space leaves this empty.
    recipe_names: tuple[str, ...] = ()

    @property
    @abstractmethod
    def distributions(self) -> Mapping[str, BaseDistribution]:
        """Name -> Optuna distribution, in a fixed order."""

    @abstractmethod
    def decode(self, params: Mapping[str, Any]) -> Candidate:
        """Params dict -> frozen dataclasses; raises ValueError naming a bad parameter."""

    @abstractmethod
    def to_params(self, candidate: Candidate) -> Params:
        """Inverse of ``decode``: frozen dataclasses -> params dict."""

    @property
    def encoder(self) -> Encoder:
        """The vector views of this space (built once, lazily)."""
        cached = self.__dict__.get("_encoder")
        if cached is None:
            cached = self.__dict__["_encoder"] = Encoder(self.distributions)
        return cached

    @property
    def feature_names(self) -> list[str]:
        return self.encoder.feature_names

    def recipe_mask(self) -> np.ndarray:
        """Boolean mask over encoded columns: True where the column belongs to the recipe."""
        return self.encoder.feature_mask(self.recipe_names)

    def validate(self, params: Mapping[str, Any]) -> Params:
        return self.encoder.validate(params)

    def sample(self, rng: np.random.Generator) -> Params:
        """One uniform random candidate's params, from an injected Generator."""
        return self.encoder.from_unit(rng.random((1, len(self.encoder.names))))[0]

    def suggest(self, trial: optuna.trial.BaseTrial) -> Params:
        """Ask an Optuna trial for every parameter of the space (the sampler decides values)."""
        params: Params = {}
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                params[name] = trial.suggest_categorical(name, dist.choices)
            elif isinstance(dist, IntDistribution):
                params[name] = trial.suggest_int(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
            else:
                assert isinstance(dist, FloatDistribution)
                params[name] = trial.suggest_float(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
        return params

    def encode(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.encoder.encode(params_list)

    def decode_matrix(self, X: np.ndarray) -> list[Params]:
        return self.encoder.decode(X)

    def structure(self) -> dict[str, Any]:
        """JSON-able facts that shape candidates but are not searched (fixed strides, SE, ...);
        part of the fingerprint. Subclasses with such facts override this."""
        return {}

    def fingerprint(self) -> str:
        """Stable hash of the space's name, distributions and fixed structure: artifacts record
        it to refuse being loaded against a different space."""
        spec = {
            "name": self.name,
            "structure": self.structure(),
            "params": {
                n: json.loads(distribution_to_json(d)) for n, d in self.distributions.items()
            },
        }
        blob = json.dumps(spec, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class DistributionSpace(Space):
    """Any fixed Optuna search space as a jointnas Space, so samplers and predictors work on
    objectives that are not NAS. ``decode`` returns the validated params as the "arch"."""

    name = "distributions"

    def __init__(
        self,
        distributions: Mapping[str, BaseDistribution],
        *,
        recipe_names: Sequence[str] = (),
    ) -> None:
        self._dists = dict(distributions)
        self.recipe_names = tuple(recipe_names)
        self.encoder.feature_mask(self.recipe_names)  # validates the names

    @property
    def distributions(self) -> Mapping[str, BaseDistribution]:
        return self._dists

    def decode(self, params: Mapping[str, Any]) -> Candidate:
        return Candidate(self.validate(params), None)

    def to_params(self, candidate: Candidate) -> Params:
        return self.validate(candidate.arch)
