"""``jointnas edf``: sample, train and store the models that compare design spaces by their error
EDFs (Radosavovic et al., 2020, "Designing Network Design Spaces"; seed 003; the analysis is
``jointnas.designs.edf_analysis``).

The paper judges a design space by the error distribution of ``n`` models drawn uniformly from
it *inside one FLOPs band* (no space wins by being bigger), each trained briefly with *one*
recipe (only the design space differs). Here:

* **Sampling**: rejection sampling of the space's uniform draws by the analytic (vectorised)
  cost; a Generator seeded by (seed, space name), drawn as one stream, so the first k in-band
  candidates do not depend on ``n`` (a larger ``n`` extends a study); distinct architectures;
  capped, with an error saying how rare the band is.
* **One recipe**: ``jointnas.spaces.fixed_recipe.FixedRecipeSpace`` keeps the architecture
  parameters of any space and trains every candidate with the same ``Recipe`` (default
  ``Recipe()``, pycls's: SGD, lr 0.1 at batch 128, weight decay 5e-5, nothing else on),
  whether or not the space searches one; trials hold architecture params only.
* **Storage**: space S of run NAME is study ``NAME.edf.S``; the candidates are enqueued as
  WAITING trials (user attr ``edf_index``) and trained by the usual ``Objective`` +
  ``TrainFromScratch`` (cost attrs, heartbeat retry, per-epoch checkpoints, seeds from the
  candidate, duplicate guard), plus user attr ``error``. A rerun enqueues only what is neither
  done nor pending.
* **Workers**: ``jointnas worker`` joins coarse-search studies only (a run's sampler, budget
  and settings), so instead several ``jointnas edf`` processes with the same arguments on one
  storage (journal file or PostgreSQL) share the queue, each pulling WAITING trials until none
  is left. Two pulling the last one at once: the loser's fresh trial fails at once as
  ``skipped`` (never trained, no params).
"""

from __future__ import annotations

import contextlib
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.trial import TrialState

from jointnas.constraints import Band, DrawShortfall, cost_feasibility, draw_feasible, uniform_rows
from jointnas.designs.edf_analysis import write_report
from jointnas.errors import ConfigError, InfeasibleConstraintError
from jointnas.runs.context import RunContext, RunSettings, largest_resolution, load_data
from jointnas.runs.objective import CandidateRejected, Objective
from jointnas.spaces.base import Space
from jointnas.spaces.encoding import Params
from jointnas.spaces.fixed_recipe import FixedRecipeSpace
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.registry import get_space, space_record
from jointnas.storage import keys
from jointnas.training.data import Dataset
from jointnas.training.trainer import TrainingDiverged

#: rounds of enqueue -> train per space and invocation (a candidate whose trial was lost, e.g.
#: both of two twins stepped aside, is enqueued again in the next round)
MAX_ROUNDS = 3
DRAW_BATCH = 1024  # fixed: the in-band prefix must not depend on n
STATES = ("complete", "diverged", "pending", "missing")  #: of a candidate, best first
WAIT_POLL = 2.0  # seconds between looks at the trainings of other processes


class NoCandidateLeft(CandidateRejected):
    """``optimize`` made a fresh trial because another process took the last WAITING one."""


