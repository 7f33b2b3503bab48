"""Compound scaling: the scaling rules, FLOPs matching, and `scale()` end to end on digits."""

from __future__ import annotations

import json
from dataclasses import replace

import optuna
import pandas as pd
import pytest

import jointnas.spaces.efficientnet  # noqa: F401 (registers the space)
from jointnas.designs.compound import (
    RULES,
    Coefficients,
    compound,
    derive_gamma,
    match_flops,
    scale_arch,
)
from jointnas.designs.scaling import (
    ScaleConfig,
    load_base,
    scale,
)
from jointnas.errors import ConfigError
from jointnas.spaces import get_space
from jointnas.spaces.nets.efficientnet import arch_cost

TASK = {"num_classes": 10, "in_channels": 1}


@pytest.fixture
def base():
    space = get_space("efficientnet", divisor=4)
    return space.decode({**space.smallest_params(), "width_mult": 0.3, "depth_mult": 0.5}).arch


def test_gamma_from_the_budget_and_compound_rounding(base) -> None:
    assert derive_gamma(1.2, 1.1) == 1.15  # the paper's (1.2, 1.1, 1.15)
    assert derive_gamma(1.2, 1.1, gamma_step=None) == pytest.approx((2 / 1.452) ** 0.5)
    assert Coefficients(1.2, 1.1, 1.15).product == pytest.approx(1.92027)
    b0 = get_space("efficientnet").decode(
        get_space("efficientnet").named_candidates()["EfficientNet-B0"]
    )
    # compound phi = 1 of B0 with the paper's coefficients: d 1.2, w 1.1, r 224 * 1.15 = 258
    b1ish = compound(b0.arch, 1.0, Coefficients(1.2, 1.1, 1.15))
    assert (b1ish.depth_mult, b1ish.width_mult, b1ish.resolution) == (1.2, 1.1, 258)
    assert b1ish.widths == (16, 24, 48, 88, 120, 208, 352)  # B2's widths: same width 1.1
    assert b1ish.depths == (2, 3, 3, 4, 4, 5, 2)  # ceil(1.2 * repeats)
    same = scale_arch(base)
    assert same == base and scale_arch(base, resolution=1.5).resolution == 24
    assert compound(base, 2.0, Coefficients(1.0, 1.0, 1.5)).resolution == 36


@pytest.mark.parametrize("rule", RULES[1:])
def test_single_dimension_match_is_the_nearest_realised_flops(base, rule) -> None:
    target = arch_cost(compound(base, 2.0, Coefficients(1.2, 1.1, 1.15)), **TASK).flops
    coef, arch = match_flops(base, rule, target, **TASK)
    got = arch_cost(arch, **TASK).flops
    # realised FLOPs are a step function (a pixel more at 16 px is ~25% more FLOPs)
    assert coef > 1 and abs(got - target) / target < 0.3
    moved = {"depth": "depth_mult", "width": "width_mult", "resolution": "resolution"}[rule]
    knobs = ("depth_mult", "width_mult", "resolution")
    assert [k for k in knobs if getattr(arch, k) != getattr(base, k)] == [moved]
    # no coefficient on a fine sweep gets strictly nearer the target
    for k in range(1, 400):
        c = 1 + k * (2 * coef - 1) / 400
        other = arch_cost(scale_arch(base, **{rule: c}), **TASK).flops
        assert abs(other - target) >= abs(got - target)
    assert match_flops(base, rule, 1, **TASK) == (1.0, base)
    with pytest.raises(ValueError, match="unknown single-dimension rule"):
        match_flops(base, "compound", target, **TASK)


