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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from jointnas import files
from jointnas.errors import ConfigError
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.objective import trial_seed
from jointnas.spaces.base import Candidate
from jointnas.spaces.efficientnet import EfficientNetSpace
from jointnas.spaces.nets.efficientnet import EfficientNetArch, arch_cost
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.registry import get_space, space_from_record
from jointnas.storage.backends import open_storage
from jointnas.tools.export import read_arch
from jointnas.training.data import Dataset, load_dataset
from jointnas.training.trainer import TrainingDiverged

RULES = ("compound", "depth", "width", "resolution")
_STEPS = 0.05  # the paper's grid step


def _grid(low: float, high: float) -> tuple[float, ...]:
    return tuple(round(low + _STEPS * k, 6) for k in range(round((high - low) / _STEPS) + 1))


@dataclass(frozen=True)
class Coefficients:
    """Depth (alpha), width (beta) and resolution (gamma) bases of compound scaling."""

    alpha: float
    beta: float
    gamma: float

    @property
    def product(self) -> float:
        """alpha * beta^2 * gamma^2: the nominal FLOPs factor per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2


def derive_gamma(
    alpha: float, beta: float, *, flops_ratio: float = 2.0, gamma_step: float | None = 0.05
) -> float:
    """gamma with alpha * beta^2 * gamma^2 = ``flops_ratio``, rounded to ``gamma_step``."""
    gamma = math.sqrt(flops_ratio / (alpha * beta**2))
    return round(round(gamma / gamma_step) * gamma_step, 6) if gamma_step else gamma


def scale_arch(
    arch: EfficientNetArch, *, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0
) -> EfficientNetArch:
    """``arch`` with its depth and width multipliers and its resolution multiplied; widths and
    depths then follow by the reference rounding when the network is built or costed."""
    return dataclasses.replace(
        arch,
        depth_mult=round(arch.depth_mult * depth, 6),
        width_mult=round(arch.width_mult * width, 6),
        resolution=max(1, round(arch.resolution * resolution)),
    )


def compound(arch: EfficientNetArch, phi: float, c: Coefficients) -> EfficientNetArch:
    """The compound-scaled ``arch``: (alpha, beta, gamma)^phi on depth, width, resolution."""
    return scale_arch(arch, depth=c.alpha**phi, width=c.beta**phi, resolution=c.gamma**phi)


def match_flops(
    arch: EfficientNetArch, rule: str, target: int, *, num_classes: int, in_channels: int
) -> tuple[float, EfficientNetArch]:
    """The coefficient >= 1 of single-dimension ``rule`` whose realised FLOPs are nearest to
    ``target``, and its architecture. FLOPs are monotone in each multiplier but stepwise (the
    rounding), so bisection brackets the step that crosses the target and the nearer side wins."""
    if rule not in RULES[1:]:
        raise ValueError(f"unknown single-dimension rule {rule!r}; choose one of {RULES[1:]}")
    task = {"num_classes": num_classes, "in_channels": in_channels}

    def flops(c: float) -> int:
        return arch_cost(scale_arch(arch, **{rule: c}), **task).flops

    lo, hi = 1.0, 2.0
    if flops(lo) >= target:
        return lo, arch
    for _ in range(30):
        if flops(hi) >= target:
            break
        lo, hi = hi, hi * 2
    else:
        raise ValueError(f"{rule}-only scaling reaches no {target} FLOPs below a factor {hi:g}")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if flops(mid) >= target else (mid, hi)
    best = min((lo, hi), key=lambda c: abs(flops(c) - target))
    return best, scale_arch(arch, **{rule: best})


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
class ScaleConfig:
    """Everything ``jointnas scale`` needs; validated on construction."""

    base: str
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    storage: str = "sqlite:///jointnas.db"
    study_name: str = "scale"
    dataset: str = "mnist5k"
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
    seed: int = 0
    device: str = "auto"
    batch_size: int = 128
    out: str = "jointnas-scale"

    def __post_init__(self) -> None:
        if not self.phis or any(not (p > 0) for p in self.phis):
            raise ConfigError(f"--phi values must be > 0, got {list(self.phis)}")
        for name in ("search_epochs", "epochs", "seeds", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
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
    config: ScaleConfig,
    name: str,
    settings: dict[str, Any],
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """The study ``name``, stamped with ``settings``; a rerun with others is refused."""
    study = optuna.create_study(
        storage=open_storage(config.storage),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=sampler,
    )
    stored = study.user_attrs.get("jointnas:scale")
    settings = json.loads(json.dumps(settings))
    if stored is None:
        study.set_user_attr("jointnas:scale", settings)
    elif stored != settings:
        diff = sorted(k for k in settings if stored.get(k) != settings[k])
        raise ConfigError(f"study {name!r} was made with other settings ({diff}); use another")
    return study


class _Trainer:
    """Trains an architecture with the base's recipe on the shared seeds: mean accuracy."""

    def __init__(
        self, config: ScaleConfig, data: Dataset, space: EfficientNetSpace, recipe: Recipe | None
    ) -> None:
        self.config, self.data, self.space, self.recipe = config, data, space, recipe
        self.task = {"num_classes": data.num_classes, "in_channels": data.in_channels}

    def settings(self, base: EfficientNetArch) -> dict[str, Any]:
        """What both studies are stamped with: the base, the data and the training seeds."""
        c = self.config
        out = {"base": dataclasses.asdict(base), "dataset": self.data.name, "seed": c.seed}
        return {**out, "seeds": c.seeds, "batch_size": c.batch_size}

    def __call__(self, arch: EfficientNetArch, epochs: int) -> dict[str, Any]:
        evaluator = TrainFromScratch(
            data=self.data,
            epochs=epochs,
            device=self.config.device,
            batch_size=self.config.batch_size,
        )
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
    study = _open(config, config.study_name, settings, sampler)
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
            trial.set_user_attr("skipped", "gamma < 1 or alpha*beta^2*gamma^2 off the budget")
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
    study = _open(config, f"{config.study_name}.compare", settings)
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
            trial.set_user_attr("fail_reason", f"diverged: {exc}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        for key, value in result.items():
            trial.set_user_attr(key, value)
        study.tell(trial, result["val_acc"])
    keys = {(rule, phi) for rule, phi, *_ in jobs}
    rows = [
        {k: v for k, v in t.user_attrs.items() if k != "val_accs"}
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if (t.user_attrs["rule"], t.user_attrs["phi"]) in keys
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
    if data is None:
        data = load_dataset(config.dataset, seed=config.seed)
    train = _Trainer(config, data, space, recipe)
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
