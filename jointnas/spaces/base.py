"""The contract every jointnas search space keeps, in one place.

A space is *data*: a fixed mapping name -> Optuna distribution, plus ``decode`` into frozen
dataclasses. Sampling, suggesting, encoding and fingerprinting are derived from the
distributions here, once. What a space module brings itself:

* ``distributions``, ``decode`` and its inverse ``to_params`` (the data);
* ``recipe_names``: the architecture/recipe split (``arch_names`` / ``arch_params``); the
  recipe decodes into the shared ``jointnas.Recipe`` (or None: the evaluator's default);
* ``cost(arch, ...)``: the exact analytic cost (MFLOPs, params, activations) of the network,
  and ``build_model(arch, ...)``: the torch network. Either as methods, or by declaring the
  class attribute ``network = Network(ArchType, build, cost)``: defining the class then
  enters the pair in the table behind ``jointnas.cost(arch)`` / ``jointnas.build_model``, so
  the registered name stays a space's one registration;
* ``cost_batch(X, ...)``: optionally, a vectorised twin over an encoded population (the base
  class falls back to ``cost`` row by row, so a space without one still works everywhere);
* ``smallest_params()`` / ``largest_params()``: the cheapest and dearest candidates (for the
  impossible-limit message and ``jointnas spaces``); the base class takes each numeric at its
  low (high) end and each categorical's first (last) choice, which a space overrides where cost
  is not monotone that way;
* optionally ``layers(arch, ...)``: the rows of ``jointnas describe`` (default: the network's
  top-level modules, counted by fvcore).

Spaces with a ``fix=`` option (pinning parameters, e.g. the whole architecture for AutoTrain)
split their spec with ``set_spec`` and finish ``to_params`` with ``searched``, so a pinned
name, the ``-fixed`` name suffix and ``recipe_names`` mean the same in all of them.

A space module registers a factory with ``jointnas.spaces.register`` when it is imported; the
pipeline, stages, objective, CLI, workers and predictors only ever see this contract, and
``jointnas.testing.check_space`` checks it.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import optuna
import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from jointnas.spaces.encoding import Encoder, Params, pin
from jointnas.spaces.nets.blocks import Cost, Part
from jointnas.spaces.nets.network import Network, add_network

COST_FIELDS = ("flops", "params", "acts")
#: appended to a space's ``name`` when ``fix`` pins parameters (artifacts written before spaces
#: were recorded with their options name the space this way: ``registry.space_from_legacy``)
FIXED_SUFFIX = "-fixed"
ArchT = TypeVar("ArchT")
RecipeT = TypeVar("RecipeT")


def layer_row(part: Part, block: str = "") -> dict[str, Any]:
    """One row of ``Space.layers`` (what ``jointnas describe`` prints): part name, output
    shape (channels only for the head), its analytic cost, and a short note on the block; one
    shape for every space."""
    size = int(part.size)
    return {
        "name": part.name,
        "out": [int(part.channels)] if part.name == "head" else [int(part.channels), size, size],
        "mflops": part.cost.flops / 1e6,
        "params": int(part.cost.params),
        "acts": int(part.cost.acts),
        "block": block,
    }


@dataclass(frozen=True)
class Candidate(Generic[ArchT, RecipeT]):
    """One point of a joint space: what to build and how to train it."""

    arch: ArchT
    recipe: RecipeT


class Space(ABC):
    """Base class: subclasses provide ``distributions``, ``decode``, ``to_params``, ``cost`` and
    ``build_model`` (see the module docstring for the rest of the contract)."""

    name: str = "space"
    #: parameters that describe training, not the network; predictors feed them to the accuracy
    #: head beside the architecture embedding. A pure-architecture space leaves this empty.
    recipe_names: tuple[str, ...] = ()
    #: the task ``jointnas spaces`` / ``describe`` size networks for when none is given
    default_task: Mapping[str, int] = {"num_classes": 10, "in_channels": 1}
    #: the architecture type this space decodes into, with its builder and exact cost; None
    #: when the space overrides ``cost`` and ``build_model`` itself
    network: ClassVar[Network | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that declares ``network`` enters it in the table of ``jointnas.cost`` and
        ``jointnas.build_model``: declaring it is the registration, nothing else to call."""
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("network")
        if declared is not None:
            add_network(declared, owner=f"{cls.__module__}.{cls.__qualname__}")

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

    # -- the network --------------------------------------------------------------------------
    def cost(self, arch: Any, *, num_classes: int, in_channels: int) -> Cost:
        """Exact analytic cost of ``build_model(arch, ...)``: flops (multiply-adds, fvcore's
        convention), params, activations. Default: ``jointnas.cost``, which finds the
        ``network`` declared for the architecture's type."""
        from jointnas.spaces.nets.cost import cost

        return cost(arch, num_classes=num_classes, in_channels=in_channels)

    def cost_batch(self, X: np.ndarray, *, num_classes: int, in_channels: int) -> Cost:
        """Cost of an encoded population (rows of ``encode``) as a Cost of int64 arrays. This
        fallback decodes row by row; spaces with a vectorised twin override it."""
        costs = [
            self.cost(self.decode(p).arch, num_classes=num_classes, in_channels=in_channels)
            for p in self.decode_matrix(np.asarray(X, dtype=float))
        ]
        return Cost(
            *(np.asarray([getattr(c, k) for c in costs], dtype=np.int64) for k in COST_FIELDS)
        )

    @property
    def vectorised_cost(self) -> bool:
        """True where ``cost_batch`` is a vectorised twin, not the row-by-row fallback."""
        return type(self).cost_batch is not Space.cost_batch

    def build_model(
        self, arch: Any, *, num_classes: int, in_channels: int, seed: int | None = None
    ) -> torch.nn.Module:
        """The torch network of ``arch``; with ``seed``, initialised reproducibly without
        touching the caller's global torch RNG. Default: ``jointnas.build_model`` (the
        declared ``network``)."""
        from jointnas.spaces.nets.model import build_model

        return build_model(arch, num_classes, in_channels, seed=seed)

    def layers(self, arch: Any, *, num_classes: int, in_channels: int) -> list[dict[str, Any]]:
        """Rows of ``jointnas describe``: one per top-level module of the network, with its
        output shape and fvcore's count of its flops/params/activations. Spaces with stages
        override this with their own analytic per-stage rows."""
        from jointnas.spaces.nets.layers import module_rows

        model = self.build_model(arch, num_classes=num_classes, in_channels=in_channels, seed=0)
        size = getattr(arch, "resolution", None) or 32
        return module_rows(model, in_channels=in_channels, resolution=size)

    # -- pinning ------------------------------------------------------------------------------
    def set_spec(self, spec: Mapping[str, Any], *, fix: Mapping[str, Any] | None) -> None:
        """Split ``spec`` (name -> distribution, or a plain value the layout fixes) and the
        user's ``fix`` into ``distributions`` (``_dists``), ``fixed`` (layout values and
        pinned ones) and ``pinned``; a space with pinned parameters is named ``...-fixed``,
        and ``recipe_names`` keeps only the class's recipe names still searched."""
        self._dists, self.fixed, self.pinned = pin(spec, fix, space=self.name)
        if self.pinned:
            self.name += FIXED_SUFFIX
        self.recipe_names = tuple(k for k in type(self).recipe_names if k in self._dists)

    def searched(self, flat: Mapping[str, Any]) -> Params:
        """The searched part of a complete params dict (``to_params``'s last step), refusing
        a value that contradicts a fixed one: such a candidate is not in this space."""
        for key, value in self.fixed.items():
            if flat.get(key) != value:
                raise ValueError(f"{key} = {flat.get(key)!r} but this space fixes it at {value!r}")
        return self.validate({k: v for k, v in flat.items() if k in self.distributions})

    def value_columns(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Encoded rows -> one array of *values* per parameter (categorical indices replaced
        by their choices), fixed ones broadcast: the input of a vectorised cost twin."""
        cols = dict(self.encoder.columns(np.asarray(X, dtype=float)))
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                cols[name] = np.asarray(dist.choices)[cols[name]]
        n = len(X)
        cols.update({k: np.full(n, v) for k, v in getattr(self, "fixed", {}).items()})
        return cols

    # -- candidates -----------------------------------------------------------------------------
    @property
    def arch_names(self) -> list[str]:
        """The searched parameters that describe the network (everything but the recipe)."""
        return [n for n in self.distributions if n not in self.recipe_names]

    def arch_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The architecture part of a params dict (what a pinned-architecture run takes)."""
        return {k: v for k, v in params.items() if k not in self.recipe_names}

    def smallest_params(self) -> Params:
        """The cheapest candidate (see the module docstring for the default rule)."""
        return self._corner(high=False)

    def largest_params(self) -> Params:
        """The most expensive candidate (see the module docstring for the default rule)."""
        return self._corner(high=True)

    def named_candidates(self) -> dict[str, Params]:
        """Named networks of this space (``jointnas describe --preset NAME``); spaces with
        published models add theirs."""
        return {"smallest": self.smallest_params(), "largest": self.largest_params()}

    def _corner(self, *, high: bool) -> Params:
        out: Params = {}
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                out[name] = dist.choices[-1 if high else 0]
            else:
                out[name] = dist.high if high else dist.low  # type: ignore[attr-defined]
        return out

    # -- identity -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The registered name this instance was made from (``get_space``), else ``name``."""
        return self.__dict__.get("_key", self.name)

    @property
    def options(self) -> dict[str, Any]:
        """The JSON-able options ``get_space(key, **options)`` rebuilds this instance with."""
        return dict(self.__dict__.get("_options", {}))

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

    def cost(self, arch: Any, *, num_classes: int, in_channels: int) -> Cost:
        """A plain Optuna space describes no network: NotImplementedError, which tells cost
        users (the neural predictor's proxy pretraining) to do without (also row by row)."""
        raise NotImplementedError(f"space {self.name!r} has no network, so no analytic cost")

    def build_model(
        self, arch: Any, *, num_classes: int, in_channels: int, seed: int | None = None
    ) -> torch.nn.Module:
        raise NotImplementedError(f"space {self.name!r} has no network to build")
