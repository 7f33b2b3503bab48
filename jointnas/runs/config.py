"""``RunConfig``: everything a JointNAS run needs, validated on construction.

Its own module so that the pipeline, the workers and calibration share it without importing
each other. The space is a registered name plus options (``jointnas.spaces.get_space``), so a
worker or a later rerun rebuilds it from what the study stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from jointnas.errors import ConfigError
from jointnas.runs.context import LimitSettings, RunSettings
from jointnas.runs.reward import MNASNET_EXPONENT, Reward
from jointnas.spaces import DEFAULT_SPACE, get_space
from jointnas.spaces.base import Space
from jointnas.storage.backends import check_multiprocess_storage
from jointnas.storage.devices import worker_devices

STAGES = ("coarse", "predictor", "fine", "final")


@dataclass(frozen=True, kw_only=True)
class RunConfig(RunSettings, LimitSettings):
    """Everything ``jointnas run`` needs; validated on construction. Storage, data, seed,
    device, batch size and heartbeat are ``RunSettings``'; the limits ``LimitSettings``'."""

    #: a registered space name (``jointnas spaces`` lists them) and its options
    space: str = DEFAULT_SPACE
    space_options: dict[str, Any] | None = None
    max_mflops: float | None = 2.0
    #: MnasNet reward target T: the study's value becomes accuracy * (MFLOPs / T) ^ w, a soft
    #: constraint beside the hard limits; None: the value is the accuracy
    target_mflops: float | None = None
    #: the reward's exponent w at or below T (MnasNet's alpha) and above it (beta)
    reward_alpha: float = MNASNET_EXPONENT
    reward_beta: float = MNASNET_EXPONENT
    trials: int = 20
    epochs: int = 2
    #: cosine schedule length when ``epochs`` stops early (calibrated runs); default ``epochs``
    schedule_epochs: int | None = None
    #: devices the local workers take in turn (``--devices cuda:0,cuda:1``); None: ``device``,
    #: spread over every visible GPU when it is auto/cuda
    devices: tuple[str, ...] | None = None
    predictor: str = "xgboost"
    fine_generations: int = 20
    fine_population: int = 64
    fine_children: int = 2048
    fine_record: int = 5
    final_top: int = 3
    final_epochs: int = 6
    out: str = "jointnas-out"
    stop_after: str = "final"
    #: architecture params to pin (AutoTrain: only the recipe is searched); passed to the
    #: space as its ``fix`` option, so the space must take one; None searches both
    fix_arch: dict | None = None
    #: "coarse" (Sobol start, then predictor-ranked) or "random" (uniform feasible candidates)
    coarse_sampler: str = "coarse"
    #: quasi-random coarse trials before the sampler's surrogate takes over; None: the
    #: sampler's default, min(searched params + 1, 10)
    startup_trials: int | None = None
    #: local worker processes for the coarse stage (needs PostgreSQL or a journal file)
    workers: int = 1

    POSITIVE: ClassVar[tuple[str, ...]] = ("trials", "epochs", "workers", "startup_trials")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (
        "fine_generations",
        "fine_record",
        "final_top",
        "final_epochs",
    )

    def check(self) -> None:
        super().check()
        if self.stop_after not in STAGES:
            raise ConfigError(f"unknown stage {self.stop_after!r}; choose one of {list(STAGES)}")
        if self.coarse_sampler not in ("coarse", "random"):
            raise ConfigError(
                f"coarse_sampler must be coarse or random, not {self.coarse_sampler!r}"
            )
        if self.predictor not in ("xgboost", "mlp"):
            raise ConfigError(f"--predictor must be xgboost or mlp, got {self.predictor!r}")
        for name in ("fine_population", "fine_children"):
            if getattr(self, name) < 2:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 2")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ConfigError(
                f"schedule_epochs ({self.schedule_epochs}) must be >= epochs ({self.epochs})"
            )
        check_multiprocess_storage(self.storage, self.workers)
        if self.target_mflops is None and (self.reward_alpha, self.reward_beta) != (
            MNASNET_EXPONENT,
            MNASNET_EXPONENT,
        ):
            raise ConfigError("--reward-exponent needs --target-mflops T (the reward's target)")
        try:
            self.reward  # noqa: B018 (validates the reward)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.devices is not None:
            if self.workers < 2:
                raise ConfigError("--devices spreads local workers: give it with --workers N > 1")
            worker_devices(self.device, self.workers, devices=self.devices)
        self.build_space()  # an unknown space or a bad option fails here, not mid-run

    def build_space(self) -> Space:
        """The space instance this run searches."""
        options = dict(self.space_options or {})
        if self.fix_arch:
            options["fix"] = dict(self.fix_arch)
        try:
            return get_space(self.space, **options)
        except ValueError as exc:
            what = "--fix-arch" if self.fix_arch else "--space"
            raise ConfigError(f"{what}: {exc}") from None

    @property
    def reward(self) -> Reward | None:
        """MnasNet's reward when ``target_mflops`` is set, else None (the value is accuracy)."""
        if self.target_mflops is None:
            return None
        return Reward(
            target_mflops=self.target_mflops, alpha=self.reward_alpha, beta=self.reward_beta
        )
