"""config/ablation.yaml: rows from axes and levels, every mistake named before anything runs, and the
`-S` values DVC gets reaching params.yaml with their types."""
from pathlib import Path

import pytest
import yaml

from deepfake_detector.config.configuration import read_yaml
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.experiments.dvc_experiments import set_param_arguments
from deepfake_detector.experiments.grid import load_grid, with_overrides

REPO = Path(__file__).resolve().parents[2]
PARAMS = read_yaml(REPO / "params.yaml")
STAGES = list(read_yaml(REPO / "dvc.yaml")["stages"])
AXES = {
    "dropout": {"low": {"model.dropout": 0.1}, "high": {"model.dropout": 0.5}},
    "jpeg": {"off": {"train.augment.jpeg_probability": 0.0}, "on": {"train.augment": {"jpeg_probability": 0.5}}},
}


def grid_file(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def load(tmp_path: Path, **content):
    return load_grid(grid_file(tmp_path, {"axes": AXES, **content}), PARAMS, STAGES)


def error_of(tmp_path: Path, **content) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **content)
    return str(caught.value)


def test_rows_are_every_combination_named_by_their_levels(tmp_path):
    grid = load(tmp_path)
    assert [row.name for row in grid.rows] == ["low_off", "low_on", "high_off", "high_on"]
    assert grid.baseline.name == "low_off"
    assert grid.rows[1].overrides == {"model.dropout": 0.1, "train.augment.jpeg_probability": 0.5}
    assert grid.stages == ("cross_dataset", "export")


def test_listed_rows_are_the_ones_run_in_their_order(tmp_path):
    grid = load(tmp_path, rows=[{"jpeg": "on", "dropout": "high"}, {"dropout": "low", "jpeg": "off"}])
    assert [row.name for row in grid.rows] == ["high_on", "low_off"]
    assert grid.rows[0].levels == {"dropout": "high", "jpeg": "on"}


def test_a_key_params_yaml_lacks_is_named_with_a_suggestion(tmp_path):
    message = error_of(tmp_path, axes={**AXES, "typo": {"one": {"model.dropuot": 0.3}}})
    assert "axes.typo.one: 'model.dropuot' is not a key of params.yaml (did you mean 'model.dropout'?)" in message


def test_an_unknown_level_in_rows_is_named_with_the_levels(tmp_path):
    message = error_of(tmp_path, rows=[{"dropout": "hihg", "jpeg": "on"}])
    assert "rows[0]: axis 'dropout' has no level 'hihg' (did you mean 'high'?); levels: low, high" in message


def test_a_row_must_name_every_axis_and_no_other(tmp_path):
    message = error_of(tmp_path, rows=[{"dropout": "low", "colour": "red"}])
    assert "rows[0]: unknown axis 'colour'" in message
    assert "rows[0]: no level for axis 'jpeg'" in message


def test_the_same_row_twice_is_refused(tmp_path):
    message = error_of(tmp_path, rows=[{"dropout": "low", "jpeg": "on"}, {"dropout": "low", "jpeg": "on"}])
    assert "rows[1]: the same row as an earlier one" in message


def test_two_axes_setting_one_key_are_refused(tmp_path):
    message = error_of(tmp_path, axes={**AXES, "again": {"x": {"model.dropout": 0.3}}})
    assert "axes again, dropout all set 'model.dropout'" in message


def test_an_unknown_stage_is_named_with_a_suggestion(tmp_path):
    assert "stages: unknown stage 'exprot' (did you mean 'export'?)" in error_of(tmp_path, stages=["exprot"])


def test_a_value_params_yaml_would_refuse_fails_before_running(tmp_path):
    message = error_of(tmp_path, axes={**AXES, "dropout": {"bad": {"model.dropout": "a lot"}}})
    assert "row bad_off: params.yaml: model.dropout" in message


def test_a_level_name_that_cannot_name_an_experiment_is_refused(tmp_path):
    message = error_of(tmp_path, axes={**AXES, "dropout": {"very low": {"model.dropout": 0.0}}})
    assert "axes.dropout.very low: a level name is letters, digits and '-'" in message


def test_an_unknown_top_level_key_is_named(tmp_path):
    assert "unknown key 'row' (did you mean 'rows'?)" in error_of(tmp_path, row=[])


def test_selecting_an_unknown_row_names_the_rows(tmp_path):
    grid = load(tmp_path)
    assert [row.name for row in grid.select(["high_on", "low_off"])] == ["low_off", "high_on"]
    with pytest.raises(ConfigError, match="no row 'high_of' \\(did you mean 'high_off'\\?\\); rows: low_off"):
        grid.select(["high_of"])


@pytest.mark.parametrize("value", [0.5, 0, True, None, "eer", "0.5", "it's \\ here\\",
                                   ["demo:a", "demo:nearest"], [{"name": "b", "source": "demo:b"}]])
def test_set_param_values_reach_params_yaml_with_their_type(tmp_path, value):
    """What `dvc exp run -S` writes into the experiment's params.yaml is the grid's value, type included."""
    from dvc.utils.hydra import apply_overrides

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    arguments = set_param_arguments({"data.source": value})
    apply_overrides(params_file, arguments[1::2])
    written = yaml.safe_load(params_file.read_text())["data"]["source"]
    assert written == value and type(written) is type(value)


def test_overrides_apply_to_a_copy(tmp_path):
    changed = with_overrides(PARAMS, {"model.dropout": 0.4})
    assert changed["model"]["dropout"] == 0.4 and PARAMS["model"]["dropout"] != 0.4


def test_resume_counts_a_row_done_only_with_the_same_overrides_stages_and_params():
    from deepfake_detector.experiments.records import is_done_with

    identity = {"overrides": {"model.dropout": 0.4}, "stages": ["export"], "params": with_overrides(PARAMS, {})}
    record = {"status": "done", **identity}
    assert is_done_with(record, identity)
    assert not is_done_with({**record, "status": "failed"}, identity)
    assert not is_done_with(record, {**identity, "params": with_overrides(PARAMS, {"model.alpha": 0.5})})
    assert not is_done_with(record, {**identity, "stages": ["cross_dataset", "export"]})
    assert not is_done_with(None, identity)
