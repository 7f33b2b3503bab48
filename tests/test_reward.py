"""MnasNet's reward as the objective value, and RegNet's complexity limits as constraints."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from jointnas.cli import build_parser, main
from jointnas.cli.commands import _run_config
from jointnas.constraints import Limits, regnet_max_acts, regnet_max_params
from jointnas.errors import ConfigError
from jointnas.evaluators import TrainFromScratch
from jointnas.runs.objective import Objective
from jointnas.runs.pipeline import RunConfig, check_reward_unchanged, run
from jointnas.runs.reward import Reward, RewardScorer
from jointnas.runs.workers import worker_config
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.blocks import Cost
from jointnas.storage import keys
from jointnas.storage.layout import linked_study


def _config(tmp_path, **kw) -> RunConfig:
    base = dict(
        storage=f"sqlite:///{tmp_path}/r.db",
        dataset="digits",
        trials=2,
        epochs=1,
        max_mflops=1.0,
        stop_after="coarse",
    )
    return RunConfig(**{**base, **kw})


# -- the formulas ---------------------------------------------------------------------------


def test_reward_is_mnasnet_soft_and_hard_ish():
    soft = Reward(target_mflops=400.0)
    assert soft(0.8, 400.0) == pytest.approx(0.8)  # at the target: the accuracy
    assert soft(0.8, 800.0) == pytest.approx(0.8 * 2**-0.07)  # twice the cost: ~4.7% less
    assert soft(0.8, 200.0) == pytest.approx(0.8 * 0.5**-0.07)  # half: a small bonus
    batch = soft(np.array([0.5, 0.9]), np.array([100.0, 1600.0]))
    np.testing.assert_allclose(batch, [0.5 * 4**0.07, 0.9 * 4**-0.07])
    hard = Reward(target_mflops=2.0, alpha=0.0, beta=-1.0)  # MnasNet's hard-ish variant
    assert hard(0.9, 1.0) == pytest.approx(0.9)  # no bonus below the target
    assert hard(0.9, 4.0) == pytest.approx(0.45)  # steep above it
    np.testing.assert_allclose(hard.factor(np.array([0.5, 2.0, 3.0])), [1.0, 1.0, 2 / 3])
    assert soft.describe() == "reward = accuracy * (MFLOPs / 400) ^ -0.07"
    assert soft.record()["target_mflops"] == 400.0 and soft.record()["alpha"] == -0.07


def test_reward_settings_are_validated_with_one_line_errors():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="--target-mflops must be a finite number > 0"):
            Reward(target_mflops=bad)
    with pytest.raises(ValueError, match=r"--reward-exponent \(beta\) must be .* <= 0"):
        Reward(target_mflops=1.0, beta=0.1)
    with pytest.raises(ValueError, match="MFLOPs > 0"):
        Reward(target_mflops=1.0).factor(np.array([1.0, 0.0]))
    with pytest.raises(ConfigError, match="--target-mflops must be a finite number > 0"):
        RunConfig(target_mflops=0.0)
    with pytest.raises(ConfigError, match="--reward-exponent needs --target-mflops"):
        RunConfig(reward_alpha=0.0, reward_beta=-1.0)
    with pytest.raises(ConfigError, match=r"--reward-exponent \(alpha\) must be"):
        RunConfig(target_mflops=1.0, reward_alpha=0.5)


def test_regnet_limits_follow_the_paper_on_its_published_models():
    # RegNetX-200MF / -400MF / -600MF (pycls model zoo: GF, params M, acts M), inside the limits
    for gf, params_m, acts_m in ((0.2, 2.7, 2.2), (0.4, 5.2, 3.1), (0.6, 6.2, 4.0)):
        assert acts_m <= 6.5 * math.sqrt(gf) and params_m <= 3 + 5.5 * gf
        assert regnet_max_acts(gf * 1e9) == pytest.approx(6.5e6 * math.sqrt(gf))
        assert regnet_max_params(gf * 1e9) == pytest.approx(3e6 + 5.5e6 * gf)
        fits = Limits(regnet=True).values(
            Cost(int(gf * 1e9), int(params_m * 1e6), int(acts_m * 1e6))
        )
        assert all(isinstance(v, float) and v <= 0 for v in fits)
    limits = Limits(mflops=300.0, acts=10_000_000, regnet=True)
    assert limits.names() == ["mflops", "acts", "regnet_acts", "regnet_params"]
    # 200 MFLOPs: acts cap 6.5 * sqrt(0.2) M = 2.907 M, params cap 3 + 1.1 = 4.1 M
    values = limits.values(Cost(200_000_000, 5_000_000, 3_000_000))
    assert values[:2] == [-100.0, -7_000_000]
    assert values[2] == pytest.approx(3e6 - 6.5e6 * math.sqrt(0.2))  # > 0: too many acts
    assert values[3] == pytest.approx(5e6 - 4.1e6)  # > 0: too many params
    batch = limits.values(
        Cost(np.array([200_000_000, 200_000_000]), np.array([5_000_000, 1]), np.array([1, 1]))
    )
    np.testing.assert_allclose(batch[3], [0.9e6, 1 - 4.1e6])
    assert Limits().names() == [] and Limits().values(Cost(1, 1, 1)) == []


def test_regnet_constraint_batch_equals_the_per_candidate_constraint(digits):
    space = FBNetV3Space()
    objective = Objective(
        space=space,
        evaluator=TrainFromScratch(data=digits, epochs=1),
        limits=Limits(mflops=1.0, regnet=True),
    )
    rng = np.random.default_rng(0)
    params = [space.sample(rng) for _ in range(32)]
    batch = objective.constraint_batch(space.encode(params))
    assert batch.shape == (32, 3)
    np.testing.assert_allclose(batch, [objective.constraint(p) for p in params])
    c = space.cost(space.decode(params[0]).arch, num_classes=10, in_channels=1)
    assert batch[0, 1] == pytest.approx(c.acts - 6.5e6 * math.sqrt(c.flops / 1e9))
    assert batch[0, 2] == pytest.approx(c.params - (3e6 + 5.5e6 * c.flops / 1e9))


# -- runs -----------------------------------------------------------------------------------


def test_run_with_regnet_limits_records_them_as_constraints(tmp_path, digits):
    data = digits.subset(train=256, val=128)
    study = run(_config(tmp_path, regnet_limits=True), data=data, progress=False)
    assert study.user_attrs[keys.LIMITS]["regnet_acts"] == "acts <= 6.5 * sqrt(GFLOPs) M"
    assert study.user_attrs[keys.RUN]["regnet_limits"] is True  # what a worker joins with
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        flops = t.user_attrs["mflops"] * 1e6
        acts = t.system_attrs["constraints:regnet_acts"]
        assert acts == pytest.approx(t.user_attrs["acts"] - 6.5e6 * math.sqrt(flops / 1e9))
        params = t.system_attrs["constraints:regnet_params"]
        assert params == pytest.approx(t.user_attrs["params"] - 3e6 - 5.5e6 * flops / 1e9)
        assert acts <= 0 and params <= 0
        attrs = t.system_attrs
        assert attrs["constraints"] == [attrs["constraints:mflops"], acts, params]


def test_full_reward_run_optimises_the_reward_and_reports_both(tmp_path, digits):
    data = digits.subset(train=256, val=128)
    config = _config(
        tmp_path,
        trials=4,
        target_mflops=0.3,
        fine_generations=2,
        fine_children=64,
        fine_population=8,
        fine_record=2,
        final_top=1,
        final_epochs=1,
        out=str(tmp_path / "out"),
        stop_after="final",
    )
    reward = config.reward
    study = run(config, data=data, progress=False)
    record = study.user_attrs[keys.REWARD]
    assert worker_config(config.storage, "jointnas").reward == reward  # workers score alike
    assert record["target_mflops"] == 0.3 and record["alpha"] == record["beta"] == -0.07
    coarse = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(coarse) == 4
    for t in coarse:  # the value is the reward of the recorded accuracy
        acc = t.user_attrs[keys.ACCURACY]
        assert 0 <= acc <= 1 and t.user_attrs["val_acc_curve"] == [acc]
        assert t.value == t.user_attrs[keys.REWARD_VALUE]
        assert t.value == pytest.approx(acc * (t.user_attrs["mflops"] / 0.3) ** -0.07)

    fine = linked_study(study, keys.FINE)
    assert fine.user_attrs[keys.REWARD] == record  # every stage study says what its values are
    for t in fine.trials:  # predicted reward = predicted accuracy x the exact cost factor
        predicted_acc = t.user_attrs[keys.PREDICTED_ACC]
        assert t.value == pytest.approx(reward(predicted_acc, t.user_attrs["mflops"]))

    final = linked_study(study, keys.FINAL)
    (t,) = final.trials
    assert t.value == pytest.approx(reward(t.user_attrs[keys.ACCURACY], t.user_attrs["mflops"]))
    assert t.user_attrs[keys.PREDICTED_REWARD] == pytest.approx(
        reward(t.user_attrs[keys.PREDICTED_ACC], t.user_attrs["mflops"])
    )
    assert t.params == fine.user_attrs[keys.FINE_RESULT]["top"][0]  # best predicted reward

    import json

    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best["val_acc"] == t.user_attrs[keys.ACCURACY] and best["reward"] == t.value
    header = (tmp_path / "out" / "final.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["trial", "val_acc", "reward", "predicted_acc", "predicted_reward"]

    from jointnas.predictors import load_predictor

    predictor = load_predictor(tmp_path / "out" / "predictor")  # learnt accuracy, not reward
    scorer = RewardScorer(predictor, reward)
    X = predictor.space.encode([t.params])
    assert scorer.predict(X)[0] == pytest.approx(t.user_attrs[keys.PREDICTED_REWARD])
    assert predictor.predict(X)[0] == pytest.approx(t.user_attrs[keys.PREDICTED_ACC])

    from jointnas.tools.report import best_trials_table

    table = best_trials_table(final)
    assert list(table.columns[:5]) == [
        "trial",
        "val_acc",
        "reward",
        "predicted_acc",
        "predicted_reward",
    ]

    # resuming with another reward (or none) is refused before any trial is added
    for other in (dict(target_mflops=0.6), dict(target_mflops=None)):
        with pytest.raises(ConfigError, match="holds values of reward = accuracy"):
            run(_config(tmp_path, trials=5, **other), data=data, progress=False)
    assert len(optuna.load_study(study_name="jointnas", storage=config.storage).trials) == 4


def test_a_study_of_accuracies_is_not_resumed_as_a_reward_run(tmp_path, digits):
    run(_config(tmp_path, trials=1), data=digits, progress=False)
    with pytest.raises(ConfigError, match=r"holds values of accuracies .* not of reward"):
        run(_config(tmp_path, trials=2, target_mflops=0.5), data=digits, progress=False)
    # a study from before the reward option (no reward attr) holds accuracies too
    storage = optuna.storages.get_storage(f"sqlite:///{tmp_path}/old.db")
    old = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    old.set_user_attr(keys.SPACE, "fbnetv3-small")
    old.add_trial(optuna.trial.create_trial(value=0.9))
    check_reward_unchanged(storage, "old", None)  # same meaning: fine
    with pytest.raises(ConfigError, match="holds values of accuracies"):
        check_reward_unchanged(storage, "old", Reward(target_mflops=1.0).record())


def test_cli_options_reach_the_run_config_and_bad_ones_are_one_line(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(
        ["run", "--target-mflops", "0.5", "--reward-exponent", "0", "-1", "--regnet-limits"]
    )
    config = _run_config(args)
    assert config.reward == Reward(target_mflops=0.5, alpha=0.0, beta=-1.0)
    assert config.limits.regnet is True
    plain = _run_config(parser.parse_args(["run"]))
    assert plain.reward is None and plain.limits.regnet is False
    cal = _run_config(parser.parse_args(["calibrate", "--regnet-limits"]))
    assert cal.limits.regnet is True  # calibration draws from the same feasible set
    for bad, message in (
        (["--target-mflops", "0"], "must be a finite number > 0"),
        (["--reward-exponent", "0.2"], "must be a finite number <= 0"),
        (["--reward-exponent", "a"], "expected a number"),
        (["--reward-exponent", "-1", "-1", "-1"], "expected one or two numbers"),
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["run", *bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["run", "--storage", url, "--reward-exponent", "-0.1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "jointnas: error: --reward-exponent needs --target-mflops T (the reward's target)"
    ]
