"""Environment overrides of the serving config, and the heatmap coloring."""
from pathlib import Path

import numpy as np
import pytest

from deepfake_detector.contracts.errors import ConfigError
from deepfake_detector.serving.heatmaps import MAX_ALPHA, colorize
from deepfake_detector.serving.settings import apply_environment, load_serving_config, repository_root
from tests.serving.conftest import serving_config


def test_environment_overrides_each_documented_field(tmp_path):
    config = apply_environment(serving_config(tmp_path), {
        "DEEPFAKE_DETECTOR_MODEL": "/m/model.h5", "DEEPFAKE_DETECTOR_EXPORT_DIR": "/m/export",
        "DEEPFAKE_DETECTOR_BACKEND": "keras", "DEEPFAKE_DETECTOR_FACE_DETECTOR": "blazeface",
        "DEEPFAKE_DETECTOR_CORS_ORIGINS": "https://a.example, https://b.example"})
    assert config.model_file == Path("/m/model.h5") and config.export_dir == Path("/m/export")
    assert (config.backend, config.face_detector) == ("keras", "blazeface")
    assert config.cors_origins == ("https://a.example", "https://b.example")


def test_empty_environment_changes_nothing(tmp_path):
    config = serving_config(tmp_path)
    assert apply_environment(config, {"DEEPFAKE_DETECTOR_MODEL": ""}) == config


def test_bad_backend_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="DEEPFAKE_DETECTOR_BACKEND='gpu'"):
        apply_environment(serving_config(tmp_path), {"DEEPFAKE_DETECTOR_BACKEND": "gpu"})


def test_repository_config_gives_safe_serving_defaults():
    config = load_serving_config(repository_root())
    assert config.cors_origins == () and config.training_enabled is False and config.face_detector == "auto"


def test_heatmap_alpha_grows_with_intensity_up_to_the_cap():
    rgba = colorize(np.linspace(0, 1, 11, dtype=np.float32).reshape(1, 11))
    alpha = rgba[0, :, 3].astype(int)
    assert alpha[0] == 0 and alpha[-1] == round(MAX_ALPHA * 255)
    assert np.all(np.diff(alpha) >= 0)
    assert colorize(np.array([[np.nan, -3.0, 7.0]]))[0, :, 3].tolist() == [0, 0, round(MAX_ALPHA * 255)]
