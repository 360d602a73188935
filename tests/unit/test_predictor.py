"""Predictors: TFLite agrees with Keras, runs without TensorFlow, is safe across threads; load_predictor
serves the export only when the model card vouches for it."""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from deepfake_detector.contracts.errors import ConfigError, ModelError
from deepfake_detector.inference import load_image, load_predictor, load_served_model
from deepfake_detector.inference.keras_backend import KerasPredictor
from deepfake_detector.inference.predictor import TFLitePredictor
from deepfake_detector.utils.files import sha256_file
from tests.unit.inference_fixtures import (
    TOY_SIZE,
    encode,
    export_tflite,
    photo,
    random_pixels,
    toy_detector,
    write_model_card,
)

# The export stage refuses a float32 TFLite file further than this from Keras.
FLOAT32_TOLERANCE = 1e-4
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """model.h5 and an export folder (float32 and full-integer TFLite files, model card) for a toy model."""
    root = tmp_path_factory.mktemp("inference")
    model = toy_detector()
    model_file = root / "training" / "model.h5"
    model_file.parent.mkdir()
    model.save(model_file)
    export_dir = root / "export"
    export_dir.mkdir()
    float32 = export_tflite(model, export_dir / "model.tflite")
    int8_full = export_tflite(
        model, export_dir / "model_int8_full.tflite", optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=lambda: ([batch] for batch in random_pixels(8, seed=5)[:, None]),
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        inference_input_type=tf.uint8, inference_output_type=tf.uint8)
    write_model_card(export_dir, model_file, {"float32": float32, "int8_full": int8_full}, threshold=0.4)
    return {"model": model, "model_file": model_file, "export_dir": export_dir, "float32": float32,
            "int8_full": int8_full}


@pytest.fixture(scope="module")
def tflite(artifacts):
    return TFLitePredictor(artifacts["float32"], num_threads=1, variant="float32")


@pytest.fixture(scope="module")
def keras_predictor(artifacts):
    return KerasPredictor(artifacts["model_file"])


def copy_artifacts(artifacts, tmp_path) -> tuple[Path, Path]:
    """A private copy of model.h5 and the export folder, for tests that change files."""
    model_file = tmp_path / "model.h5"
    shutil.copy(artifacts["model_file"], model_file)
    export_dir = tmp_path / "export"
    shutil.copytree(artifacts["export_dir"], export_dir)
    return model_file, export_dir


@pytest.mark.parametrize("count", [1, 3, 40])
def test_tflite_matches_keras_model(artifacts, tflite, count):
    images = random_pixels(count, seed=count)
    expected = artifacts["model"](images, training=False).numpy()[:, 0]
    scores = tflite.predict(images)
    assert scores.shape == (count,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, rtol=0, atol=FLOAT32_TOLERANCE)
    assert np.ptp(scores) > 1e-3 or count == 1  # the toy model really tells images apart


def test_empty_batch_gives_empty_scores(tflite, keras_predictor):
    empty = np.zeros((0, TOY_SIZE, TOY_SIZE, 3), np.float32)
    assert tflite.predict(empty).shape == (0,)
    assert keras_predictor.predict(empty).shape == (0,)


def test_keras_predictor_matches_the_model(artifacts, keras_predictor):
    images = random_pixels(5, seed=11)
    np.testing.assert_allclose(keras_predictor.predict(images), artifacts["model"](images).numpy()[:, 0],
                               rtol=0, atol=1e-6)
    assert (keras_predictor.backend, keras_predictor.variant, keras_predictor.image_size) == ("keras", "keras",
                                                                                             TOY_SIZE)


def test_changing_batch_sizes_do_not_change_scores(tflite):
    images = random_pixels(4, seed=2)
    alone = [tflite.predict(images[i:i + 1])[0] for i in range(4)]
    np.testing.assert_allclose(tflite.predict(images), alone, rtol=0, atol=1e-6)
    np.testing.assert_allclose(tflite.predict(images[:2]), alone[:2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(TOY_SIZE, TOY_SIZE, 3), (1, 64, 64, 3), (2, TOY_SIZE, TOY_SIZE, 1)])