def draw_in_band(
    space: Space,
    band: tuple[float, float],
    *,
    n: int,
    task: Mapping[str, int],
    seed: int,
    max_draws: int = 100_000,
) -> list[Params]:
    """The first ``n`` distinct architectures (params of ``space.arch_names``) among seeded
    uniform draws of ``space`` whose analytic MFLOPs lie in ``band`` (inclusive).

    Deterministic in (space name and definition, band, task, seed); a prefix of the result for
    a larger ``n``. InfeasibleConstraintError when the band misses the space or fewer than
    ``n`` distinct in-band candidates turn up in ``max_draws`` draws.
    """
    low, high = band
    enc = space.encoder
    try:  # the span of the space, for a fast check and the messages
        smallest, largest = (
            float(space.cost(space.decode(p).arch, **task).mflops)
            for p in (space.smallest_params(), space.largest_params())
        )
    except NotImplementedError as exc:
        raise ConfigError(f"space {space.key!r} cannot be sampled by FLOPs: {exc}") from None
    if high < smallest or low > largest:
        raise InfeasibleConstraintError(
            f"--mflops-band {low:g},{high:g} misses space {space.key!r}: its candidates span "
            f"{smallest:g}..{largest:g} MFLOPs for {task['num_classes']} classes, "
            f"{task['in_channels']} input channel(s)"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(space.key.encode())]))
    try:
        X = draw_feasible(
            uniform_rows(enc, rng),
            n,
            cost_feasibility(space, band=Band(low, high), **task),
            max_draws=max_draws,
            first=DRAW_BATCH,
            distinct=lambda X: [keys.params_key(space.arch_params(p)) for p in enc.decode(X)],
        )
    except DrawShortfall as short:
        raise InfeasibleConstraintError(
            f"space {space.key!r}: {short.accepted} of {short.drawn} uniform draws fell in the "
            f"band {low:g}..{high:g} MFLOPs ({short.kept} distinct), fewer than --n {n}; widen "
            f"the band or lower --n (the space spans {smallest:g}..{largest:g} MFLOPs)"
        ) from None
    return [space.arch_params(p) for p in enc.decode(X)]


@dataclass(frozen=True, kw_only=True)
class EDFConfig(RunSettings):
    """Everything ``jointnas edf`` needs; validated on construction (ConfigError, one line).
    Storage, data, seed, device, batch size and heartbeat are the shared ``RunSettings``."""

    spaces: tuple[str, ...]
    mflops_band: tuple[float, float]
    n: int = 100
    epochs: int = 2
    out: str = "edf-out"
    recipe: Recipe = field(default_factory=Recipe)
    resamples: int = 1000
    level: float = 0.95
    max_draws: int = 100_000
    #: after the queue is empty, wait for the trainings other processes still run (a dead
    #: one's is failed by the heartbeat and retrained here), so every process's report is whole
    wait: bool = True

    POSITIVE: ClassVar[tuple[str, ...]] = ("epochs", "resamples", "max_draws")
    ARGS: ClassVar[dict[str, str]] = {"spaces": "space"}

    def check(self) -> None:
        super().check()
        if not self.spaces or len(set(self.spaces)) != len(self.spaces):
            raise ConfigError(f"--space needs distinct space names, got {list(self.spaces)}")
        low, high = self.mflops_band
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or not low < high:
            raise ConfigError(f"--mflops-band {low:g},{high:g}: need 0 <= LO < HI (finite MFLOPs)")
        if self.n < 2:
            raise ConfigError(f"--n must be >= 2 (an EDF needs several models), got {self.n}")
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"the bootstrap level must be in (0, 1), got {self.level}")
        self.build_spaces()  # an unknown space fails here, before any data or storage

    def build_spaces(self) -> dict[str, Space]:
        """The registered spaces by name (ConfigError naming the registered ones)."""
        out = {}
        for name in self.spaces:
            try:
                out[name] = get_space(name)
                FixedRecipeSpace(out[name], self.recipe)
            except ValueError as exc:
                raise ConfigError(f"--space: {exc}") from None
        return out


def edf_study_name(study_name: str, space: str) -> str:
    """The study holding the EDF models of ``space`` for run ``study_name``."""
    return f"{study_name}.{keys.EDF}.{space}"


