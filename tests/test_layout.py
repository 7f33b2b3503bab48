"""One stage, one study: stage study names and links, and the old one-study layout refused."""

from __future__ import annotations

import optuna
import pytest
from helpers import run_cli

from jointnas.errors import ConfigError
from jointnas.runs.pipeline import RunConfig, run
from jointnas.spaces import get_space
from jointnas.storage import keys
from jointnas.storage.layout import check_layout, open_stage_study, stage_study_name, study_space


def _old_layout_study(url: str) -> optuna.Study:
    """A study as jointnas 0.1 wrote it: coarse, fine and final trials side by side."""
    space = get_space("fbnetv3-small")
    study = optuna.create_study(study_name="old", storage=url, direction="maximize")
    study.set_user_attr(keys.SPACE, "fbnetv3-small")
    study.set_user_attr(keys.SPACE_FINGERPRINT, space.fingerprint())
    params = space.smallest_params()
    for value, stage, extra in ((0.5, "coarse", {}), (0.99, "fine", {"predicted": True})):
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dict(space.distributions),
                value=value,
                user_attrs={"stage": stage, **extra},
            )
        )
    return study


def test_stage_names_and_links(tmp_path):
    storage = optuna.storages.get_storage(f"sqlite:///{tmp_path}/s.db")
    assert stage_study_name("run", "coarse") == "run"
    assert stage_study_name("run", "final") == "run.final"
    stamp = {keys.SEED: 0}
    coarse = open_stage_study(storage, "run", keys.COARSE, stamp)
    final = open_stage_study(storage, "run", keys.FINAL, stamp)
    assert (
        final.user_attrs[keys.RUN_NAME] == "run"
        and final.user_attrs[keys.STAGE_OF_STUDY] == "final"
    )
    coarse = optuna.load_study(study_name="run", storage=storage)
    assert coarse.user_attrs[keys.STAGE_LINKS] == {"final": "run.final"}
    with pytest.raises(ConfigError, match="was made with jointnas:seed=0, not 1"):
        open_stage_study(storage, "run", keys.FINAL, {keys.SEED: 1})


def test_a_study_of_the_old_layout_is_refused_in_one_line(tmp_path, digits):
    url = f"sqlite:///{tmp_path}/old.db"
    study = _old_layout_study(url)
    with pytest.raises(ConfigError, match="older jointnas that kept coarse, fine and final"):
        check_layout(study)
    config = RunConfig(storage=url, study_name="old", trials=1, epochs=1, stop_after="coarse")
    with pytest.raises(ConfigError, match="older jointnas"):
        run(config, data=digits, progress=False)
    assert len(optuna.load_study(study_name="old", storage=url).trials) == 2  # untouched
    assert study_space(study).key == "fbnetv3-small"  # still readable as it is
    for args in (["export", "--trial", "0", "--out", str(tmp_path / "x")], ["worker"]):
        done = run_cli(*args, "--storage", url, "--study", "old", cwd=tmp_path)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and "older jointnas" in lines[0], (
            done.stderr
        )