def test_wrong_input_shape_names_the_expected_one(tflite, keras_predictor, shape):
    for predictor in (tflite, keras_predictor):
        expected = r"expected a batch of shape \(N, 32, 32, 3\), got " + re.escape(str(shape))
        with pytest.raises(ValueError, match=expected):
            predictor.predict(np.zeros(shape, np.float32))


def test_predict_image_decodes_and_resizes_like_training(tflite, tmp_path):
    data = encode(photo(90, 70), "JPEG", quality=90)
    (tmp_path / "face.jpg").write_bytes(data)
    expected = tflite.predict(load_image(data, TOY_SIZE)[None])[0]
    assert tflite.predict_image(data) == pytest.approx(expected, abs=1e-9)
    assert tflite.predict_image(tmp_path / "face.jpg") == pytest.approx(expected, abs=1e-9)


def test_tflite_predictor_describes_itself(artifacts, tflite):
    assert (tflite.backend, tflite.variant, tflite.image_size) == ("tflite", "float32", TOY_SIZE)
    assert tflite.model_path == artifacts["float32"]
    assert TFLitePredictor(artifacts["float32"]).variant == "model"  # no variant given: the file stem


def test_full_integer_model_takes_floats_and_returns_probabilities(artifacts, tflite):
    quantized = TFLitePredictor(artifacts["int8_full"], num_threads=1)
    assert quantized._input["dtype"] == np.uint8 and quantized._output["dtype"] == np.uint8
    images = random_pixels(6, seed=8)
    scores = quantized.predict(images)
    assert scores.dtype == np.float64 and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(scores, tflite.predict(images), rtol=0, atol=0.05)