def index_states(study: optuna.Study, n: int) -> list[str]:
    """Per candidate index < n: 'complete', 'diverged' (trained, failed with a reason: not
    retrained), 'pending' (WAITING or RUNNING somewhere) or 'missing'; the best state of the
    candidate's trials wins."""
    rank = {s: r for r, s in enumerate(reversed(STATES))}
    best = ["missing"] * n
    for t in study.get_trials(deepcopy=False):
        i = t.user_attrs.get(keys.EDF_INDEX)
        if not isinstance(i, int) or not 0 <= i < n:
            continue
        if t.state == TrialState.COMPLETE:
            state = "complete"
        elif t.state == TrialState.FAIL and keys.FAIL_REASON in t.user_attrs:
            state = "diverged"
        elif t.state in (TrialState.WAITING, TrialState.RUNNING):
            state = "pending"
        else:
            continue  # interrupted, killed or skipped: not done
        if rank[state] > rank[best[i]]:
            best[i] = state
    return best


@dataclass(frozen=True)
class EDFObjective:
    """``Objective`` for enqueued EDF candidates only, recording ``error`` = 1 - accuracy."""

    objective: Objective

    def __call__(self, trial: optuna.Trial) -> float:
        if keys.EDF_INDEX not in trial.user_attrs:
            reason = "no EDF candidate was waiting (another process took the last); not trained"
            trial.set_user_attr(keys.SKIPPED, reason)
            raise NoCandidateLeft(reason)
        accuracy = self.objective(trial)
        trial.set_user_attr(keys.ERROR, 1.0 - float(accuracy))
        return accuracy


def _waiting(study: optuna.Study, n: int) -> bool:
    return any(
        0 <= t.user_attrs.get(keys.EDF_INDEX, -1) < n
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    )


def train_space(
    study: optuna.Study,
    candidates: Sequence[Params],
    objective: EDFObjective,
    *,
    progress: bool = True,
    desc: str = "edf",
) -> list[str]:
    """Enqueue the candidates that are neither done nor pending, then train WAITING trials
    until none is left (other processes may be pulling from the same queue); return the final
    ``index_states``."""
    n = len(candidates)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc)

    def refresh(*_: Any) -> None:  # also an optimize callback (study, trial)
        if bar is not None:
            bar.n = sum(s in ("complete", "diverged") for s in index_states(study, n))
            bar.refresh()

    try:
        for _ in range(MAX_ROUNDS):
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # killed trainings -> WAITING retries
            states = index_states(study, n)
            refresh()
            missing = [i for i, s in enumerate(states) if s == "missing"]
            for i in missing:
                study.enqueue_trial(
                    dict(candidates[i]), user_attrs={keys.EDF_INDEX: i, keys.STAGE: keys.EDF}
                )
            while _waiting(study, n):
                study.optimize(
                    objective,
                    n_trials=1,
                    catch=(TrainingDiverged, CandidateRejected),
                    callbacks=[refresh],
                )
            if "missing" not in index_states(study, n):
                break
    finally:
        if bar is not None:
            bar.close()
    return index_states(study, n)


