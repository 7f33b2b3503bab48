"""The study scripts users copy must run as shipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]


def test_fbnetv3_search_study_script_runs(tmp_path):
    url = f"sqlite:///{tmp_path}/st.db"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "studies" / "fbnetv3_search.py"),
            "--storage",
            url,
            "--dataset",
            "digits",
            "--trials",
            "3",
            "--epochs",
            "1",
            "--max-mflops",
            "1.5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    study = optuna.load_study(study_name="fbnetv3-tpe", storage=url)
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.system_attrs["constraints:mflops"] == t.user_attrs["mflops"] - 1.5
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.user_attrs["mflops"] <= 1.5 and 0 <= t.value <= 1
        else:  # over the limit: pruned before any training
            assert t.state == optuna.trial.TrialState.PRUNED and t.user_attrs["mflops"] > 1.5
    assert "best val acc" in done.stdout
