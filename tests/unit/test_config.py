"""The configuration layer: every mistake fails at load time with the file, key, value and hint."""
import shutil
from pathlib import Path

import pytest
import yaml

from deepfake_detector.config import ConfigurationManager
from deepfake_detector.contracts.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def edit_params(root: Path, edit) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params))


def load_error(root: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        ConfigurationManager(root=root)
    return str(caught.value)


def test_shipped_config_builds_every_entity(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=repo_copy)
    training = manager.get_training_config()
    assert training.model_file == repo_copy / "artifacts/training/model.h5"
    assert manager.get_data_ingestion_config().source == "demo"
    assert manager.get_evaluation_config().threshold == "eer"
    assert manager.get_model_config().image_size == 224


def test_reading_config_creates_no_directories(repo_copy: Path) -> None:
    before = sorted(p.name for p in repo_copy.iterdir())
    manager = ConfigurationManager(root=repo_copy)
    for getter in (manager.get_data_ingestion_config, manager.get_data_validation_config,
                   manager.get_model_config, manager.get_training_config, manager.get_evaluation_config,
                   manager.get_export_config, manager.get_serving_config, manager.get_robustness_config,
                   manager.get_cross_dataset_config, manager.get_shortcut_audit_config, manager.get_report_config):
        getter()
    assert sorted(p.name for p in repo_copy.iterdir()) == before


def test_entities_are_frozen(repo_copy: Path) -> None:
    config = ConfigurationManager(root=repo_copy).get_training_config()
    with pytest.raises(AttributeError):
        config.batch_size = 1  # type: ignore[misc]


def test_misspelt_key_is_reported_with_suggestion(repo_copy: Path) -> None:
    def misspell(params):
        params["train"]["epoch"] = params["train"].pop("fine_tune_epochs")

    edit_params(repo_copy, misspell)
    message = load_error(repo_copy)
    assert "params.yaml: unknown key 'train.epoch'" in message
    assert "did you mean 'train." in message
    assert "missing key 'train.fine_tune_epochs'" in message


def test_misspelt_nested_key_suggests_the_dotted_name(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["data"]["split"].__setitem__("tset", p["data"]["split"].pop("test")))
    assert "unknown key 'data.split.tset' (did you mean 'data.split.test'?)" in load_error(repo_copy)


def test_missing_key_is_named(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"].pop("calibration_bins"))
    assert "params.yaml: missing key 'evaluate.calibration_bins'" in load_error(repo_copy)


def test_wrong_type_names_key_value_and_expectation(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["train"].__setitem__("batch_size", "thirty-two"))
    message = load_error(repo_copy)
    assert "params.yaml: train.batch_size: expected an integer" in message
    assert "'thirty-two'" in message


def test_boolean_is_not_accepted_as_a_number(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["model"].__setitem__("dropout", True))
    assert "model.dropout" in load_error(repo_copy)


def test_out_of_range_value_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["model"].__setitem__("dropout", 1.5))
    message = load_error(repo_copy)
    assert "params.yaml: model.dropout: expected a number in [0.0, 1.0), got 1.5" in message


def test_unsupported_alpha_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["model"].__setitem__("alpha", 0.6))
    assert "model.alpha" in load_error(repo_copy)


def test_threshold_accepts_number_or_strategy_only(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"].__setitem__("threshold", "median"))
    assert "evaluate.threshold: expected a number in (0, 1), 'eer' or 'youden'" in load_error(repo_copy)


def test_numeric_threshold_is_used_as_given(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"].__setitem__("threshold", 0.3))
    assert ConfigurationManager(root=repo_copy).get_evaluation_config().threshold == 0.3


def test_split_fractions_must_sum_to_one(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["data"]["split"].__setitem__("train", 0.8))
    assert "data.split: train + val + test must be 1.0" in load_error(repo_copy)


def test_bad_checksum_format_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["data"].__setitem__("sha256", "abc"))
    assert "data.sha256: expected a 64-character hex SHA-256" in load_error(repo_copy)


def test_class_name_listed_for_both_classes_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["data"]["class_names"].__setitem__("real", ["real", "Fake"]))
    assert "listed as both fake and real" in load_error(repo_copy)


