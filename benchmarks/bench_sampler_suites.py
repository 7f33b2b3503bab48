"""Optuna's samplers vs jointnas's side by side on external problem suites nobody here wrote.

Why: the other sampler benchmarks use objectives written in this repo (FBNetV3, made-up
synthetic functions), which a sampler can be tuned to. These suites come from elsewhere
(``benchmarks/_suites.py`` defines them):

- ``bbob-mixint`` (COCO, instance 1): f1 sphere, f3 separable Rastrigin, f7 step ellipsoid,
  f10 rotated ellipsoid, f15 rotated Rastrigin, f21 Gallagher 101 peaks, in 5-D and 10-D; the
  first ``number_of_integer_variables`` coordinates are integers. Unconstrained.
- ``bbob-constrained`` (COCO, instance 1, 5-D, all floats): f2, f8, f20, f27, f33, f50 (sphere,
  separable and rotated ellipsoid, discus, bent cigar, rotated Rastrigin with 3-9 constraints).
- ``sklearn``: SVC on wine, MLP on breast_cancer, HistGradientBoosting on digits, 1 - accuracy
  with fixed splits and model seeds, each under a cheap constraint on the params.

Samplers: ``Random``, ``QMC`` (scrambled Sobol), ``TPE`` (multivariate), ``GP``, ``NSGA-II``
(population 10) and ``CMA-ES`` (all-continuous spaces only, needs the ``cmaes`` package) are the
baselines, set up as in ``_curves.baseline_sampler``. They learn a constraint the Optuna 5 way:
every trial stores its constraint values with ``trial.set_constraint`` and TPE, GP and NSGA-II
read them (``constraints_func`` is deprecated in Optuna 5; CMA-ES ignores constraints). Ours get
the known cheap constraint up front and only propose feasible points: ``coarse``
(``CoarseSampler``; any name starting with ``coarse`` is one, built with ``--coarse-kwargs``),
``genetic`` (``AdaptiveGeneticSampler``, population 10, XGBoost predictor) and ``reference``
(``_reference_sampler.ReferenceXGBSampler``, the plain model-based yardstick).

Every evaluation counts, infeasible ones included: an infeasible proposal is evaluated and told
to Optuna with its value and violated constraint (generous to the baselines), but it never is a
result: best-so-far counts feasible values only.

Normalised score, per problem (no public optimum for COCO in general): with ``f_best`` the best
feasible value any sampler reached in any stored run and ``f_start`` the median over all stored
runs of each run's first feasible value (a typical quasi-random start),
``score = clip((f_start - best) / (f_start - f_best), 0, 1)``: 1 = the best any sampler reached,
0 = no better than a typical start (or nothing feasible yet). Raw values stay in the CSV (and
``log10_gap = log10(best - f_best + 1e-8)``, COCO's usual precision, relative to ``f_best``).
"Evaluations to best baseline": where a sampler's median score curve first reaches the median
final score of the best baseline on that problem ("never" within the budget otherwise). A
suite's aggregate is the median over its problems of the per-problem medians (its curve too).

One run = (problem, sampler, seed), stored as ``results/sampler_suites/<problem>/<sampler>_s<seed>
.json`` and skipped when present (resumable); ``--report`` only reads them. Outputs:
``results/<stem>.csv`` (problem x sampler x budget), ``results/<stem>.json``, one PNG per suite
(``results/<stem>_<suite>.png``) and Markdown tables on stdout.

    python benchmarks/bench_sampler_suites.py                        # everything, 10 seeds
    python benchmarks/bench_sampler_suites.py --problems sklearn --samplers TPE,coarse --jobs 2
    python benchmarks/bench_sampler_suites.py --report
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _common
import _suites  # sets the BLAS/OpenMP threads to 1 before numpy loads
import numpy as np
from _curves import best_so_far, plot_panels

RUNS = _common.RESULTS / "sampler_suites"
BASELINES = ("Random", "QMC", "TPE", "GP", "Auto", "NSGA-II", "CMA-ES")
OURS = ("coarse", "genetic", "reference")


def coarse_sampler(search_space, constraint, seed: int, **kwargs):
    """The library's CoarseSampler: the one place the benchmark builds it."""
    from jointnas.samplers import CoarseSampler

    return CoarseSampler(search_space=search_space, constraint=constraint, seed=seed, **kwargs)


