"""Model factory: input/output contract, in-model preprocessing, BN settings, weights, h5 round trip."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from deepfake_detector.components.model import factory as model_factory
from deepfake_detector.components.model.factory import ModelPreparer, build_model, imagenet_weights_name
from deepfake_detector.config.entities import ModelConfig
from deepfake_detector.contracts.errors import ModelError


def tiny_config(root: Path, **overrides) -> ModelConfig:
    settings = dict(root_dir=root, model_file=root / "base_model.h5", summary_file=root / "summary.json",
                    alpha=0.35, image_size=32, weights="none", dropout=0.2, batch_norm_momentum=0.9,
                    freeze_batch_norm=False, seed=7)
    settings.update(overrides)
    return ModelConfig(**settings)


def pixels(count: int = 4, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype("float32")


def test_full_size_model_takes_224_px_rgb_and_outputs_one_probability(tmp_path):
    model = build_model(tiny_config(tmp_path, alpha=1.0, image_size=224))
    assert model.count_params() == 2_259_265
    assert tuple(model.input_shape) == (None, 224, 224, 3)
    assert tuple(model.output_shape) == (None, 1)
    assert model.layers[-1].name == "p_fake"
    assert model.layers[-1].activation is keras.activations.sigmoid


def test_model_scales_raw_pixels_to_minus_one_one_itself(tmp_path):
    model = build_model(tiny_config(tmp_path, dropout=0.0))
    x = pixels()
    features = model.get_layer("backbone")(x / 127.5 - 1.0, training=False)
    expected = model.get_layer("p_fake")(model.get_layer("pool")(features))
    np.testing.assert_allclose(model(x, training=False), expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_layers_use_configured_momentum(tmp_path):
    model = build_model(tiny_config(tmp_path, batch_norm_momentum=0.9))
    momenta = {layer.momentum for layer in model.get_layer("backbone").layers
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


def test_frozen_batch_norm_uses_stored_statistics_while_training(tmp_path):
    model = build_model(tiny_config(tmp_path, dropout=0.0, freeze_batch_norm=True))
    x = pixels()
    np.testing.assert_array_equal(model(x, training=True), model(x, training=False))


def test_same_seed_builds_identical_weights(tmp_path):
    first, second = build_model(tiny_config(tmp_path)), build_model(tiny_config(tmp_path))
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_saved_h5_model_loads_back_with_identical_predictions(tmp_path):
    config = tiny_config(tmp_path, freeze_batch_norm=True)
    ModelPreparer(config).run()
    loaded = keras.models.load_model(config.model_file, compile=False)
    x = pixels()
    np.testing.assert_array_equal(loaded(x, training=False), build_model(config)(x, training=False))
    assert loaded.get_layer("backbone").get_layer("bn_Conv1").trainable is False


def test_summary_file_describes_the_model(tmp_path):
    config = tiny_config(tmp_path)
    prepared = ModelPreparer(config).run()
    summary = json.loads(config.summary_file.read_text())
    assert summary["total_parameters"] == prepared.total_parameters == 411_489
    assert summary["trainable_parameters"] == prepared.trainable_parameters
    assert summary["backbone_layers"] == 154
    assert (summary["alpha"], summary["image_size"], summary["weights"]) == (0.35, 32, "none")


def test_imagenet_weights_offline_raise_model_error_naming_the_file_to_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # A closed local port: the download fails at once, whether or not this machine has internet.
    monkeypatch.setattr(model_factory, "IMAGENET_WEIGHTS_URL", "http://127.0.0.1:9/")
    with pytest.raises(ModelError) as error:
        build_model(tiny_config(tmp_path, weights="imagenet"))
    message = str(error.value)
    assert imagenet_weights_name(0.35, 32) in message
    assert str(tmp_path / "keras" / "models") in message
    assert "model.weights" in message
    assert not list((tmp_path / "keras" / "models").glob("*"))  # no partial download left behind


def test_imagenet_weights_are_taken_from_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(model_factory, "IMAGENET_WEIGHTS_URL", "http://127.0.0.1:9/")
    source = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    cached = tmp_path / "keras" / "models" / imagenet_weights_name(0.35, 32)
    cached.parent.mkdir(parents=True)
    source.save(cached)  # a legacy .h5 file, as Keras publishes the ImageNet weights
    model = build_model(tiny_config(tmp_path, weights="imagenet"))
    np.testing.assert_array_equal(model.get_layer("backbone").get_layer("Conv1").kernel,
                                  source.get_layer("Conv1").kernel)


def test_weights_file_path_loads_backbone_weights(tmp_path):
    source = build_model(tiny_config(tmp_path, seed=99)).get_layer("backbone")
    weights_file = tmp_path / "backbone.weights.h5"
    source.save_weights(weights_file)
    model = build_model(tiny_config(tmp_path, weights=str(weights_file)))
    for a, b in zip(model.get_layer("backbone").get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_missing_weights_file_raises_model_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(ModelError, match="nowhere.weights.h5"):
        build_model(tiny_config(tmp_path, weights=str(missing)))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_for_another_architecture_raises_model_error(tmp_path):
    other = build_model(tiny_config(tmp_path, alpha=0.5)).get_layer("backbone")
    weights_file = tmp_path / "alpha_0.5.weights.h5"
    other.save_weights(weights_file)
    with pytest.raises(ModelError, match="alpha_0.5.weights.h5"):
        build_model(dataclasses.replace(tiny_config(tmp_path), weights=str(weights_file)))


def test_npr_model_sees_only_how_neighbours_relate(tmp_path):
    """The neighbouring-pixel residual cancels whatever is constant over each 2x2 cell: any
    nearest-enlarged image reaches the backbone as flat mid-gray, detail does not."""
    rng = np.random.default_rng(1)
    cells = rng.uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    enlarged = np.repeat(np.repeat(cells, 2, axis=1), 2, axis=2)
    model = build_model(tiny_config(tmp_path, representation="npr"))
    front = keras.Model(model.input, model.get_layer("npr").output)
    np.testing.assert_allclose(front.predict(enlarged, verbose=0), 127.5, atol=1e-4)
    detail = front.predict(pixels(2), verbose=0)
    assert np.abs(detail - 127.5).mean() > 20
    assert np.abs(detail[:, 0::2, 0::2] - 127.5).max() < 1e-4  # each cell's own corner is the reference


def test_npr_front_is_saved_inside_the_model(tmp_path):
    config = tiny_config(tmp_path, representation="npr")
    ModelPreparer(config).run()
    restored = keras.models.load_model(config.model_file)
    assert "npr_residual" in [layer.name for layer in restored.layers]
    assert json.loads(config.summary_file.read_text())["representation"] == "npr"
    images = pixels(2)
    np.testing.assert_allclose(restored.predict(images, verbose=0), build_model(config).predict(images, verbose=0),
                               atol=1e-6)
