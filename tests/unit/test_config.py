"""The configuration layer: every mistake fails at load time with the file, key, value and hint."""
import dataclasses
import typing
from pathlib import Path

import pytest
import yaml

from deepfake_detector.config import ConfigurationManager
from deepfake_detector.config.params import DemoStyle
from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.contracts.export_layout import VARIANT_FILES

REPO = Path(__file__).resolve().parents[2]


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
    ConfigurationManager(root=repo_copy).all_entities()
    assert sorted(p.name for p in repo_copy.iterdir()) == before


def test_all_entities_holds_what_every_getter_builds(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=repo_copy)
    getters = [name for name in dir(manager) if name.startswith("get_") and name.endswith("_config")]
    entities = list(manager.all_entities().values())
    assert len(entities) == len(getters) == 14
    assert all(getattr(manager, name)() in entities for name in getters)


def test_every_path_in_config_yaml_reaches_an_entity(repo_copy: Path) -> None:
    """A path no stage reads (the old artifacts_root) is a key to drop, not to keep."""
    def paths_in(value) -> set[Path]:
        if dataclasses.is_dataclass(value):
            return set().union(*(paths_in(getattr(value, f.name)) for f in dataclasses.fields(value)))
        return {value} if isinstance(value, Path) else set()

    config = yaml.safe_load((repo_copy / "config" / "config.yaml").read_text())
    written = {repo_copy / path for name, section in config.items() if isinstance(section, dict) and name != "tracking"
               for path in section.values()}
    read = set().union(*map(paths_in, ConfigurationManager(root=repo_copy).all_entities().values()))
    assert written - read == set()


def test_entities_are_frozen(repo_copy: Path) -> None:
    config = ConfigurationManager(root=repo_copy).get_training_config()
    with pytest.raises(AttributeError):
        config.batch_size = 1  # type: ignore[misc]


def test_entities_check_nothing_so_code_can_replace_any_field(repo_copy: Path) -> None:
    # The YAML was checked; components check what they take from code (an unknown demo style, say) themselves.
    demo = ConfigurationManager(root=repo_copy).get_data_ingestion_config().demo
    assert dataclasses.replace(demo, style="c", seed=-1).style == "c"


def test_params_values_reach_their_entities(repo_copy: Path) -> None:
    def edit(params):
        params["serve"]["face_margin"] = 0.35
        params["train"]["augment"]["contrast"] = 0.25
        params["data"]["demo"]["images_per_class"] = 12

    edit_params(repo_copy, edit)
    manager = ConfigurationManager(root=repo_copy)
    assert manager.get_serving_config().face_margin == 0.35
    assert manager.get_training_config().augment.contrast == 0.25
    assert manager.get_data_ingestion_config().demo.images_per_class == 12


def test_params_as_written_keep_the_files_keys_and_values_for_records(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=repo_copy)
    written = manager.params_as_written()
    assert written["data"]["max_extracted_mb"] == 4096 and written["evaluate"]["shortcut_warn_auc"] == 0.8
    written["data"]["source"] = "changed"
    assert manager.params_as_written()["data"]["source"] == "demo"
    assert "serve" not in manager.get_export_config().params  # serving settings never made the model


def test_sizes_given_in_megabytes_reach_entities_in_bytes(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["serve"].update(max_request_mb=2))
    manager = ConfigurationManager(root=repo_copy)
    assert manager.get_serving_config().max_request_bytes == 2 * 1024 * 1024
    assert manager.get_data_ingestion_config().max_extracted_bytes == 4096 * 1024 * 1024


def test_every_problem_in_both_files_is_reported_at_once(repo_copy: Path) -> None:
    def edit(params):
        params["train"]["batch_size"] = 0
        params["serve"]["num_threads"] = "many"

    edit_params(repo_copy, edit)
    path = repo_copy / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    del config["training"]["run_file"]
    path.write_text(yaml.safe_dump(config))
    assert load_error(repo_copy).splitlines() == [
        "config.yaml: missing key 'training.run_file'",
        "params.yaml: train.batch_size: expected an integer >= 1, got 0",
        "params.yaml: serve.num_threads: expected an integer >= 1 (or null), got str 'many'",
    ]


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