def collect_rows(study: optuna.Study, space: str, n: int) -> list[dict[str, Any]]:
    """One row per trained candidate index < n (its first completed trial), by index."""
    first: dict[int, optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        i = t.user_attrs.get(keys.EDF_INDEX)
        if isinstance(i, int) and 0 <= i < n and (i not in first or t.number < first[i].number):
            first[i] = t
    return [
        {
            "space": space,
            "trial": t.number,
            "index": i,
            "error": float(t.user_attrs.get(keys.ERROR, 1.0 - t.value)),
            **{k: t.user_attrs.get(k) for k in keys.COST_KEYS},
        }
        for i, t in sorted(first.items())
    ]


def open_edf_study(ctx: RunContext, config: EDFConfig, space: Space) -> optuna.Study:
    """Create or load the EDF study of ``space``, stamped with what fixes its candidates and
    their training (refused when it holds other settings; ``n`` may change: it takes a prefix
    or extends it)."""
    data = ctx.data
    return ctx.open_study(
        keys.EDF,
        {
            keys.EDF_SPACE: space_record(space),
            keys.EDF_BAND: [float(v) for v in config.mflops_band],
            keys.EDF_RECIPE: {**asdict(config.recipe), "batch_size": config.batch_size},
            keys.EPOCHS: config.epochs,
            keys.DATASET: data.name,
            keys.TASK: ctx.task,
            keys.SEED: config.seed,
        },
        name=edf_study_name(config.study_name, space.key),
        sampler=optuna.samplers.RandomSampler(seed=config.seed),  # only enqueued trials run
        pruner=optuna.pruners.NopPruner(),  # every model trains its full E epochs
    )


@dataclass(frozen=True)
class EDFResult:
    """What ``run_edf`` did: the studies, the rows analysed, the report, per-space states."""

    studies: dict[str, optuna.Study]
    rows: list[dict[str, Any]]
    report: dict[str, Any]
    states: dict[str, dict[str, int]]


def run_edf(config: EDFConfig, *, data: Dataset | None = None, progress: bool = True) -> EDFResult:
    """Draw, train (resuming: only what is missing) and analyse the EDF models of every space
    of ``config``; write the report into ``config.out``. Every space's candidates are drawn
    before the storage is opened, so a band that fails for any space changes nothing."""
    spaces = config.build_spaces()
    if data is None:
        sizes = [largest_resolution(space) or 0 for space in spaces.values()]
        data = load_data(config, image_size=max(sizes) or None)
    task = {"num_classes": data.num_classes, "in_channels": data.in_channels}
    draws = {
        key: draw_in_band(
            space, config.mflops_band, n=config.n, task=task, seed=config.seed,
            max_draws=config.max_draws,
        )
        for key, space in spaces.items()
    }  # fmt: skip
    ctx = RunContext.open(config, data=data)
    evaluator = ctx.evaluator(config.epochs)
    checkpoints = Path(config.out) / "checkpoints"
    studies = {key: open_edf_study(ctx, config, space) for key, space in spaces.items()}
    objectives = {
        key: EDFObjective(
            Objective(
                space=FixedRecipeSpace(space, config.recipe),
                evaluator=evaluator,
                seed=config.seed,
                stage=keys.EDF,
                # per-epoch state: a killed training resumes; seeds then come from the candidate
                checkpoint_dir=str(checkpoints / key),
            )
        )
        for key, space in spaces.items()
    }
    first = first_wait = True
    while True:  # until no model is pending in another process (see ``EDFConfig.wait``)
        states = {}
        for key in spaces:
            final = train_space(
                studies[key], draws[key], objectives[key], progress=progress and first, desc=key
            )
            states[key] = {s: final.count(s) for s in STATES}
        pending = sum(st["pending"] for st in states.values())
        missing = sum(st["missing"] for st in states.values())
        if not pending or missing or not config.wait or config.heartbeat is None:
            break
        if progress and first_wait:
            print(f"waiting for {pending} model(s) that other processes are training")
        first = first_wait = False
        time.sleep(WAIT_POLL)
    for folder in (*(checkpoints / key for key in spaces), checkpoints):
        with contextlib.suppress(OSError):  # gone, or not empty: a killed training's state
            folder.rmdir()
    rows = [r for key, study in studies.items() for r in collect_rows(study, key, config.n)]
    low, high = config.mflops_band
    report = write_report(
        rows,
        config.out,
        spaces=list(spaces),
        resamples=config.resamples,
        level=config.level,
        seed=config.seed,
        title=f"{config.n} models per space, {low:g}-{high:g} MFLOPs, "
        f"{config.epochs} epoch(s) on {data.name}",
        settings={  # not the storage URL: it may hold a password
            **{k: v for k, v in asdict(config).items() if k != "storage"},
            "dataset_name": data.name,
            "studies": {key: study.study_name for key, study in studies.items()},
            "states": states,
        },
    )
    return EDFResult(studies=studies, rows=rows, report=report, states=states)