def test_unknown_key_in_config_yaml_names_that_file(repo_copy: Path) -> None:
    path = repo_copy / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["training"]["model_fle"] = config["training"].pop("model_file")
    path.write_text(yaml.safe_dump(config))
    assert "config.yaml: unknown key 'training.model_fle' (did you mean 'training.model_file'?)" in load_error(
        repo_copy)


def test_missing_params_file_is_named(repo_copy: Path) -> None:
    (repo_copy / "params.yaml").unlink()
    assert "params.yaml: file not found" in load_error(repo_copy)


def test_invalid_yaml_is_named(repo_copy: Path) -> None:
    (repo_copy / "params.yaml").write_text("data: [unclosed\n")
    assert "params.yaml: not valid YAML" in load_error(repo_copy)


def test_batch_norm_freezes_automatically_only_with_pretrained_weights(repo_copy: Path) -> None:
    assert ConfigurationManager(root=repo_copy).get_model_config().freeze_batch_norm is False
    edit_params(repo_copy, lambda p: p["model"].__setitem__("weights", "imagenet"))
    manager = ConfigurationManager(root=repo_copy)
    assert manager.get_model_config().freeze_batch_norm is True
    assert manager.get_training_config().freeze_batch_norm is True


def test_weights_path_is_resolved_against_the_repo_root(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["model"].__setitem__("weights", "weights/backbone.h5"))
    assert ConfigurationManager(root=repo_copy).get_model_config().weights == str(
        repo_copy / "weights/backbone.h5")


def test_params_accept_exactly_the_variants_the_export_folder_defines() -> None:
    from deepfake_detector.config.schema import EXPORT_VARIANTS
    from deepfake_detector.contracts.export_layout import VARIANT_FILES

    assert EXPORT_VARIANTS == tuple(VARIANT_FILES)


def test_evaluation_entities_carry_the_trust_settings(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=repo_copy)
    evaluation = manager.get_evaluation_config()
    assert (evaluation.bootstrap, evaluation.calibrate) == (1000, True)
    robustness = manager.get_robustness_config()
    assert robustness.severities["jpeg"] == (90.0, 70.0, 50.0, 30.0)
    assert set(robustness.severities) == {"jpeg", "rescale", "blur", "noise", "crop", "brightness_contrast"}
    cross = manager.get_cross_dataset_config()
    assert [(s.name, s.source) for s in cross.extra_sets] == [("demo-style-b", "demo:b")]
    assert manager.get_shortcut_audit_config().warn_auc == 0.8


@pytest.mark.parametrize(("extra_sets", "message"), [
    ([{"name": "a b", "source": "demo:b"}], "name must be letters"),
    ([{"name": "x", "source": "demo:b"}, {"name": "x", "source": "demo"}], "names listed twice"),
    ([{"name": "x"}], "exactly 'name' and 'source'"),
])
def test_bad_extra_sets_are_refused_with_the_entry(repo_copy: Path, extra_sets, message) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"].update(extra_sets=extra_sets))
    error = load_error(repo_copy)
    assert "params.yaml: evaluate.extra_sets:" in error and message in error


def test_robustness_severity_out_of_range_names_the_key(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"]["robustness"].update(jpeg=[90, 0]))
    assert "params.yaml: evaluate.robustness.jpeg: expected a list of distinct numbers in [1, 100]" in load_error(
        repo_copy)


def test_unknown_strategy_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["train"].update(strategy="horovod"))
    assert "params.yaml: train.strategy: expected one of auto, mirrored, multi_worker, one_device" in load_error(
        repo_copy)


def test_mixed_precision_accepts_yaml_on_off(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["train"].update(mixed_precision=False))
    assert ConfigurationManager(root=repo_copy).get_training_config().mixed_precision == "off"