@pytest.mark.parametrize("variant", list(VARIANT_FILES))
def test_every_variant_of_the_export_folder_can_be_built(repo_copy: Path, variant: str) -> None:
    edit_params(repo_copy, lambda p: p["export"].update(variants=[variant]))
    assert ConfigurationManager(root=repo_copy).get_export_config().variants == (variant,)


def test_unknown_export_variant_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["export"].update(variants=["float32", "float8"]))
    assert "params.yaml: export.variants: expected a non-empty list of distinct variants among keras" in load_error(
        repo_copy)


def test_demo_styles_are_the_ones_the_generator_draws() -> None:
    from deepfake_detector.components.data.demo_data import DEMO_STYLES

    assert typing.get_args(DemoStyle) == DEMO_STYLES


def test_evaluation_entities_carry_the_trust_settings(repo_copy: Path) -> None:
    manager = ConfigurationManager(root=repo_copy)
    evaluation = manager.get_evaluation_config()
    assert (evaluation.bootstrap, evaluation.calibrate) == (1000, True)
    robustness = manager.get_robustness_config()
    assert robustness.severities["jpeg"] == (90.0, 70.0, 50.0, 30.0)
    assert set(robustness.severities) == {"jpeg", "rescale", "blur", "noise", "crop", "brightness_contrast"}
    cross = manager.get_cross_dataset_config()
    assert [(s.name, s.source) for s in cross.extra_sets] == [
        ("demo-style-b", "demo:b"), *((f"demo-{family}", f"demo:{family}")
                                      for family in ("nearest", "bilinear", "bicubic", "tconv", "blend"))]
    assert cross.extra_demo_images_per_class == 150
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


def test_bare_yaml_off_face_detector_reads_as_off(repo_copy: Path) -> None:
    path = repo_copy / "params.yaml"
    path.write_text(path.read_text().replace("face_detector: auto", "face_detector: off"))
    assert yaml.safe_load(path.read_text())["serve"]["face_detector"] is False
    assert ConfigurationManager(root=repo_copy).get_serving_config().face_detector == "off"


def test_jpeg_quality_range_must_not_be_reversed(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["train"]["augment"].update(jpeg_quality_min=90, jpeg_quality_max=60))
    assert "params.yaml: train.augment: jpeg_quality_min (90) must not exceed jpeg_quality_max (60)" in load_error(
        repo_copy)


def test_npr_with_an_odd_input_side_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["model"].update(representation="npr", image_size=225))
    assert "params.yaml: model: model.representation npr compares each pixel with its 2x2 cell, so " \
           "model.image_size must be even (got 225)" in load_error(repo_copy)


def test_nothing_to_train_is_refused(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["train"].update(head_epochs=0, fine_tune_layers=0))
    assert "params.yaml: train: head_epochs and fine_tune_epochs" in load_error(repo_copy)


def test_misspelt_robustness_perturbation_suggests_the_dotted_name(repo_copy: Path) -> None:
    edit_params(repo_copy, lambda p: p["evaluate"]["robustness"].update(nosie=p["evaluate"]["robustness"].pop("noise")))
    message = load_error(repo_copy)
    assert "unknown key 'evaluate.robustness.nosie' (did you mean 'evaluate.robustness.noise'?)" in message
    assert "missing key 'evaluate.robustness.noise'" in message


def test_records_of_params_never_carry_a_token_from_a_source_url(repo_copy: Path) -> None:
    """The model card, the report and MLflow record params.yaml; a URL's credentials stay out of them."""
    secret_url = "https://user:s3cret@data.example.org/faces.zip?token=abc123"

    def edit(params):
        params["data"]["source"] = secret_url
        params["evaluate"]["extra_sets"] = [{"name": "other", "source": secret_url}]
    edit_params(repo_copy, edit)
    manager = ConfigurationManager(root=repo_copy)

    recorded = str(manager.params_as_written()) + str(manager.get_export_config().params)
    assert "s3cret" not in recorded and "abc123" not in recorded
    assert manager.params_as_written()["data"]["source"] == "https://data.example.org/faces.zip"
    assert manager.get_data_ingestion_config().source == secret_url  # ingestion still gets the real URL


def test_a_params_file_that_is_not_text_is_named_not_a_traceback(repo_copy: Path) -> None:
    (repo_copy / "params.yaml").write_bytes(b"data:\n  source: \xff\xfe\n")
    assert "params.yaml: cannot read" in load_error(repo_copy)
