"""The one-shot supernet: extraction, SPOS's untouched unsampled blocks, BN recalibration,
GreedyNAS's queue and pool, resuming a killed training, and saved supernets."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import optuna
import pytest
import torch

from jointnas.errors import ConfigError, JointNASError
from jointnas.evaluators import InheritWeights
from jointnas.spaces.recipe import Recipe
from jointnas.spaces.shufflenet_choice import ShuffleChoiceSpace
from jointnas.supernet import CandidatePool, GreedyPaths, PathSampler, build_supernet
from jointnas.supernet.training import (
    SupernetConfig,
    load_supernet,
    save_supernet,
    train_supernet,
)
from jointnas.training.trainer import StepHook, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPACE = ShuffleChoiceSpace(layout="small")
L = SPACE.layout.num_layers
TASK = {"num_classes": 10, "in_channels": 1}
#: a few hundred digits at the layout's 28 px: enough for every mechanism, seconds to train
SMALL = SupernetConfig(
    sampling="greedy", epochs=2, batch_size=64, score_images=64, m=4, k=2, pool_size=6
)


@pytest.fixture(scope="module")
def data(digits):
    return digits.subset(train=320, val=128).at_resolution(28)


def supernet(seed: int = 0):
    return build_supernet(SPACE.arch_of([0] * L), **TASK, seed=seed)


def scramble_bn(net: torch.nn.Module, seed: int) -> None:
    """Random running statistics, so equal outputs mean equal buffers were used."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_subnet_gives_the_supernets_outputs_on_its_path() -> None:
    net = supernet()
    scramble_bn(net, 1)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for path in ([0] * L, [3] * L, list(np.random.default_rng(0).integers(0, 4, L))):
        net.set_path(path)
        sub = net.subnet(path).eval()
        with torch.no_grad():
            expected = net.eval()(x)
            assert torch.equal(sub(x), expected)
        assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())
    with pytest.raises(ValueError, match="a path is 12 choices"):
        net.set_path([4] * L)