def test_load_base_reads_an_export_and_refuses_other_spaces(tmp_path) -> None:
    space = get_space("efficientnet", divisor=4)
    params = {**space.smallest_params(), "lr": 0.05, "optimizer": "adamw"}
    summary = {"params": params, "space": {"name": "efficientnet", "options": {"divisor": 4}}}
    (tmp_path / "best.json").write_text(json.dumps(summary))
    got_space, arch, recipe = load_base(tmp_path / "best.json")
    assert got_space.divisor == 4 and arch == space.decode(params).arch
    assert recipe.optimizer == "adamw" and recipe.lr == 0.05
    (tmp_path / "arch.json").write_text(json.dumps(space.arch_params(params)))
    assert load_base(tmp_path / "arch.json")[2] is None  # no recipe: the evaluator's default
    fb = get_space("fbnetv3-small")
    other = {"params": fb.smallest_params(), "space": {"name": "fbnetv3-small", "options": {}}}
    (tmp_path / "fb.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="needs an efficientnet arch"):
        load_base(tmp_path / "fb.json")
    with pytest.raises(ConfigError, match="--base: no file"):
        load_base(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="--phi values must be > 0"):
        ScaleConfig(base="x.json", phis=(0.0,))


def test_scale_end_to_end_on_digits(tmp_path, digits, one_torch_thread) -> None:
    space = get_space("efficientnet", divisor=4)
    params = {**space.smallest_params(), "width_mult": 0.3, "depth_mult": 0.5}
    record = {"name": "efficientnet", "options": {"divisor": 4}}
    (tmp_path / "base.json").write_text(json.dumps({"params": params, "space": record}))
    data = digits.subset(train=384, val=192)
    config = ScaleConfig(
        base=str(tmp_path / "base.json"),
        phis=(1.0, 2.0),
        storage=f"sqlite:///{tmp_path}/scale.db",
        dataset="digits",
        alphas=(1.1, 1.2, 1.9),  # 1.9 * 1.1^2 > 2 needs gamma < 1: pruned, never trained
        betas=(1.1,),
        search_epochs=1,
        epochs=1,
        device="cpu",
        out=str(tmp_path / "out"),
    )
    result = scale(config, data=data)
    grid = optuna.load_study(study_name="scale", storage=config.storage)
    states = sorted(t.state.name for t in grid.trials)
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    kept = [t for t in grid.trials if t.state.name == "COMPLETE"]
    assert {t.params["alpha"] for t in kept} == {1.1, 1.2}
    for t in kept:
        assert t.user_attrs["gamma"] == derive_gamma(t.params["alpha"], 1.1)
        assert abs(t.user_attrs["product"] / 2 - 1) <= 0.05 and t.user_attrs["mflops"] > 0
    best = max(kept, key=lambda t: t.value)
    assert result.coefficients.alpha == best.params["alpha"]

    table = pd.read_csv(result.csv)
    assert len(table) == 9 and result.png.stat().st_size > 0  # base + 4 rules x 2 phis
    assert (tmp_path / "out" / "grid.csv").is_file()
    assert set(table["rule"]) == {"base", *RULES}
    base_mflops = table.loc[table["rule"] == "base", "mflops"].item()
    for phi in (1.0, 2.0):
        rows = table[table["phi"] == phi].set_index("rule")
        target = rows.loc["compound", "mflops"]
        assert target > base_mflops and (rows["target_mflops"] == target).all()
        assert rows["val_acc"].between(0, 1).all()
    compare = optuna.load_study(study_name="scale.compare", storage=config.storage)
    assert len(compare.trials) == 9

    again = scale(config, data=data)  # everything is in the storage: nothing retrained
    assert len(optuna.load_study(study_name="scale.compare", storage=config.storage).trials) == 9
    assert len(optuna.load_study(study_name="scale", storage=config.storage).trials) == 3
    assert again.table.equals(result.table)
    with pytest.raises(ConfigError, match=r"other settings \(\['epochs'\]\)"):
        scale(replace(config, search_epochs=2), data=data)
    given = scale(replace(config, coefficients=(1.2, 1.1, 1.15), study_name="given"), data=data)
    assert given.coefficients == Coefficients(1.2, 1.1, 1.15) and given.grid.empty
