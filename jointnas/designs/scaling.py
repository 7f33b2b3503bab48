"""Compound scaling of a found network (EfficientNet, Tan & Le 2019, seed 004).

EfficientNet scales depth, width and resolution together: d = alpha^phi, w = beta^phi,
r = gamma^phi with alpha * beta^2 * gamma^2 ~= 2, so each unit of phi about doubles the FLOPs.
The two steps of the paper, on any architecture of the ``efficientnet`` space:

1. **find (alpha, beta, gamma)**: an Optuna ``GridSampler`` study (one study, ``NAME``) over a
   grid of alpha and beta in steps of 0.05; gamma is derived from the FLOPs budget
   (sqrt(ratio / (alpha beta^2)), rounded to ``gamma_step``) and a grid point whose product
   misses the budget by more than ``tolerance`` (or needs gamma < 1) is pruned untrained; each
   kept point trains the phi = 1 model briefly and scores its validation accuracy;
2. **scale and compare**: for each phi, the compound model and the depth-only, width-only and
   resolution-only models of the same *realised* FLOPs (each single coefficient found by
   bisection on the exact analytic cost, since rounding makes FLOPs a step function of the
   multipliers), all trained with the same budget and seeds, in study ``NAME.compare``.

Scaling changes only the three numbers of an ``EfficientNetArch`` (timm's way: multipliers
applied while decoding), with the reference rounding of widths and depths; the resolution is
rounded to the nearest pixel (the paper's published resolutions were picked by hand). Every
training goes through ``jointnas.evaluators.TrainFromScratch``; all state is in the storage, so
a rerun resumes and only trains what is missing. ``scale(config)`` is the one entry point.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd

from jointnas import files
from jointnas.designs.compound import RULES, Coefficients, compound, derive_gamma, match_flops
from jointnas.errors import ConfigError
from jointnas.runs.context import RunContext, RunSettings
from jointnas.spaces.base import Candidate
from jointnas.spaces.efficientnet import EfficientNetSpace
from jointnas.spaces.nets.efficientnet import EfficientNetArch, arch_cost
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.registry import get_space, space_from_record
from jointnas.storage import keys
from jointnas.storage.candidates import read_arch
from jointnas.storage.keys import trial_seed
from jointnas.training.data import Dataset
from jointnas.training.trainer import TrainingDiverged

_STEPS = 0.05  # the paper's grid step


def _grid(low: float, high: float) -> tuple[float, ...]:
    return tuple(round(low + _STEPS * k, 6) for k in range(round((high - low) / _STEPS) + 1))


def load_base(path: str | Path) -> tuple[EfficientNetSpace, EfficientNetArch, Recipe | None]:
    """The base network of an arch JSON (``best.json``, ``jointnas export``'s
    ``candidate.json``, or a params dict): its space from the recorded one (default
    ``efficientnet``), its architecture, and its recipe when the file holds every recipe key
    (None: the evaluator's default recipe)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None  # read_arch below names the problem
    record = data.get("space") if isinstance(data, dict) else None
    try:
        if isinstance(record, dict) and "name" in record:
            space = space_from_record(record)
        else:
            space = get_space("efficientnet")
    except ValueError as exc:
        raise ConfigError(f"--base: {exc}") from None
    if not isinstance(space, EfficientNetSpace):
        raise ConfigError(f"--base: compound scaling needs an efficientnet arch, not {space.key!r}")
    arch_params = read_arch(path, space, option="--base")
    params = data.get("params", data) if isinstance(data, dict) else {}
    names = space.recipe_names
    recipe_given = all(k in params for k in names)
    full = {**space.smallest_params(), **arch_params}
    if recipe_given:
        full.update({k: params[k] for k in names})
    cand = space.decode(full)
    return space, cand.arch, cand.recipe if recipe_given else None


@dataclass(frozen=True, kw_only=True)
class ScaleConfig(RunSettings):
    """Everything ``jointnas scale`` needs; validated on construction. Storage, data, seed,
    device and batch size are the shared ``RunSettings``."""

    base: str
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    study_name: str = "scale"
    #: one process trains every model in turn: no heartbeat
    heartbeat: int | None = None
    #: epochs of each grid-search training (phi = 1) and of each compared model
    search_epochs: int = 1
    epochs: int = 2
    alphas: tuple[float, ...] = _grid(1.0, 1.4)
    betas: tuple[float, ...] = _grid(1.0, 1.3)
    flops_ratio: float = 2.0
    gamma_step: float | None = _STEPS
    tolerance: float = 0.05
    #: (alpha, beta, gamma) to use as given: skips the grid search
    coefficients: tuple[float, float, float] | None = None
    #: trainings per model (seeds shared by every model, so the comparison is paired)
    seeds: int = 1
    out: str = "jointnas-scale"

    POSITIVE: ClassVar[tuple[str, ...]] = ("search_epochs", "epochs", "seeds")
    ARGS: ClassVar[dict[str, str]] = {"phis": "phi"}

    def check(self) -> None:
        if not self.phis or any(not (p > 0) for p in self.phis):
            raise ConfigError(f"--phi values must be > 0, got {list(self.phis)}")
        super().check()
        if not self.alphas or not self.betas or min(*self.alphas, *self.betas) < 1:
            raise ConfigError("the alpha and beta grids must be non-empty and >= 1")
        if self.flops_ratio <= 1 or self.tolerance < 0:
            raise ConfigError("flops_ratio must be > 1 and tolerance >= 0")
        if self.coefficients is not None and (
            len(self.coefficients) != 3 or min(self.coefficients) < 1
        ):
            raise ConfigError(f"--coefficients must be three numbers >= 1: {self.coefficients}")


@dataclass(frozen=True)
class ScaleResult:
    """What ``scale`` found and wrote: the coefficients, the grid and comparison tables."""

    coefficients: Coefficients
    grid: pd.DataFrame
    table: pd.DataFrame
    csv: Path
    png: Path


def _open(
    ctx: RunContext,
    stage: str,
    settings: dict[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """The study of ``stage`` (the grid: NAME itself; the comparison: NAME.compare), stamped
    with ``settings`` under ``keys.SCALE_SETTINGS``; a rerun with others is refused."""
    name = ctx.settings.study_name
    return ctx.open_study(
        stage,
        {keys.SCALE_SETTINGS: json.loads(json.dumps(settings))},  # as the storage gives it back
        name=name if stage == keys.SCALE else f"{name}.compare",
        sampler=sampler,
    )


class _Trainer:
    """Trains an architecture with the base's recipe on the shared seeds: mean accuracy."""

    def __init__(self, ctx: RunContext, space: EfficientNetSpace, recipe: Recipe | None) -> None:
        self.ctx, self.space, self.recipe = ctx, space, recipe
        self.config: ScaleConfig = ctx.settings  # type: ignore[assignment]
        self.task = ctx.task

    def settings(self, base: EfficientNetArch) -> dict[str, Any]:
        """What both studies are stamped with: the base, the data and the training seeds."""
        c = self.config
        out = {"base": dataclasses.asdict(base), "dataset": self.ctx.data.name, "seed": c.seed}
        return {**out, "seeds": c.seeds, "batch_size": c.batch_size}

    def __call__(self, arch: EfficientNetArch, epochs: int) -> dict[str, Any]:
        evaluator = self.ctx.evaluator(epochs)
        runs = [
            evaluator.evaluate(
                self.space, Candidate(arch, self.recipe), seed=trial_seed(self.config.seed, k)
            )
            for k in range(self.config.seeds)
        ]
        c = arch_cost(arch, **self.task)
        return {
            "val_acc": float(np.mean([r.value for r in runs])),
            "val_accs": [r.value for r in runs],
            "train_seconds": round(sum(r.attrs["train_seconds"] for r in runs), 2),
            "mflops": c.flops / 1e6,
            "params": c.params,
            "resolution": arch.resolution,
            "width_mult": arch.width_mult,
            "depth_mult": arch.depth_mult,
            "blocks": sum(arch.depths),
        }


def search_coefficients(
    config: ScaleConfig, base: EfficientNetArch, train: _Trainer, *, progress: bool = False
) -> tuple[Coefficients, pd.DataFrame]:
    """Step 1: the GridSampler study over (alpha, beta) at phi = 1; the best kept point."""
    settings = {**train.settings(base), "epochs": config.search_epochs, "ratio": config.flops_ratio}
    settings.update(gamma_step=config.gamma_step, tolerance=config.tolerance)
    grid = {"alpha": list(config.alphas), "beta": list(config.betas)}
    sampler = optuna.samplers.GridSampler(grid, seed=config.seed)
    study = _open(train.ctx, keys.SCALE, settings, sampler)
    base_flops = arch_cost(base, **train.task).flops

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", min(config.alphas), max(config.alphas))
        beta = trial.suggest_float("beta", min(config.betas), max(config.betas))
        gamma = derive_gamma(
            alpha, beta, flops_ratio=config.flops_ratio, gamma_step=config.gamma_step
        )
        c = Coefficients(alpha, beta, gamma)
        trial.set_user_attr("gamma", c.gamma)
        trial.set_user_attr("product", c.product)
        if c.gamma < 1 or abs(c.product / config.flops_ratio - 1) > config.tolerance:
            trial.set_user_attr(keys.SKIPPED, "gamma < 1 or alpha*beta^2*gamma^2 off the budget")
            raise optuna.TrialPruned()
        attrs = train(compound(base, 1.0, c), config.search_epochs)
        attrs["realised_ratio"] = attrs["mflops"] * 1e6 / base_flops
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return attrs["val_acc"]

    points = {(a, b) for a in config.alphas for b in config.betas}
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = {
        (t.params["alpha"], t.params["beta"])
        for t in study.get_trials(deepcopy=False, states=states)
    }
    if points - done:  # the GridSampler proposes only the points not yet visited
        study.optimize(
            objective,
            n_trials=len(points - done),
            catch=(TrainingDiverged,),
            show_progress_bar=progress,
        )
    rows = [
        {**t.params, "state": t.state.name, "value": t.value, **t.user_attrs}
        for t in study.get_trials(deepcopy=False)
        if t.params
    ]
    scored = [r for r in rows if r["state"] == "COMPLETE" and (r["alpha"], r["beta"]) in points]
    if not scored:
        raise ConfigError(f"no grid point of study {config.study_name!r} kept the FLOPs budget")
    best = max(scored, key=lambda r: r["value"])
    return Coefficients(best["alpha"], best["beta"], best["gamma"]), pd.DataFrame(rows)


def compare(
    config: ScaleConfig,
    base: EfficientNetArch,
    c: Coefficients,
    train: _Trainer,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Step 2: base, compound and FLOPs-matched single-dimension models, one trial each in
    study ``NAME.compare`` (resumed by rule and phi); their table."""
    settings = {**train.settings(base), "epochs": config.epochs, "coefficients": c.__dict__}
    study = _open(train.ctx, keys.SCALE_COMPARE, settings)
    finished = {
        (t.user_attrs["rule"], t.user_attrs["phi"]): t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    }
    base_mflops = arch_cost(base, **train.task).flops / 1e6
    jobs: list[tuple[str, float, float, EfficientNetArch, float]] = [
        ("base", 0.0, 1.0, base, base_mflops)
    ]
    for phi in sorted(set(config.phis)):
        target = compound(base, phi, c)
        target_flops = arch_cost(target, **train.task).flops
        jobs.append(("compound", phi, phi, target, target_flops / 1e6))
        for rule in RULES[1:]:
            coef, arch = match_flops(base, rule, target_flops, **train.task)
            jobs.append((rule, phi, coef, arch, target_flops / 1e6))
    from tqdm.auto import tqdm

    todo = [job for job in jobs if (job[0], job[1]) not in finished]
    for rule, phi, coef, arch, target_mflops in tqdm(todo, desc="models", disable=not progress):
        trial = study.ask()
        attrs = {"rule": rule, "phi": phi, "coefficient": coef, "target_mflops": target_mflops}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        try:
            result = train(arch, config.epochs)
        except TrainingDiverged as exc:
            trial.set_user_attr(keys.FAIL_REASON, f"diverged: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        for key, value in result.items():
            trial.set_user_attr(key, value)
        study.tell(trial, result["val_acc"])
    wanted = {(rule, phi) for rule, phi, *_ in jobs}
    rows = [
        {k: v for k, v in t.user_attrs.items() if k != "val_accs"}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if (t.user_attrs["rule"], t.user_attrs["phi"]) in wanted
    ]
    return pd.DataFrame(rows).sort_values(["phi", "rule"], kind="stable").reset_index(drop=True)


def plot_scaling(table: pd.DataFrame, path: str | Path, *, title: str) -> Path:
    """Accuracy vs MFLOPs, one line per scaling rule, each starting at the base network."""
    from jointnas.plotting import axes, save

    fig, ax = axes()
    base = table[table["rule"] == "base"]
    for rule, marker in zip(RULES, "os^v", strict=True):
        line = pd.concat([base, table[table["rule"] == rule]]).sort_values("mflops")
        ax.plot(line["mflops"], line["val_acc"], f"{marker}-", label=rule)
    for _, row in table[table["rule"] == "compound"].iterrows():
        ax.annotate(f"φ={row['phi']:g}", (row["mflops"], row["val_acc"]), fontsize=7)
    ax.set(xlabel="MFLOPs (realised)", ylabel="validation accuracy", title=title)
    ax.legend(loc="best")
    return save(fig, path)


def scale(
    config: ScaleConfig, *, data: Dataset | None = None, progress: bool = False
) -> ScaleResult:
    """Compound scaling end to end (what ``jointnas scale --base ARCH.json --phi 1,2,3`` runs):
    load the base network, find (alpha, beta, gamma) by the grid study unless
    ``config.coefficients`` gives them, train and compare the scaled models, and write
    ``scaling.csv``, ``grid.csv`` and ``scaling.png`` into ``config.out``. ``data`` overrides
    ``config.dataset`` (tests pass a subset); ``progress`` shows bars. Resumes from the
    storage."""
    space, base, recipe = load_base(config.base)
    ctx = RunContext.open(config, data=data)
    data = ctx.data
    train = _Trainer(ctx, space, recipe)
    if config.coefficients is not None:
        coefs, grid = Coefficients(*map(float, config.coefficients)), pd.DataFrame()
    else:
        coefs, grid = search_coefficients(config, base, train, progress=progress)
    table = compare(config, base, coefs, train, progress=progress)
    out = Path(config.out)
    csv = files.write_text(out / "scaling.csv", table.to_csv(index=False))
    files.write_text(out / "grid.csv", grid.to_csv(index=False))
    title = (
        f"Scaling on {data.name}: α={coefs.alpha:g} β={coefs.beta:g} γ={coefs.gamma:g} "
        f"({config.epochs} ep, {config.seeds} seed)"
    )
    png = plot_scaling(table, out / "scaling.png", title=title)
    return ScaleResult(coefs, grid, table, csv, png)