@pytest.mark.parametrize("mode", ["interpreter per thread", "one locked interpreter", "keras"])
def test_concurrent_predictions_equal_sequential_ones(artifacts, keras_predictor, mode):
    if mode == "keras":
        predictor = keras_predictor
    else:
        predictor = TFLitePredictor(artifacts["float32"], num_threads=1,
                                    per_thread_interpreters=mode == "interpreter per thread")
    batches = [random_pixels(1 + i % 3, seed=100 + i) for i in range(8)]
    expected = [predictor.predict(batch) for batch in batches]
    results: dict[int, list[np.ndarray]] = {}
    barrier = threading.Barrier(len(batches))

    def work(index: int) -> None:
        barrier.wait()
        results[index] = [predictor.predict(batches[index]) for _ in range(5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, batch_results in results.items():
        for scores in batch_results:
            np.testing.assert_allclose(scores, expected[index], rtol=0, atol=1e-6)
    assert len(results) == len(batches)


def test_interpreters_grow_to_the_predictions_run_at_once_not_to_the_threads(artifacts):
    """A server worker has more threads than prediction slots (the others wait for a slot or answer health
    checks); each interpreter costs its own arena and packed weights, so only calls running at once may add one."""
    predictor = TFLitePredictor(artifacts["float32"], num_threads=1)
    slots = threading.Semaphore(2)
    barrier = threading.Barrier(8)
    images = random_pixels(1, seed=3)

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            with slots:
                predictor.predict(images)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= predictor.interpreters <= 2


def test_tflite_backend_never_imports_tensorflow(artifacts):
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import deepfake_detector.inference as inference
        predictor = inference.load_predictor({str(artifacts["model_file"])!r}, {str(artifacts["export_dir"])!r},
                                             backend="tflite")
        predictor.warm_up()
        predictor.predict(np.zeros((2, {TOY_SIZE}, {TOY_SIZE}, 3), np.float32))
        predictor.explain(np.zeros(({TOY_SIZE}, {TOY_SIZE}, 3), np.float32))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_tflite_explanation_is_an_occlusion_map(tflite):
    image = random_pixels(1, seed=4)[0]
    explanation = tflite.explain(image)
    assert explanation.method == "occlusion"
    assert explanation.heatmap.shape == (TOY_SIZE, TOY_SIZE) and explanation.heatmap.dtype == np.float32
    assert 0.0 <= explanation.heatmap.min() and explanation.heatmap.max() <= 1.0
    assert explanation.p_fake == pytest.approx(tflite.predict(image[None])[0], abs=1e-9)


def test_auto_serves_tflite_when_the_card_matches(artifacts, caplog):
    with caplog.at_level(logging.INFO, logger="deepfake_detector.inference.served_model"):
        predictor = load_predictor(artifacts["model_file"], artifacts["export_dir"])
    assert (predictor.backend, predictor.variant) == ("tflite", "float32")
    assert (predictor.rule.threshold, predictor.rule.source) == (0.4, "model_card.json")
    assert "TFLite backend" in caplog.text


def test_auto_serves_tflite_when_only_the_export_folder_ships(artifacts, tmp_path):
    predictor = load_predictor(tmp_path / "absent.h5", artifacts["export_dir"], variant="int8_full")
    assert (predictor.backend, predictor.variant) == ("tflite", "int8_full")


def test_auto_falls_back_to_keras_when_model_changed_after_export(artifacts, tmp_path, caplog):
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    toy_detector(seed=1).save(model_file)  # retrained, not re-exported
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.inference.served_model"):
        predictor = load_predictor(model_file, export_dir)
    assert predictor.backend == "keras"
    assert "stale" in caplog.text
    assert predictor.rule.source == "default"  # the stale card speaks for another model


def test_auto_falls_back_to_keras_without_an_export(artifacts, tmp_path):
    assert load_predictor(artifacts["model_file"], tmp_path / "no_export").backend == "keras"
    assert load_predictor(artifacts["model_file"], None).backend == "keras"


def test_auto_falls_back_to_keras_when_an_export_was_tampered_with(artifacts, tmp_path, caplog):
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    with open(export_dir / "model.tflite", "ab") as handle:
        handle.write(b"\0")
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.inference.served_model"):
        assert load_predictor(model_file, export_dir).backend == "keras"
    assert "changed after export" in caplog.text


def test_auto_without_any_usable_model_says_why(tmp_path):
    with pytest.raises(ModelError, match="no model to serve: .*absent.h5 not found"):
        load_predictor(tmp_path / "absent.h5", tmp_path / "export")


def test_tflite_backend_needs_the_model_card(artifacts, tmp_path):
    with pytest.raises(ModelError, match="model_card.json: not found"):
        load_predictor(artifacts["model_file"], tmp_path, backend="tflite")


def test_tflite_backend_refuses_a_tampered_file(artifacts, tmp_path):
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    with open(export_dir / "model.tflite", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"model.tflite: SHA-256 .* differs from the model card"):
        load_predictor(model_file, export_dir, backend="tflite")


def test_tflite_backend_names_the_variants_the_card_has(artifacts):
    with pytest.raises(ModelError, match="no 'float16' export .*has: float32, int8_full"):
        load_predictor(artifacts["model_file"], artifacts["export_dir"], backend="tflite", variant="float16")


def test_tflite_backend_warns_when_the_export_is_stale(artifacts, tmp_path, caplog):
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    card = json.loads((export_dir / "model_card.json").read_text())
    card["source"]["sha256"] = "0" * 64
    (export_dir / "model_card.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.inference.served_model"):
        assert load_predictor(model_file, export_dir, backend="tflite").backend == "tflite"
    assert "stale" in caplog.text


def test_the_cards_temperature_calibrates_every_score(artifacts, tflite, tmp_path):
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    card = json.loads((export_dir / "model_card.json").read_text())
    card["output"] = {"threshold": 0.2, "temperature": 2.0}
    (export_dir / "model_card.json").write_text(json.dumps(card))
    predictor = load_predictor(model_file, export_dir)
    assert (predictor.rule.threshold, predictor.rule.temperature) == (0.2, 2.0)
    images = random_pixels(3, seed=6)
    np.testing.assert_allclose(predictor.predict(images), predictor.rule.calibrate(tflite.predict(images)),
                               rtol=0, atol=1e-9)


def break_card(export_dir: Path, change) -> None:
    """Rewrite export_dir's card with change(card) applied (a dict edit), or with change as its raw text."""
    path = export_dir / "model_card.json"
    if isinstance(change, str):
        path.write_text(change)
        return
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


# Cards that exist but whose decision rule cannot be honored, and what the error says.
UNUSABLE_CARDS = {
    "threshold 1.0": (lambda card: card["output"].update(threshold=1.0), "strictly between 0 and 1, got 1.0"),
    "threshold 0": (lambda card: card["output"].update(threshold=0), "strictly between 0 and 1, got 0"),
    "threshold 1.7": (lambda card: card["output"].update(threshold=1.7), "strictly between 0 and 1, got 1.7"),
    "threshold text": (lambda card: card["output"].update(threshold="0.4"), "strictly between 0 and 1, got '0.4'"),
    "temperature 0": (lambda card: card["output"].update(temperature=0), "temperature must be a positive number"),
    "temperature -2": (lambda card: card["output"].update(temperature=-2), "temperature must be a positive number"),
    "no output": (lambda card: card.pop("output"), "output must be an object"),
    "not JSON": ("{ half a card", "model_card.json: unreadable"),
}


@pytest.mark.parametrize("backend", ["auto", "keras", "tflite"])
@pytest.mark.parametrize("broken", list(UNUSABLE_CARDS))
def test_a_card_whose_rule_cannot_be_honored_is_an_error_not_a_fallback(artifacts, tmp_path, backend, broken):
    """With model.h5 beside it, auto (and keras) used to serve Keras at 0.5 when the card was unusable."""
    model_file, export_dir = copy_artifacts(artifacts, tmp_path)
    change, message = UNUSABLE_CARDS[broken]
    break_card(export_dir, change)
    with pytest.raises(ModelError, match=re.escape(message)) as raised:
        load_predictor(model_file, export_dir, backend=backend)
    assert str(export_dir / "model_card.json") in str(raised.value)


def test_malformed_scores_of_a_model_without_card_are_an_error(artifacts, tmp_path):
    """No card speaks for this model, so scores.json might: a broken one stops serving, not the rule."""
    scores_file = tmp_path / "scores.json"
    scores_file.write_text(json.dumps({"threshold": 1.0, "model_sha256": sha256_file(artifacts["model_file"])}))
    with pytest.raises(ModelError, match=r"scores.json: a decision threshold must lie strictly between 0 and 1"):
        load_served_model(artifacts["model_file"], None, backend="keras", scores_file=scores_file)


def test_broken_scores_of_another_model_do_not_keep_serving_down(artifacts, tmp_path):
    """A stale scores.json from an earlier model is ignored, however broken: it is not this model's rule."""
    scores_file = tmp_path / "scores.json"
    scores_file.write_text(json.dumps({"threshold": 1.0, "model_sha256": "0" * 64}))
    served = load_served_model(artifacts["model_file"], None, backend="keras", scores_file=scores_file)
    assert served.scores is None and served.rule.source == "default"


def test_scores_are_not_read_when_the_card_speaks_for_the_model(artifacts, tmp_path):
    scores_file = tmp_path / "scores.json"
    scores_file.write_text("not json")
    served = load_served_model(artifacts["model_file"], artifacts["export_dir"], scores_file=scores_file)
    assert served.rule.source == "model_card.json" and served.scores is None


def test_a_configured_threshold_outside_the_unit_interval_is_a_config_error(artifacts):
    with pytest.raises(ConfigError, match="serve.threshold: a decision threshold must lie strictly between 0 and 1"):
        load_served_model(artifacts["model_file"], artifacts["export_dir"], threshold=1.0)


def test_keras_backend_loads_model_file(artifacts):
    predictor = load_predictor(artifacts["model_file"], artifacts["export_dir"], backend="keras")
    assert predictor.backend == "keras" and predictor.rule.threshold == 0.4  # the card was made from it


@pytest.mark.parametrize(("options", "message"), [
    ({"backend": "onnx"}, "unknown backend 'onnx': expected one of auto, tflite, keras"),
    ({"variant": "int4"},
     "unknown TFLite variant 'int4': expected one of float32, float16, int8_dynamic, int8_full, auto$"),
])
def test_unknown_backend_or_variant_lists_the_valid_ones(artifacts, options, message):
    with pytest.raises(ValueError, match=message):
        load_predictor(artifacts["model_file"], artifacts["export_dir"], **options)


def test_missing_or_corrupt_model_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="absent.tflite: TFLite model not found"):
        TFLitePredictor(tmp_path / "absent.tflite")
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ModelError, match="junk.tflite: not a valid TFLite model"):
        TFLitePredictor(tmp_path / "junk.tflite")
    with pytest.raises(ModelError, match="absent.h5: Keras model not found"):
        KerasPredictor(tmp_path / "absent.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5" * 10)
    with pytest.raises(ModelError, match="junk.h5: cannot load the Keras model"):
        KerasPredictor(tmp_path / "junk.h5")
