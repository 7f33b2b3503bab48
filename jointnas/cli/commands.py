"""One function per ``jointnas`` command: each builds its config, calls the library, prints."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jointnas.errors import ConfigError


def _run_config(args: argparse.Namespace, **overrides):
    """The RunConfig of ``run``/``calibrate``'s arguments; ``overrides`` win (e.g. epochs)."""
    from jointnas.runs.config import RunConfig

    if getattr(args, "preset", None) is not None:
        raise ConfigError("--preset was replaced by --space NAME (`jointnas spaces` lists them)")
    if getattr(args, "reward_exponent", None) is not None:
        overrides = (
            dict(zip(("reward_alpha", "reward_beta"), args.reward_exponent, strict=True))
            | overrides
        )
    if getattr(args, "fix_arch", None):
        from jointnas.storage.candidates import read_arch

        overrides = {"fix_arch": read_arch(args.fix_arch, _space(args.space)), **overrides}
    return RunConfig.from_args(args, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.runs.pipeline import run
    from jointnas.storage import keys
    from jointnas.storage.layout import linked_study
    from jointnas.tools.report import best_trials_table, state_counts
    from jointnas.training.perf import tune_malloc

    if args.calibrate or args.epochs == "calibrated":
        from jointnas.runs.calibrate import calibrate, stored_calibration

        if args.calibrate:
            try:
                stored_calibration(args.storage, args.study)
            except ConfigError:
                calibrate(_run_config(args, trials=12, epochs=6), progress=not args.no_progress)
        cal = stored_calibration(args.storage, args.study)
        config = _run_config(args, epochs=cal["recommended_epochs"], schedule_epochs=cal["epochs"])
        print(
            f"early stop at epoch {config.epochs} of a {cal['epochs']}-epoch schedule "
            f"(calibrated: Kendall tau {cal['kendall_tau'][config.epochs - 1]:.2f})"
        )
    else:
        config = _run_config(args)
    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no traceback per failed trial
    study = run(config, progress=not args.no_progress)
    print(f"study {study.study_name!r} in {args.storage}: {state_counts(study)}")
    if config.reward is not None:
        print(f"trial values are MnasNet rewards: {config.reward.describe()}")
    final = linked_study(study, keys.FINAL)
    for stage_study, title in ((study, "coarse search (early-stopped)"), (final, "final training")):
        table = best_trials_table(stage_study, top=args.top) if stage_study else None
        if table is not None and not table.empty:
            print(f"\n{title} (study {stage_study.study_name!r}):\n{table.to_string(index=False)}")
    fine = linked_study(study, keys.FINE)
    result = fine.user_attrs.get(keys.FINE_RESULT) if fine else None
    if result:
        print(
            f"\nfine search: {result['scored']} candidates scored in {result['seconds']:.1f} s "
            f"(study {fine.study_name!r})"
        )
    if (Path(config.out) / "best.json").is_file():
        print(f"best arch/recipe, weights, predictor: {config.out}/")
    print(f"see it in the browser: jointnas dashboard --storage {args.storage}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import optuna
    import torch

    from jointnas.runs.workers import work
    from jointnas.storage import keys
    from jointnas.storage.budget import coarse_done

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no traceback per failed trial
    study = work(args.storage, args.study, device=args.device, progress=not args.no_progress)
    budget = study.user_attrs[keys.RUN]["trials"]
    print(f"worker {os.getpid()}: study {args.study!r} has {coarse_done(study)}/{budget}")
    return 0


def _space(name: str):
    from jointnas.spaces import get_space

    try:
        return get_space(name)
    except ValueError as exc:
        raise ConfigError(f"--space: {exc}") from None


def cmd_spaces(args: argparse.Namespace) -> int:
    import json

    from jointnas.spaces import registered
    from jointnas.spaces.summary import space_summary

    rows = [space_summary(name) for name in registered()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'space':<22} {'params':>6} {'MFLOPs (smallest .. largest)':>30}  task  summary")
    for r in rows:
        lo, hi = r["mflops_smallest"], r["mflops_largest"]
        task = f"{r['task']['num_classes']}/{r['task']['in_channels']}"
        print(
            f"{r['name']:<22} {r['parameters']:>6} {lo:>14.3f} .. {hi:<12.3f}  {task:<5} "
            f"{r['summary']}"
        )
    print("(task: classes/input channels the MFLOPs are counted for)")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from jointnas.tools.describe import describe_params, format_table, pick_params, to_json

    space = _space(args.space)
    task = space.default_task
    params = pick_params(space, preset=args.preset, arch_file=args.arch)
    info = describe_params(
        space,
        params,
        num_classes=args.num_classes or task["num_classes"],
        in_channels=args.in_channels or task["in_channels"],
        resolution=args.resolution,
    )
    print(to_json(info) if args.json else format_table(info))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import optuna_dashboard

    from jointnas.storage.backends import open_storage

    storage = open_storage(args.storage)
    print(f"optuna-dashboard on http://{args.host}:{args.port} (Ctrl-C to stop)")
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.runs.calibrate import calibrate
    from jointnas.training.perf import tune_malloc

    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no traceback per failed trial
    result = calibrate(
        _run_config(args),
        threshold=args.threshold,
        progress=not args.no_progress,
        plot=args.plot,
    )
    print(f"fidelity calibration of {result['candidates']} candidates, {result['epochs']} epochs:")
    print("epoch  kendall_tau  spearman")
    for e, (tau, rho) in enumerate(
        zip(result["kendall_tau"], result["spearman"], strict=True), start=1
    ):
        print(f"{e:5d}  {tau:11.3f}  {rho:8.3f}")
    print(
        f"recommended early stop: epoch {result['recommended_epochs']} (tau >= "
        f"{result['threshold']}); stored on study {args.study!r}; curve in {args.plot}"
    )
    print(f"use it: jointnas run --study {args.study} --epochs calibrated")
    return 0


def cmd_predictor(args: argparse.Namespace) -> int:
    from jointnas.predictors import eval_on_study, fit_on_study
    from jointnas.predictors.card import metrics_line, write_card

    if args.predictor_command == "fit":
        predictor = fit_on_study(
            args.storage, args.study, kind=args.kind, seed=args.seed, cv=args.cv
        )
        out = predictor.save(args.out)
        write_card(out, command="jointnas " + " ".join(args.argv))
        print(f"fitted {args.kind} predictor on {predictor.training['n']} trials of {args.study!r}")
        if "cv" in predictor.metrics:
            print(f"{args.cv}-fold CV: {metrics_line(predictor.metrics['cv'])}")
        print(f"saved to {out}")
    else:
        metrics = eval_on_study(args.directory, args.storage, args.study)
        print(f"{args.directory} on {args.study!r}: {metrics_line(metrics)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from jointnas.tools.export import export_trial

    summary = export_trial(
        args.storage, args.study, args.trial, args.out, epochs=args.epochs, device=args.device
    )
    print(
        f"trial {args.trial} ({summary['stage']}, value {summary['value']:.4f}) -> {args.out}/"
        f"candidate.json + weights.safetensors ({summary['weights']})"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from jointnas.constraints import Limits
    from jointnas.predictors import load_predictor
    from jointnas.tools.reuse import search_best

    start = time.perf_counter()
    if args.max_mflops is None and args.max_params is None:
        raise ConfigError("give a limit: --max-mflops and/or --max-params")
    predictor = load_predictor(args.predictor)
    frame = search_best(
        predictor,
        Limits(mflops=args.max_mflops, params=args.max_params),
        top=args.top,
        seed=args.seed,
        generations=args.generations,
    )
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(_show(frame).to_string(index=False))
        print(
            f"{frame.attrs['scored']} candidates scored in {frame.attrs['seconds']:.2f} s; "
            f"{time.perf_counter() - start:.1f} s in all, no training"
        )
    return 0


def cmd_pareto(args: argparse.Namespace) -> int:
    import numpy as np

    from jointnas.predictors import load_predictor
    from jointnas.tools.reuse import pareto, plot_pareto

    if args.min_mflops >= args.max_mflops:
        raise ConfigError("--min-mflops must be below --max-mflops")
    predictor = load_predictor(args.predictor)
    limits = np.geomspace(args.min_mflops, args.max_mflops, args.points).round(3).tolist()
    frame = pareto(predictor, limits, seed=args.seed)
    path = plot_pareto(frame, args.out, title=f"Predicted front: {args.predictor}")
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(_show(frame, extra=("limit_mflops", "on_front")).to_string(index=False))
        print(f"front drawn in {path}")
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    import optuna

    from jointnas.designs.scaling import ScaleConfig, scale
    from jointnas.training.perf import tune_malloc

    config = ScaleConfig.from_args(args)
    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = scale(config, progress=not args.no_progress)
    c = result.coefficients
    print(
        f"alpha (depth) {c.alpha:.2f}, beta (width) {c.beta:.2f}, gamma (resolution) "
        f"{c.gamma:.2f}; alpha * beta^2 * gamma^2 = {c.product:.3f}"
    )
    cols = [k for k in ("rule", "phi", "coefficient", "mflops", "val_acc") if k in result.table]
    print(result.table[cols].to_string(index=False))
    print(f"\nreport: {result.csv}, {result.png}")
    return 0


def cmd_edf(args: argparse.Namespace) -> int:
    import optuna
    import torch

    from jointnas.designs.edf import EDFConfig, run_edf
    from jointnas.training.perf import tune_malloc

    config = EDFConfig.from_args(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    tune_malloc()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no traceback per failed trial
    result = run_edf(config, progress=not args.no_progress)
    report = result.report
    print(f"{'space':<22} {'trained':>8} {'diverged':>8} {'pending':>7}  error min / mean / median")
    for name, st in result.states.items():
        s = report["spaces"][name]
        errs = f"{s['min']:.4f} / {s['mean']:.4f} / {s['median']:.4f}" if s["n"] else "-"
        print(
            f"{name:<22} {st['complete']:>4}/{config.n:<3} {st['diverged']:>8} "
            f"{st['pending'] + st['missing']:>7}  {errs}"
        )
    if report["pairs"]:
        level = round(100 * config.level)
        print(f"\nKS statistic [{level}% bootstrap interval, {config.resamples} resamples]:")
        for r in report["pairs"]:
            print(
                f"{r['a']} vs {r['b']}: {r['ks']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                f"p={r['pvalue']:.3g}; lower mean error: {r['lower_mean_error']}"
            )
    if any(st["pending"] + st["missing"] for st in result.states.values()):
        print("\nsome models are still training elsewhere or were lost: rerun to finish them")
    print(f"\nreport: {', '.join(report['paths'].values())}")
    return 0


def _show(frame, extra: tuple[str, ...] = ()):
    cols = [*extra, "predicted_acc", "mflops", "params", "resolution", "optimizer", "lr", "ema"]
    out = frame[[c for c in cols if c in frame]].copy()
    return out.round({"predicted_acc": 4, "mflops": 3, "lr": 4})