class ByEpoch(StepHook):
    """Path ``paths[epoch]`` for every step of that epoch."""

    def __init__(self, paths, steps_per_epoch: int) -> None:
        self.paths, self.steps = paths, steps_per_epoch

    def before_step(self, model, step: int) -> None:
        model.set_path(self.paths[step // self.steps])


def test_a_step_leaves_unsampled_blocks_weights_and_optimizer_state_alone(data, tmp_path) -> None:
    """Epoch 1 trains path A, epoch 2 path B; blocks only on A must be bit-identical after B's
    steps, momentum buffers included (weight decay 4e-5 and momentum 0.9 are on)."""
    a, b = [0] * L, [1] * L
    a[0] = b[0] = 2  # layer 0 shared: its blocks must change in epoch 2
    net, ck = supernet(), tmp_path / "ck.pt"
    recipe = SupernetConfig().recipe
    hook = ByEpoch([a, b], steps_per_epoch=5)
    kw = dict(seed=0, device="cpu", batch_size=64, bn_recalibration=0, checkpoint=ck, hook=hook)
    train(net, recipe, data, epochs=1, schedule_epochs=2, **kw)
    first = torch.load(ck, weights_only=True)
    train(net, recipe, data, epochs=2, schedule_epochs=2, **kw)
    second = torch.load(ck, weights_only=True)
    params = dict(net.named_parameters())
    # the optimizer's state index follows its groups: >1-d tensors (decayed), then the rest
    order = [n for n, p in params.items() if p.ndim > 1] + [
        n for n, p in params.items() if p.ndim <= 1
    ]
    moment = {n: second["optimizer"]["state"].get(i) for i, n in enumerate(order)}
    first_moment = {n: first["optimizer"]["state"].get(i) for i, n in enumerate(order)}
    names = list(params)
    off_b = [n for n in names if n.startswith("features.") and n.split(".")[2] == "0"]
    off_b = [n for n in off_b if not n.startswith("features.0.")]  # layer 0 choice 0: never on
    for n in off_b:
        assert torch.equal(first["model"][n], second["model"][n]), n
        assert torch.equal(first_moment[n]["momentum_buffer"], moment[n]["momentum_buffer"]), n
    on_b = [n for n in names if n.startswith("features.") and n.split(".")[2] == "1"]
    on_b = [n for n in on_b if not n.startswith("features.0.")]
    assert all(first_moment[n] is None for n in on_b)  # never sampled before epoch 2
    assert all(not torch.equal(first["model"][n], second["model"][n]) for n in on_b)
    shared = [n for n in names if n.startswith("features.0.2.")]
    assert shared and all(not torch.equal(first["model"][n], second["model"][n]) for n in shared)


def test_inherit_weights_recalibrates_bn_on_a_copy(data) -> None:
    net = supernet()
    scramble_bn(net, 2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    path = (1, 0, 3, 2) * 3
    recal = InheritWeights(supernet=net, data=data, recal_images=200, device="cpu")
    sub = recal.subnet(path)
    # reset + exact cumulative average: the stem BN's mean is the mean of the stem conv output
    with torch.no_grad():
        conv_out = sub.stem[0](data.fit_images(torch.arange(200), device=torch.device("cpu")))
    bn = sub.stem[1]
    expected = conv_out.detach().mean(dim=(0, 2, 3))
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked) == 1 and bn.momentum == 0.1
    for k, v in net.state_dict().items():  # the supernet itself is untouched
        assert torch.equal(v, before[k]), k
    kept = InheritWeights(supernet=net, data=data, recal_images=0, device="cpu").subnet(path)
    assert torch.equal(
        next(b for n, b in kept.named_buffers() if "running_mean" in n),
        before[next(n for n in before if "running_mean" in n)],
    )
    # recalibrated scores do not depend on the scrambled statistics
    cand = SPACE.decode(dict(zip(SPACE.names, path, strict=True)))
    first = recal.evaluate(SPACE, cand, seed=0).value
    scramble_bn(net, 3)
    assert recal.evaluate(SPACE, cand, seed=0).value == first
    with pytest.raises(ConfigError, match="supernet is for 10 classes"):
        InheritWeights(supernet=net, data=dataclasses.replace(data, num_classes=3))


def test_scoring_restores_buffers_path_and_mode(data) -> None:
    net = supernet()
    net.train().set_path([2] * L)
    before = {k: v.clone() for k, v in net.named_buffers()}
    hook = GreedyPaths(
        PathSampler(SPACE, seed=0),
        x_score=data.fit_images(torch.arange(32), device=torch.device("cpu")),
        y_score=data.y_train[:32],
        total_steps=10,
        m=4,
        k=2,
    )
    losses = hook.score(net, [tuple([c] * L) for c in range(4)])
    assert len(set(losses)) == 4 and all(np.isfinite(losses))
    assert net.path == tuple([2] * L) and net.training
    for k, v in net.named_buffers():
        assert torch.equal(v, before[k]), k


def test_greedy_training_trains_exactly_the_queued_paths(data, monkeypatch) -> None:
    queued: list[tuple[int, ...]] = []
    refill = GreedyPaths.refill

    def recording(self, model, step):
        refill(self, model, step)
        queued.extend(self.queue)

    monkeypatch.setattr(GreedyPaths, "refill", recording)
    run = train_supernet(SPACE, data, config=SMALL, device="cpu", progress=False)
    hook = run.hook
    warm = int(np.ceil(SMALL.warmup * hook.total_steps))
    assert len(hook.trained) == hook.total_steps == 2 * 4  # 256 training images, batch 64
    assert hook.trained[warm:] == queued[: len(hook.trained) - warm]
    assert hook.scored == SMALL.m * len(queued) // SMALL.k
    assert 0 < len(hook.pool) <= SMALL.pool_size
    assert run.info["paths_scored"] == hook.scored and run.info["pool"]
    assert all(loss == hook.pool.entries[tuple(p)] for p, loss in run.info["pool"])


def test_epsilon_rises_linearly_after_warmup() -> None:
    hook = GreedyPaths(
        PathSampler(SPACE, seed=0),
        x_score=torch.zeros(1, 1, 28, 28),
        y_score=torch.zeros(1),
        total_steps=100,
        warmup=0.2,
    )
    assert [hook.epsilon_at(s) for s in (0, 20, 60, 100)] == pytest.approx([0, 0, 0.4, 0.8])


def test_pool_keeps_the_best_and_early_stop_triggers_on_low_turnover() -> None:
    pool = CandidatePool(3)
    for i, loss in enumerate([5.0, 1.0, 3.0, 2.0, 9.0]):
        pool.update((i,), loss)
    assert [p for p, _ in pool.best()] == [(1,), (3,), (2,)]
    hook = GreedyPaths(
        PathSampler(SPACE, seed=0),
        x_score=torch.zeros(1, 1, 28, 28),
        y_score=torch.zeros(1),
        total_steps=10,
        pool_size=50,
        stop_turnover=0.08,
    )
    paths = [(a, b, c) + (0,) * (L - 3) for a in range(4) for b in range(4) for c in range(4)]
    paths = paths[:50]
    for p in paths:
        hook.pool.update(p, 1.0)
    assert hook.pool.full and not hook.end_epoch(None, 0)  # a new pool: turnover 1.0
    for i in range(5):  # 5 better paths replace 5 of 50: 0.10 >= 0.08, keep training
        hook.pool.update((i,) + (0,) * (L - 2) + (1,), 0.01 * i)
    assert not hook.end_epoch(None, 1) and hook.history == [1.0, 0.1]
    for i in range(2):  # 2 of 50: 0.04 < 0.08, stop
        hook.pool.update((i,) + (0,) * (L - 2) + (2,), 0.001 * i)
    assert hook.end_epoch(None, 2) and hook.history[-1] == pytest.approx(0.04)
    assert len(hook.pool) == 50


def test_trainer_stops_when_the_greedy_pool_settles(data, monkeypatch) -> None:
    monkeypatch.setattr(GreedyPaths, "should_stop", lambda self: len(self.history) >= 1)
    run = train_supernet(
        SPACE, data, config=SupernetConfig(**{**vars(SMALL), "epochs": 3}), progress=False
    )
    assert run.info["epochs_trained"] == 1 and len(run.hook.trained) == 4


def test_killed_supernet_training_resumes_to_the_uninterrupted_result(
    data, tmp_path, monkeypatch
) -> None:
    whole = train_supernet(SPACE, data, config=SMALL, device="cpu", progress=False)
    ck = tmp_path / "supernet.ckpt"
    before = GreedyPaths.before_step

    def killed(self, model, step):
        if step == 6:  # in the second epoch, after the first epoch's checkpoint
            raise KeyboardInterrupt
        before(self, model, step)

    monkeypatch.setattr(GreedyPaths, "before_step", killed)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(SPACE, data, config=SMALL, device="cpu", checkpoint=ck, progress=False)
    monkeypatch.setattr(GreedyPaths, "before_step", before)
    resumed = train_supernet(SPACE, data, config=SMALL, device="cpu", checkpoint=ck, progress=False)
    assert resumed.result.resumed_epochs == 1
    assert resumed.hook.trained == whole.hook.trained[4:]
    assert resumed.info["pool"] == whole.info["pool"]
    for (k, v), w in zip(
        resumed.supernet.state_dict().items(), whole.supernet.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k


def test_fine_tuning_continues_from_a_pretrained_supernet(data) -> None:
    source = train_supernet(SPACE, data, config=SMALL, device="cpu", progress=False)
    start = {k: v.clone() for k, v in source.supernet.state_dict().items()}
    tuned = train_supernet(
        SPACE, data, config=SMALL, device="cpu", init=source.supernet, seed=1, progress=False
    )
    assert tuned.info["fine_tuned"] and tuned.supernet is source.supernet
    assert any(not torch.equal(v, start[k]) for k, v in tuned.supernet.state_dict().items())
    with pytest.raises(ConfigError, match="initial supernet is for 3 classes"):
        train_supernet(
            SPACE,
            data,
            config=SMALL,
            init=build_supernet(SPACE.arch_of([0] * L), num_classes=3, in_channels=1),
            progress=False,
        )


def test_saved_supernet_round_trips_and_bad_files_get_one_line(data, tmp_path) -> None:
    run = train_supernet(
        SPACE,
        data,
        config=SupernetConfig(**{**vars(SMALL), "epochs": 1, "sampling": "uniform"}),
        device="cpu",
        progress=False,
    )
    out = save_supernet(run, tmp_path / "sn")
    net, space, info = load_supernet(out)
    assert space.fingerprint() == SPACE.fingerprint() and info["config"]["sampling"] == "uniform"
    assert SupernetConfig.from_json(info["config"]) == run.config
    for (k, v), w in zip(net.state_dict().items(), run.supernet.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    with pytest.raises(JointNASError, match="no saved supernet"):
        load_supernet(tmp_path / "missing")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "supernet.json").write_text("{not json")
    with pytest.raises(JointNASError, match="is not a supernet description"):
        load_supernet(bad)
    (bad / "supernet.json").write_text(json.dumps({**info, "layout": "imagenet"}))
    with pytest.raises(JointNASError, match="does not fit"):
        load_supernet(bad)
    (bad / "supernet.json").write_text(json.dumps({**info, "fingerprint": "x"}))
    with pytest.raises(JointNASError, match="another version"):
        load_supernet(bad)
    (bad / "supernet.safetensors").write_bytes(b"garbage")
    (bad / "supernet.json").write_text(json.dumps(info))
    with pytest.raises(JointNASError, match="does not fit"):
        load_supernet(bad)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="sampling must be one of"):
        SupernetConfig(sampling="random")
    with pytest.raises(ConfigError, match="k=6 > m=5"):
        SupernetConfig(m=5, k=6)
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        SupernetConfig(epochs=0)
    assert SupernetConfig().recipe == Recipe(lr=0.1, weight_decay=4e-5, label_smoothing=0.1)


def test_search_respects_the_limit_starts_from_the_pool_and_retrains_the_best(
    data, tmp_path
) -> None:
    from jointnas.constraints import Limits
    from jointnas.runs.supernet_search import SUPERNET, SearchConfig, scored, search_supernet

    run = train_supernet(SPACE, data, config=SMALL, device="cpu", progress=False)
    flops = PathSampler(SPACE, seed=0).flops(PathSampler(SPACE, seed=1).uniform(200)) / 1e6
    limit = float(np.quantile(flops, 0.4))
    pool = [p for p, _ in run.info["pool"]]
    cfg = SearchConfig(
        trials=10, population=4, recal_images=64, final_top=2, final_epochs=1, device="cpu"
    )
    url = f"sqlite:///{tmp_path}/sn.db"
    kw = dict(
        storage=url,
        study_name="sn",
        limits=Limits(mflops=limit),
        config=cfg,
        pool=pool,
        out=tmp_path / "out",
        progress=False,
    )
    result = search_supernet(run.supernet, SPACE, data, **kw)
    done = scored(result.study)
    assert len(done) == 10 and all(t.user_attrs["stage"] == SUPERNET for t in done)
    assert all(t.user_attrs["mflops"] <= limit for t in done)
    feasible_pool = [
        p for p in pool if PathSampler(SPACE, seed=0).flops(np.array(p))[0] / 1e6 <= limit
    ]
    first = [tuple(t.params[n] for n in SPACE.names) for t in result.study.trials]
    assert first[: len(feasible_pool)] == [tuple(p) for p in feasible_pool]
    assert len(result.finals) == 2
    best_two = sorted(done, key=lambda t: -t.value)[:2]
    for final, searched in zip(result.finals, best_two, strict=True):
        assert final.params == searched.params
        assert final.user_attrs["predicted_acc"] == searched.value  # the supernet's score
    assert (tmp_path / "out" / "final.csv").is_file() and result.best is not None
    # resumed: nothing is scored or retrained again
    again = search_supernet(run.supernet, SPACE, data, **kw)
    assert len(again.study.trials) == len(result.study.trials)
    assert [t.number for t in again.finals] == [t.number for t in result.finals]
    # another supernet is not mixed into this study
    other = build_supernet(SPACE.arch_of([0] * L), **TASK, seed=5)
    with pytest.raises(ConfigError):
        search_supernet(other, SPACE, data, **kw)


@pytest.mark.parametrize("sampler", ["nsga2", "random"])
def test_other_samplers_search_under_the_limit(data, tmp_path, sampler) -> None:
    from jointnas.constraints import Limits
    from jointnas.runs.supernet_search import SearchConfig, scored, search_supernet

    net = supernet()
    limit = float(
        np.median(PathSampler(SPACE, seed=0).flops(PathSampler(SPACE, seed=1).uniform(200)))
    )
    cfg = SearchConfig(trials=6, population=3, sampler=sampler, recal_images=32, final_top=0)
    result = search_supernet(
        net,
        SPACE,
        data,
        storage=f"sqlite:///{tmp_path}/s.db",
        study_name="s",
        limits=Limits(mflops=limit / 1e6),
        config=cfg,
        progress=False,
    )
    done = scored(result.study)
    assert len(done) == 6 and all(t.user_attrs["mflops"] <= limit / 1e6 for t in done)
    assert result.finals == []


def test_search_killed_mid_trial_resumes_to_the_asked_count(data, tmp_path) -> None:
    """A killed search leaves a RUNNING trial behind; the rerun scores only what is missing."""
    from jointnas.constraints import Limits
    from jointnas.runs.supernet_search import SearchConfig, scored, search_supernet

    net = supernet()
    limit = float(
        np.median(PathSampler(SPACE, seed=0).flops(PathSampler(SPACE, seed=1).uniform(200)))
    )
    kw = dict(
        storage=f"sqlite:///{tmp_path}/k.db",
        study_name="k",
        limits=Limits(mflops=limit / 1e6),
        progress=False,
    )
    first = search_supernet(
        net, SPACE, data, config=SearchConfig(trials=3, recal_images=32, final_top=0), **kw
    )
    before = [t.number for t in scored(first.study)]
    first.study.ask()  # the trial a killed process was scoring: it stays RUNNING
    again = search_supernet(
        net, SPACE, data, config=SearchConfig(trials=5, recal_images=32, final_top=0), **kw
    )
    states = [t.state for t in again.study.trials]
    assert len(scored(again.study)) == 5
    assert states.count(optuna.trial.TrialState.RUNNING) <= 1
    assert [t.number for t in scored(again.study)][:3] == before