#: CoarseSampler variants by name (``--coarse-kwargs`` is added on top)
COARSE_VARIANTS: dict[str, dict[str, Any]] = {
    "coarse-xgb": {"surrogate": "xgboost"},
    "coarse-gp": {"surrogate": "gp"},
    "coarse-gp-onehot": {"surrogate": "gp-onehot"},
    "coarse-mix": {"surrogate": "gp+xgboost"},
}


def make(name: str, *, seed: int, search_space, constraint, coarse_kwargs=None):
    import optuna

    s = optuna.samplers
    if name == "Random":
        return s.RandomSampler(seed=seed)
    if name == "QMC":
        return s.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    if name == "TPE":
        return s.TPESampler(seed=seed, multivariate=True)
    if name == "GP":
        return s.GPSampler(seed=seed)
    if name == "Auto":
        from _auto_sampler import AutoSampler

        return AutoSampler(seed=seed)
    if name == "NSGA-II":
        return s.NSGAIISampler(seed=seed, population_size=10)
    if name == "CMA-ES":
        return s.CmaEsSampler(seed=seed)
    if name.startswith("coarse"):
        kwargs = {**COARSE_VARIANTS.get(name, {}), **(coarse_kwargs or {})}
        return coarse_sampler(search_space, constraint, seed, **kwargs)
    if name == "genetic":
        from jointnas.predictors import XGBoostPredictor
        from jointnas.samplers import AdaptiveGeneticSampler
        from jointnas.spaces import DistributionSpace

        return AdaptiveGeneticSampler(
            search_space=search_space,
            constraint=constraint,
            predictor=XGBoostPredictor(space=DistributionSpace(search_space), seed=seed),
            population_size=10,
            seed=seed,
        )
    if name == "reference":
        from _reference_sampler import ReferenceXGBSampler

        return ReferenceXGBSampler(search_space=search_space, constraint=constraint, seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


def new_study(problem: _suites.Problem, sampler: str, seed: int, coarse_kwargs: dict):
    """A minimising study of ``problem`` with ``sampler`` (a name ``make`` knows)."""
    import optuna

    return optuna.create_study(
        direction="minimize",
        sampler=make(
            sampler,
            seed=seed,
            search_space=problem.space,
            constraint=problem.constraint,
            coarse_kwargs=coarse_kwargs,
        ),
    )


def run(problem_name: str, sampler: str, seed: int, trials: int, coarse_kwargs: dict) -> dict:
    """One search: per evaluation the feasible value (None if infeasible), the constraint
    violation, the sampler's seconds (ask + tell) and the objective's seconds."""
    import optuna
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    for module in ("scipy.optimize", "scipy.stats", "xgboost", "jointnas.predictors"):
        importlib.import_module(module)  # one-off import costs are not a sampler's seconds
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Constraints have been set, but CmaEsSampler")
    problem = _suites.build(problem_name)
    kwargs = coarse_kwargs if sampler.startswith("coarse") else {}
    rec: dict[str, Any] = {"problem": problem_name, "suite": problem.suite, "sampler": sampler}
    rec |= {"seed": seed, "trials": trials, "coarse_kwargs": kwargs, "info": problem.info}
    rec["machine"] = _common.machine_facts()
    out: dict[str, list] = {"values": [], "violation": [], "sampler_s": [], "eval_s": []}
    t_start = time.perf_counter()
    try:
        with threadpool_limits(1):
            study = new_study(problem, sampler, seed, kwargs)
            for _ in range(trials):
                t0 = time.perf_counter()
                trial = study.ask(problem.space)
                t1 = time.perf_counter()
                params = trial.params
                cons = problem.constraint(params) if problem.constraint else []
                for i, v in enumerate(cons):
                    trial.set_constraint(f"c{i}", v)
                value = problem.objective(params)
                t2 = time.perf_counter()
                study.tell(trial, value)
                violation = sum(max(v, 0.0) for v in cons)
                out["values"].append(value if violation == 0 else None)
                out["violation"].append(violation)
                out["sampler_s"].append(t1 - t0 + time.perf_counter() - t2)
                out["eval_s"].append(t2 - t1)
    except Exception as exc:  # a sampler that fails on a problem is a result too
        rec["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        problem.close()
    rec["wall_s"] = round(time.perf_counter() - t_start, 2)
    return rec | out


def _path(problem: str, sampler: str, seed: int) -> Path:
    return RUNS / problem / f"{sampler}_s{seed}.json"


def _stored(problem: str, sampler: str, seed: int) -> dict | None:
    path = _path(problem, sampler, seed)
    return json.loads(path.read_text()) if path.is_file() else None


def _applies(sampler: str, continuous: bool) -> bool:
    """CMA-ES only on all-continuous spaces, and only with the cmaes package."""
    if sampler != "CMA-ES":
        return True
    try:
        import cmaes  # noqa: F401
    except ImportError:
        return False
    return continuous


def _alias_gp(problem: str, seed: int, trials: int) -> bool:
    """AutoSampler on an all-numeric space below 250 trials is GPSampler on every trial, seeded
    alike (``_auto_sampler``; the same values, checked in one process), so its run is stored
    as the GP run's values. False when no GP run of that length is stored yet."""
    if _stored(problem, "Auto", seed):
        return True
    gp = _stored(problem, "GP", seed)
    if gp is None or gp["trials"] < trials or "error" in gp:
        return False
    path = _path(problem, "Auto", seed)
    path.write_text(json.dumps(gp | {"sampler": "Auto", "same_as": "GP"}) + "\n")
    return True


def store(path: Path, rec: dict, label: str) -> None:
    """Write one run's record and print its best feasible value (resumable runs skip it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec) + "\n")
    feasible = [v for v in rec["values"] if v is not None]
    best = f"{min(feasible):.4g}" if feasible else "none feasible"
    note = f"  ERROR {rec['error']}" if "error" in rec else ""
    print(
        f"{rec['problem']:28s} {label} s{rec['seed']}: best {best}, {rec['wall_s']:.1f} s{note}",
        flush=True,
    )


def run_all(args, problems: list[str], samplers: list[str], coarse_kwargs: dict) -> None:
    todo = []
    for p in problems:
        probe = _suites.build(p)
        continuous, numeric = probe.continuous, probe.numeric
        probe.close()
        for seed in range(args.seeds):  # seed-major: a partial run has every sampler at seed 0
            for s in samplers:
                if not _applies(s, continuous):
                    continue
                if s == "Auto" and numeric and _alias_gp(p, seed, args.trials):
                    continue
                rec = _stored(p, s, seed)
                if rec and s.startswith("coarse") and rec["coarse_kwargs"] != coarse_kwargs:
                    raise SystemExit(f"{_path(p, s, seed)} has other --coarse-kwargs: rename")
                if rec is None or rec["trials"] < args.trials:
                    todo.append((p, s, seed))
    print(f"{len(todo)} runs to do on {args.jobs} process(es)", flush=True)

    def save(rec: dict) -> None:
        store(_path(rec["problem"], rec["sampler"], rec["seed"]), rec, f"{rec['sampler']:10s}")

    if args.jobs <= 1:
        for job in todo:
            save(run(*job, args.trials, coarse_kwargs))
        return
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run, *job, args.trials, coarse_kwargs) for job in todo]
        for f in as_completed(futures):
            save(f.result())


def _normalise(runs: list[dict], trials: int):
    """Per run: normalised best-so-far scores and raw best feasible values, ``(runs, trials)``
    each (a shorter run, one that failed, is padded with its last value); f_start, f_best."""
    vals = np.array([_pad([np.inf if v is None else v for v in r["values"]], trials) for r in runs])
    ok = np.isfinite(vals)
    if not ok.any():
        return np.zeros(vals.shape), np.full(vals.shape, np.nan), np.nan, np.nan
    f_best = float(vals[ok].min())
    f_start = float(np.median([row[np.isfinite(row)][0] for row in vals if np.isfinite(row).any()]))
    if f_start > f_best:
        s = np.clip((f_start - vals) / (f_start - f_best), 0.0, 1.0)
    else:  # nothing improved on the typical start: 1 = reached the best
        s = (vals <= f_best).astype(float)
    scores = np.stack([best_so_far(row, trials, floor=0.0) for row in np.where(ok, s, -np.inf)])
    raws = np.minimum.accumulate(vals, axis=1)
    return scores, np.where(np.isfinite(raws), raws, np.nan), f_start, f_best


def _pad(values: list[float], n: int) -> list[float]:
    return (values + values[-1:] * n)[:n] if values else [np.inf] * n


def _problem(p: str, runs: dict[str, list[dict]], trials: int, budgets: list[int]):
    """CSV rows, a Markdown table and per sampler (median curve, evals to reach, seconds)."""
    recs = [r for rs in runs.values() for r in rs]
    scores, raws, f_start, f_best = _normalise(recs, trials)
    at = np.cumsum([0] + [len(rs) for rs in runs.values()])
    split = {s: (scores[a:b], raws[a:b]) for s, a, b in zip(runs, at[:-1], at[1:], strict=True)}
    base = {s: float(np.median(split[s][0][:, -1])) for s in runs if s in BASELINES}
    best_base = max(base, key=base.get) if base else None
    rows, table, per = [], [], {}
    for s, rs in runs.items():
        sc, raw = split[s]
        med = np.median(sc, axis=0)
        hit = np.nonzero(med >= base[best_base] - 1e-12)[0] if best_base else []
        reach = int(hit[0]) + 1 if len(hit) else None
        times = [t for r in rs for t in r["sampler_s"][:trials]]
        first = {"suite": _suites.suite_of(p), "problem": p, "sampler": s, "runs": len(rs)}
        first |= {"errors": sum("error" in r for r in rs), "best_baseline": best_base}
        first["evals_to_best_baseline"] = "never" if reach is None else reach
        first["sampler_s_mean"] = round(float(np.mean(times)), 4) if times else None
        first["sampler_s_median"] = round(float(np.median(times)), 4) if times else None
        first["eval_s_median"] = round(
            float(np.median([t for r in rs for t in r["eval_s"][:trials]])), 4
        )
        first |= {"f_start": f_start, "f_best": f_best}
        line = {"sampler": s}
        for b in budgets:
            q = [round(float(v), 4) for v in np.quantile(sc[:, b - 1], (0.25, 0.5, 0.75))]
            ok = np.isfinite(raw[:, b - 1])
            raw_med = float(np.median(raw[ok, b - 1])) if ok.any() else np.nan
            feasible = np.mean([v is not None for r in rs for v in r["values"][:b]])
            rows.append(first | {"budget": b, "score_median": q[1], "score_q25": q[0]})
            rows[-1] |= {"score_q75": q[2], "raw_best_median": raw_med}
            rows[-1]["log10_gap"] = round(float(np.log10(raw_med - f_best + 1e-8)), 3)
            rows[-1]["feasible_frac"] = round(float(feasible), 3)
            line[f"score@{b}"] = f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"
        line[f"evals to {best_base}"] = first["evals_to_best_baseline"]
        line |= {"s/proposal": first["sampler_s_mean"], "runs": len(rs), "errors": first["errors"]}
        table.append(line)
        per[s] = (med, np.inf if reach is None else reach, times)
    title = f"### {p} (f_start {f_start:.4g}, f_best {f_best:.4g}, best baseline {best_base})"
    curves = {s: [round(float(v), 4) for v in e[0]] for s, e in per.items()}
    info = {"f_start": f_start, "f_best": f_best, "best_baseline": best_base}
    return rows, (title, table), per, info | {"median_curves": curves}


def report(args, problems: list[str], samplers: list[str]) -> None:
    trials = args.trials
    budgets = sorted({b for b in map(int, args.budgets.split(",")) if b < trials} | {trials})
    rows, tables, by_suite, per_problem = [], [], {}, {}
    for p in problems:
        runs = {s: [_stored(p, s, seed) for seed in range(args.seeds)] for s in samplers}
        runs = {s: [r for r in rs if r and r["trials"] >= trials] for s, rs in runs.items()}
        runs = {s: rs for s, rs in runs.items() if rs}
        if runs:
            r, table, per, per_problem[p] = _problem(p, runs, trials, budgets)
            rows += r
            tables.append(table)
            for s, entry in per.items():
                by_suite.setdefault(_suites.suite_of(p), {}).setdefault(s, []).append(entry)
    if not rows:
        raise SystemExit(f"no stored runs under {RUNS}")
    summary, head = {}, []
    for suite, per_sampler in by_suite.items():
        n = max(len(v) for v in per_sampler.values())
        curves = {s: np.stack([e[0] for e in v]) for s, v in per_sampler.items()}
        summary[suite] = {}
        for s, v in per_sampler.items():
            reach = np.array([e[1] for e in v])
            times = [t for e in v for t in e[2]]
            entry = {f"score@{b}": round(float(np.median(curves[s][:, b - 1])), 3) for b in budgets}
            entry["problems"] = len(v)
            entry["reached best baseline"] = f"{int(np.isfinite(reach).sum())}/{len(v)}"
            med = float(np.median(reach))
            entry["median evals to it"] = med if np.isfinite(med) else "never"
            entry["s/proposal mean"] = round(float(np.mean(times)), 4) if times else None
            entry["s/proposal median"] = round(float(np.median(times)), 4) if times else None
            summary[suite][s] = entry
        title = f"## {suite}: median over {n} problem(s) of the per-problem median score"
        head.append((title, [{"sampler": s, **e} for s, e in summary[suite].items()]))
        plot_panels(
            [(f"{suite}: {n} problems x {args.seeds} seeds, median of medians", list(curves))],
            curves,
            trials,
            _common.RESULTS / f"{args.stem}_{suite}.png",
            baselines=BASELINES,
            xlabel="evaluations",
            ylabel="normalised score",
        )
    text = []
    for title, table in head + tables:
        print(f"\n{title}\n")
        text.append(f"{title}\n\n" + _common.print_table(table, list(table[0])))
    facts = _common.machine_facts() | {"seeds": list(range(args.seeds)), "trials": trials}
    extra = {"settings": vars(args), "budgets": budgets, "summary": summary}
    extra |= {"per_problem": per_problem, "table_markdown": "\n\n".join(text)}
    csv_path, json_path = _common.write_results(args.stem, rows, facts, extra=extra)
    print(f"\nwrote {csv_path}, {json_path} and {args.stem}_<suite>.png")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--problems", default=",".join(_suites.SUITES), help="suites and/or problem names")
    add("--samplers", default=",".join(BASELINES + OURS), help="comma list; coarse* names: ours")
    add("--seeds", type=int, default=10)
    add("--trials", type=int, default=100)
    add("--budgets", default="25,50,100", help="report the scores at these evaluations")
    add("--mixint-functions", type=_ints, default=list(_suites.MIXINT_FUNCTIONS))
    add("--mixint-dims", type=_ints, default=list(_suites.MIXINT_DIMS))
    add("--constrained-functions", type=_ints, default=list(_suites.CONSTRAINED_FUNCTIONS))
    add("--constrained-dims", type=_ints, default=list(_suites.CONSTRAINED_DIMS))
    add("--coarse-kwargs", type=json.loads, default={}, help="JSON: CoarseSampler's extra args")
    add("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    add("--report", action="store_true", help="only aggregate the stored runs")
    add("--stem", default="bench_sampler_suites")
    args = parser.parse_args()
    choices = {
        "bbob-mixint": (args.mixint_functions, args.mixint_dims),
        "bbob-constrained": (args.constrained_functions, args.constrained_dims),
    }
    try:
        problems = _suites.expand(args.problems, choices)
    except ValueError as exc:
        raise SystemExit(f"{exc}; suites: {', '.join(_suites.SUITES)}") from None
    samplers = [s for s in args.samplers.split(",") if s]
    unknown = [s for s in samplers if s not in BASELINES + OURS and not s.startswith("coarse")]
    if unknown:
        raise SystemExit(f"unknown sampler(s) {unknown}; choose from {list(BASELINES + OURS)}")
    if not args.report:
        if "CMA-ES" in samplers and not _applies("CMA-ES", True):
            print("CMA-ES skipped: the cmaes package is not installed (pip install cmaes)")
        run_all(args, problems, samplers, args.coarse_kwargs)
    report(args, problems, samplers)


if __name__ == "__main__":
    main()
