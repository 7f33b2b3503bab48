"""``jointnas supernet train | search | eval`` as a user runs them, bad input included."""

from __future__ import annotations

import json

import optuna
from helpers import run_cli

TINY = ("--epochs", "1", "--batch-size", "64", "--score-images", "64", "--m", "4", "--k", "2")
COMMON = ("--dataset", "digits", "--device", "cpu", "--no-progress")


def test_train_eval_search_and_bad_input(tmp_path) -> None:
    done = run_cli(
        "supernet", "train", *TINY, "--pool-size", "6", "--out", "sn", *COMMON, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "supernet (greedy) trained 1 epochs" in done.stdout
    info = json.loads((tmp_path / "sn" / "supernet.json").read_text())
    assert info["pool"] and not (tmp_path / "sn" / "supernet.ckpt").exists()

    done = run_cli(
        "supernet",
        "eval",
        "--supernet",
        "sn",
        "--random",
        "2",
        "--choices",
        "0,1,2,3,0,1,2,3,0,1,2,3",
        "--recal-images",
        "64",
        *COMMON,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[1:]
    assert len(rows) == 3 and rows[0].startswith("0,1,2,3,0,1,2,3,0,1,2,3")

    done = run_cli(
        "supernet",
        "search",
        "--supernet",
        "sn",
        "--storage",
        "sqlite:///s.db",
        "--study",
        "s",
        "--max-mflops",
        "8",
        "--trials",
        "5",
        "--population",
        "3",
        "--recal-images",
        "64",
        "--final-top",
        "1",
        "--final-epochs",
        "1",
        "--out",
        "rep",
        *COMMON,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db")
    searched = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(searched) == 5 and all(t.user_attrs["mflops"] <= 8 for t in searched)
    final = optuna.load_study(study_name="s.final", storage=f"sqlite:///{tmp_path}/s.db")
    assert len(final.trials) == 1 and "final trial" in done.stdout
    assert (tmp_path / "rep" / "final.csv").is_file()

    bad = [
        (("eval", "--supernet", "nowhere", "--random", "1"), "no saved supernet in nowhere"),
        (("eval", "--supernet", "sn", "--choices", "0,1"), "--choices needs 12 values"),
        (("eval", "--supernet", "sn"), "give subnets to score"),
        (
            (
                "search",
                "--supernet",
                "sn",
                "--max-mflops",
                "0.01",
                "--storage",
                "sqlite:///s.db",
                "--study",
                "s2",
            ),
            "impossible",
        ),
        (("train", "--init", "nowhere", "--out", "x"), "no saved supernet in nowhere"),
    ]
    for args, message in bad:
        done = run_cli("supernet", *args, *COMMON, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert len(
        optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db").trials
    ) == len(study.trials)
