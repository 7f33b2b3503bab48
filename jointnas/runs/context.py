"""The run skeleton every driver shares: settings, then storage + data + evaluator + studies.

``jointnas run``, ``edf``, ``scale`` and ``supernet search`` each used to open the storage,
load the data, build a ``TrainFromScratch`` and stamp their studies in their own way. Each now
declares its config as a ``RunSettings`` (the fields every run has, validated once) and
opens a ``RunContext`` from it, which:

* opens the storage first (a bad URL fails before the slower data loading) and loads the data,
* builds the evaluator with the config's device and batch size,
* builds the limits (``LimitSettings``) and the stamp every study of a run carries,
* opens each stage's study through ``storage.layout.open_stage_study``: the one way a study is
  created, stamped, refused when it holds other settings, and linked to its run.

So a new driver is its own loop over a context, and a setting shared by every driver (a
storage option, a second data path, a latency limit) is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import optuna

from jointnas.constraints import Limits
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.storage import keys
from jointnas.storage.backends import open_storage
from jointnas.storage.layout import open_stage_study
from jointnas.validated import Validated

if TYPE_CHECKING:
    from jointnas.evaluators import TrainFromScratch
    from jointnas.runs.reward import Reward
    from jointnas.samplers.support import Constraint
    from jointnas.spaces.base import Space
    from jointnas.training.data import ImageData


@dataclass(frozen=True, kw_only=True)
class RunSettings(Validated):
    """What every run has: where it is stored, on which data, with which seed and device."""

    storage: str = "sqlite:///jointnas.db"
    study_name: str = "jointnas"
    dataset: str = "mnist5k"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 128
    #: seconds between a running trial's heartbeats (a killed training is retried); None: off
    heartbeat: int | None = 60
    #: "auto" | "memory" | "stream": how the data is held (``training.data.load_dataset``)
    data_mode: str = "auto"
    #: base train-time augmentation ("auto": by source, ``training.augment.parse_augment``)
    augment: str = "auto"
    #: stored resolution of an image folder held in memory (None: the space's largest, or 32)
    image_size: int | None = None
    #: processes of the streaming loader (None: the CPUs less one, at most 8)
    loader_workers: int | None = None
    #: cap on the steps of every training epoch (a smoke test of a large set); None: all
    max_steps_per_epoch: int | None = None

    POSITIVE: ClassVar[tuple[str, ...]] = (
        "batch_size",
        "heartbeat",
        "image_size",
        "max_steps_per_epoch",
    )
    NAMES: ClassVar[tuple[str, ...]] = ("study_name",)
    ARGS: ClassVar[dict[str, str]] = {"study_name": "study", "data_mode": "data"}

    def check(self) -> None:
        super().check()
        if self.loader_workers is not None and self.loader_workers < 0:
            raise ConfigError(f"--loader-workers must be >= 0, got {self.loader_workers}")
        from jointnas.training.trainer import resolve_device  # torch: only when a run is made

        try:
            resolve_device(self.device)
        except (ValueError, RuntimeError) as exc:  # torch raises RuntimeError for "gpu"
            raise ConfigError(f"--device {self.device!r}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True, kw_only=True)
class LimitSettings(Validated):
    """The hard resource limits of a search (``constraints.Limits``), as config fields."""

    max_mflops: float | None = None
    max_params: int | None = None
    max_acts: int | None = None
    #: RegNet's complexity limits relative to each candidate's FLOPs f (GF): acts <= 6.5 sqrt(f)
    #: M, params <= 3 + 5.5 f M (``Limits.regnet``)
    regnet_limits: bool = False

    def check(self) -> None:
        super().check()
        try:
            self.limits  # noqa: B018 (validates the limits)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def limits(self) -> Limits:
        return Limits(
            mflops=self.max_mflops,
            params=self.max_params,
            acts=self.max_acts,
            regnet=self.regnet_limits,
        )


def check_reachable(
    space: Space, limits: Limits, task: Mapping[str, int], constraint: Constraint, seed: int
) -> None:
    """Refuse a limit below the cheapest candidate, naming the smallest reachable cost, or one
    so tight that random draws find no feasible candidate: checked once, by whoever starts a
    search, before any trial exists, so a refused run leaves the storage as it was."""
    from jointnas.samplers import sample_feasible

    smallest = space.cost(space.decode(space.smallest_params()).arch, **task)
    values = limits.fixed_values(smallest)  # RegNet's limits scale with FLOPs: not monotone
    for (key, limit), value in zip(limits.active().items(), values, strict=True):
        if value > 0:
            reachable = smallest.mflops if key == "mflops" else getattr(smallest, key)
            raise InfeasibleConstraintError(
                f"--max-{key} {limit:g} is impossible: the smallest candidate of space "
                f"{space.key!r} needs {reachable:g} {key}"
            )
    try:
        sample_feasible(space.encoder, constraint, np.random.default_rng(seed))
    except InfeasibleConstraintError as exc:
        raise InfeasibleConstraintError(
            f"limits {limits.describe()} are too tight to search: {exc} (the smallest candidate "
            f"needs {smallest.mflops:g} mflops, {smallest.params} params)"
        ) from None


#: the RunSettings fields that change what a training sees (stamped; workers read them back)
DATA_FIELDS = ("data_mode", "augment", "image_size", "max_steps_per_epoch")


def load_data(settings: RunSettings, *, image_size: int | None = None) -> ImageData:
    """The data ``settings`` name, held and augmented as they say."""
    from jointnas.training.data import load_dataset

    return load_dataset(
        settings.dataset,
        seed=settings.seed,
        mode=settings.data_mode,
        augment=settings.augment,
        image_size=settings.image_size or image_size,
        workers=settings.loader_workers,
    )


def largest_resolution(space: Space) -> int | None:
    """The input size of ``space``'s largest candidate (None when its archs have none)."""
    return getattr(space.decode(space.largest_params()).arch, "resolution", None)


