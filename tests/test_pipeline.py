"""The full staged run: coarse -> predictor -> fine -> final, resumable between stages."""

from __future__ import annotations

import json
import re

import optuna
from safetensors.torch import load_file

from jointnas.predictors import load_predictor
from jointnas.runs.pipeline import RunConfig, run
from jointnas.spaces.fbnetv3 import FBNetV3Space
from jointnas.spaces.nets.model import build_model
from jointnas.storage.layout import linked_study


def _stages(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.trials:
        stage = t.user_attrs.get("stage", "?")
        out[stage] = out.get(stage, 0) + 1
    return out


def test_full_run_resumes_stage_by_stage_and_writes_artifacts(tmp_path, digits):
    data = digits.subset(train=384, val=192)
    base = dict(
        storage=f"sqlite:///{tmp_path}/p.db",
        trials=6,
        epochs=1,
        max_mflops=0.6,
        fine_generations=3,
        fine_children=256,
        fine_population=16,
        fine_record=3,
        final_top=2,
        final_epochs=2,
        out=str(tmp_path / "out"),
    )
    study = run(RunConfig(**base, stop_after="predictor"), data=data, progress=False)
    assert _stages(study) == {"coarse": 6}
    assert "jointnas:predictor" in study.user_attrs
    assert linked_study(study, "fine") is None and linked_study(study, "final") is None

    study = run(RunConfig(**base, stop_after="fine"), data=data, progress=False)
    assert _stages(study) == {"coarse": 6}  # one stage, one study
    fine_study = optuna.load_study(study_name="jointnas.fine", storage=base["storage"])
    assert linked_study(study, "fine").study_name == "jointnas.fine"
    assert fine_study.user_attrs["jointnas:run_name"] == "jointnas"
    assert "jointnas:fine" in fine_study.user_attrs
    stages = _stages(fine_study)
    assert 3 <= stages["fine"] <= 9 and set(stages) == {"fine"}
    fine = fine_study.trials
    for t in fine:  # predicted, feasible, recorded for the dashboard
        assert t.user_attrs["predicted"] is True and t.user_attrs["mflops"] <= 0.6
        assert t.system_attrs["constraints"][0] <= 0
    assert len({json.dumps(t.params, sort_keys=True) for t in fine}) == len(fine)

    study = run(RunConfig(**base), data=data, progress=False)
    final_study = linked_study(study, "final")
    assert final_study.study_name == "jointnas.final" and _stages(final_study) == {"final": 2}
    finals = final_study.trials
    assert len(finals) == 2 and all(t.state.name == "COMPLETE" for t in finals)
    for t in finals:
        assert len(t.user_attrs["val_acc_curve"]) == 2 and "predicted_acc" in t.user_attrs
    top = fine_study.user_attrs["jointnas:fine"]["top"]
    assert [t.params for t in finals] == top[:2]
    # the run's own study answers with a real (coarse) training, never a prediction
    best = optuna.load_study(study_name="jointnas", storage=base["storage"]).best_trial
    assert best.user_attrs["stage"] == "coarse" and "predicted" not in best.user_attrs

    again = run(RunConfig(**base), data=data, progress=False)  # all done: nothing new
    assert len(again.trials) == len(study.trials)
    assert len(linked_study(again, "fine").trials) == len(fine)
    assert len(linked_study(again, "final").trials) == 2

    out = tmp_path / "out"
    best = json.loads((out / "best.json").read_text())
    assert best["val_acc"] == max(t.value for t in finals)
    space = FBNetV3Space()
    model = build_model(space.decode(best["params"]).arch, 10, 1)
    model.load_state_dict(load_file(out / "best.safetensors"))  # the weights fit the arch
    predictor = load_predictor(out / "predictor")
    assert predictor.training["n"] == 6 and (out / "predictor" / "CARD.md").is_file()
    assert (out / "final.csv").read_text().count("\n") == 3

    from jointnas.tools.export import export_trial

    saved = export_trial(base["storage"], "jointnas.final", finals[0].number, tmp_path / "e1")
    assert saved["weights"] == "saved by the run" and saved["stage"] == "final"
    coarse = export_trial(base["storage"], "jointnas", 0, tmp_path / "e2", epochs=1, data=data)
    assert coarse["weights"].startswith("trained here") and 0 <= coarse["val_acc"] <= 1
    exported = json.loads((tmp_path / "e2" / "candidate.json").read_text())
    model = build_model(space.decode(exported["params"]).arch, 10, 1)
    model.load_state_dict(load_file(tmp_path / "e2" / "weights.safetensors"))


def test_autotrain_searches_only_the_recipe_of_a_fixed_arch(tmp_path, digits):
    data = digits.subset(train=256, val=128)
    full = FBNetV3Space()
    arch = full.arch_params(full.smallest_params())
    config = RunConfig(
        storage=f"sqlite:///{tmp_path}/a.db",
        trials=2,
        epochs=1,
        max_mflops=0.5,
        fix_arch=arch,
        stop_after="coarse",
    )
    study = run(config, data=data, progress=False)
    assert study.user_attrs["jointnas:space"] == "fbnetv3-small"
    assert study.user_attrs["jointnas:space_record"]["options"] == {"fix": arch}
    for t in study.trials:
        assert set(t.params) == set(full.recipe_names)
        assert t.user_attrs["mflops"] == study.trials[0].user_attrs["mflops"]
    from jointnas.predictors import study_space

    assert study_space(study).pinned == arch


def test_read_arch_takes_a_best_json_and_refuses_bad_files(tmp_path):
    import pytest

    from jointnas.errors import ConfigError
    from jointnas.storage.candidates import read_arch

    space = FBNetV3Space()
    params = space.smallest_params()
    (tmp_path / "best.json").write_text(json.dumps({"params": params, "val_acc": 0.9}))
    assert read_arch(tmp_path / "best.json", space) == space.arch_params(params)
    cases = {
        "missing.json": (None, "no file"),
        "bad.json": ('{"x": 1', "not a JSON file"),
        "list.json": ("[1, 2]", "no params dict"),
        "part.json": (json.dumps({"resolution": 16}), "lacks architecture keys"),
        "extra.json": (json.dumps({**params, "depth": 3}), "not parameters: ['depth']"),
        "value.json": (json.dumps({**params, "s1_width": 12}), "'s1_width' = 12"),
    }
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            read_arch(tmp_path / name, space)
