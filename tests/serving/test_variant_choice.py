"""serve.variant auto: the export that passed the AUC gate and runs fastest on this CPU serves, and
/api/v1/model says which and why; a configured variant serves as configured."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from deepfake_detector.contracts.model_card import read_model_card
from deepfake_detector.inference import variant_choice
from deepfake_detector.inference.variant_choice import choose_variant
from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.utils.files import sha256_file
from tests.serving import sample_images
from tests.serving.conftest import serving_config
from tests.tiny_served_model import IMAGE_SIZE


@pytest.fixture(scope="module")
def slow_tflite(tmp_path_factory) -> Path:
    """A TFLite model with the detector's input and output that takes far longer than the tiny MobileNetV2
    (two 64-channel full-resolution convolutions: about 170 M multiply-adds against 3 M)."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    path = tmp_path_factory.mktemp("slow_export") / "slow.tflite"
    keras.Model(inputs, outputs).export(str(path), format="litert", verbose=False)
    return path


def gated_project(project: Path, root: Path, exports: dict[str, Path], gated: bool = True) -> Path:
    """The session's model.h5 and scores.json, with an export folder holding the given files as the given
    variants, each recorded as having passed the AUC gate (val_auc_drop) unless gated is false."""
    shutil.copy(project / "model.h5", root / "model.h5")
    shutil.copy(project / "scores.json", root / "scores.json")
    (root / "export").mkdir()
    card = json.loads((project / "export" / "model_card.json").read_text())
    card["exports"] = {}
    for variant, source in exports.items():
        name = f"{variant}.tflite"
        shutil.copy(source, root / "export" / name)
        card["exports"][variant] = {"file": name, "sha256": sha256_file(root / "export" / name),
                                    **({"val_auc_drop": 0.001} if gated else {})}
    (root / "export" / "model_card.json").write_text(json.dumps(card))
    return root


def model_info(root: Path, templates_dir: Path, **overrides) -> dict:
    app = create_app(serving_config(root, **overrides), root=root, environ={}, template_folder=templates_dir,
                     retry_interval_s=None)
    return app.test_client().get("/api/v1/model").get_json()


@pytest.fixture
def fast_and_slow(project, slow_tflite, tmp_path) -> Path:
    """float32 is the slow model, int8_full the tiny one: only a measurement can tell auto to pick int8_full."""
    return gated_project(project, tmp_path, {"float32": slow_tflite, "int8_full": project / "export" / "model.tflite"})


def test_auto_serves_the_fastest_gated_export_and_says_why(fast_and_slow, templates_dir):
    app = create_app(serving_config(fast_and_slow, backend="auto", variant="auto"), root=fast_and_slow, environ={},
                     template_folder=templates_dir, retry_interval_s=None)
    client = app.test_client()
    info = client.get("/api/v1/model").get_json()
    assert (info["backend"], info["variant"], info["model_file"]) == ("tflite", "int8_full", "int8_full.tflite")
    choice = info["variant_choice"]
    assert choice["mode"] == "auto" and choice["reason"].startswith("fastest on this CPU")
    assert set(choice["p50_ms"]) == {"float32", "int8_full"}
    assert choice["p50_ms"]["int8_full"] < choice["p50_ms"]["float32"]
    answer = client.post("/api/v1/predict", json={"image": base64.b64encode(sample_images.jpeg()).decode()}).get_json()
    assert answer["variant"] == "int8_full"


def test_a_configured_variant_serves_as_configured(fast_and_slow, templates_dir):
    info = model_info(fast_and_slow, templates_dir, variant="float32")
    assert info["variant"] == "float32" and info["model_file"] == "float32.tflite"
    assert info["variant_choice"] == {"mode": "configured", "reason": "configured: float32 (serve.variant)",
                                      "p50_ms": None}


def test_the_only_gated_export_serves_unmeasured(project, templates_dir, tmp_path, monkeypatch):
    root = gated_project(project, tmp_path, {"int8_full": project / "export" / "model.tflite"})
    monkeypatch.setattr(variant_choice, "_measure", lambda *args: pytest.fail("nothing to compare, yet measured"))
    info = model_info(root, templates_dir, variant="auto")
    assert info["variant"] == "int8_full"
    assert info["variant_choice"]["p50_ms"] is None
    assert "int8_full is the only export that passed the AUC gate" in info["variant_choice"]["reason"]


def test_a_card_from_before_the_gate_serves_float32_and_says_so(project, slow_tflite, templates_dir, tmp_path):
    root = gated_project(project, tmp_path, {"float32": slow_tflite, "int8_full": project / "export" / "model.tflite"},
                         gated=False)
    info = model_info(root, templates_dir, variant="auto")
    assert info["variant"] == "float32" and info["variant_choice"]["p50_ms"] is None
    assert "predates the export AUC gate" in info["variant_choice"]["reason"]


def test_a_gated_export_that_does_not_load_is_left_out(fast_and_slow, templates_dir):
    (fast_and_slow / "export" / "float32.tflite").write_bytes(b"changed after the export")
    info = model_info(fast_and_slow, templates_dir, variant="auto")
    assert info["variant"] == "int8_full"
    assert "left out: float32 (does not load)" in info["variant_choice"]["reason"]
    assert set(info["variant_choice"]["p50_ms"]) == {"int8_full"}


@pytest.mark.parametrize(("p50_ms", "expected"), [
    ({"float32": 5.4, "int8_full": 5.0}, "float32"),   # within 10 %: the export closer to the trained model
    ({"float32": 6.0, "int8_full": 5.0}, "int8_full"),
])
def test_near_ties_go_to_the_export_closer_to_the_trained_model(fast_and_slow, monkeypatch, p50_ms, expected):
    monkeypatch.setattr(variant_choice, "_measure", lambda *args: (p50_ms, {}))
    choice = choose_variant(read_model_card(fast_and_slow / "export"), num_threads=1)
    assert choice.variant == expected and choice.p50_ms == p50_ms
    assert ("closer to the trained model" in choice.reason) == (expected == "float32")