@dataclass(frozen=True)
class RunContext:
    """An opened run: its settings, storage and data, and the studies and evaluators of it."""

    settings: RunSettings
    storage: optuna.storages.BaseStorage
    data: ImageData

    @classmethod
    def open(
        cls,
        settings: RunSettings,
        *,
        data: ImageData | None = None,
        storage: optuna.storages.BaseStorage | None = None,
        image_size: int | None = None,
    ) -> RunContext:
        """Open ``settings.storage`` (first: a bad URL fails before the data is loaded; beats
        let a killed run's trial be retried), then load ``settings.dataset`` unless ``data``
        is given (tests and Python callers pass a subset). ``image_size``: the stored
        resolution of an in-memory image folder when the settings name none (a driver passes
        its space's largest resolution)."""
        if storage is None:
            storage = open_storage(settings.storage, heartbeat=settings.heartbeat)
        if data is None:
            data = load_data(settings, image_size=image_size)
        return cls(settings=settings, storage=storage, data=data)

    @property
    def task(self) -> dict[str, int]:
        """What a candidate's cost and network depend on besides itself."""
        return {"num_classes": self.data.num_classes, "in_channels": self.data.in_channels}

    @property
    def limits(self) -> Limits:
        """The settings' hard limits; none for a run without limit fields."""
        return self.settings.limits if isinstance(self.settings, LimitSettings) else Limits()

    def evaluator(
        self, epochs: int, *, schedule_epochs: int | None = None, **options: Any
    ) -> TrainFromScratch:
        """Train-from-scratch scoring on this run's data, device and batch size for ``epochs``
        (a cosine schedule of ``schedule_epochs``, default ``epochs``, cut at ``epochs``)."""
        from jointnas.evaluators import TrainFromScratch

        return TrainFromScratch(
            data=self.data,
            epochs=epochs,
            device=self.settings.device,
            batch_size=self.settings.batch_size,
            train_kwargs={
                "schedule_epochs": schedule_epochs or epochs,
                "max_steps_per_epoch": self.settings.max_steps_per_epoch,
            },
            **options,
        )

    def stamp(self, space: Space, reward: Reward | None = None) -> dict[str, Any]:
        """Settings every study of a search of ``space`` carries: a rerun with others is
        refused, not mixed. The reward says what the studies' values are (None: accuracies)."""
        from jointnas.spaces.registry import space_record

        return {
            keys.REWARD: None if reward is None else reward.record(),
            keys.SPACE: space.key,
            keys.SPACE_RECORD: space_record(space),
            keys.SPACE_FINGERPRINT: space.fingerprint(),
            keys.DATASET: self.data.name,
            keys.DATA_SETTINGS: {k: getattr(self.settings, k) for k in DATA_FIELDS},
            keys.TASK: self.task,
            keys.SEED: self.settings.seed,
        }

    def open_study(
        self, stage: str, settings: Mapping[str, Any], *, name: str | None = None, **create: Any
    ) -> optuna.Study:
        """The study of ``stage`` of this run (``name`` when it is not ``NAME.stage``),
        stamped with ``settings``; ``create``: Optuna's ``create_study`` options."""
        return open_stage_study(
            self.storage, self.settings.study_name, stage, settings, name=name, **create
        )
