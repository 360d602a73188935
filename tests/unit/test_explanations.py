"""Heatmaps: occlusion finds the region a prediction depends on; Grad-CAM runs on the real architecture."""
from __future__ import annotations

import numpy as np
import pytest

from deepfake_detector.inference.explanations import normalize, occlusion_map, upsample_heatmap
from deepfake_detector.inference.keras_backend import KerasPredictor
from tests.unit.inference_fixtures import mobilenet_detector, random_pixels

SIZE = 64


def quadrant_scorer(row: slice, col: slice, fake_when_bright: bool = True):
    """A toy batch predictor whose P(fake) depends only on the brightness of one quadrant."""
    calls = []

    def predict_batch(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        brightness = images[:, row, col].mean(axis=(1, 2, 3)) / 255.0
        return brightness if fake_when_bright else 1.0 - brightness

    return predict_batch, calls


def quadrant_of_peak(heatmap: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    return int(row >= SIZE // 2), int(col >= SIZE // 2)


@pytest.mark.parametrize(("quadrant", "row", "col"), [((0, 0), slice(0, 32), slice(0, 32)),
                                                       ((1, 0), slice(32, 64), slice(0, 32)),
                                                       ((1, 1), slice(32, 64), slice(32, 64))])
def test_occlusion_peaks_in_the_quadrant_the_score_depends_on(quadrant, row, col):
    image = np.full((SIZE, SIZE, 3), 250.0, np.float32)  # bright: P(fake) near 1, occluding lowers it
    predict_batch, _ = quadrant_scorer(row, col)
    heatmap, p_fake = occlusion_map(predict_batch, image)
    assert heatmap.shape == (SIZE, SIZE) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    assert p_fake == pytest.approx(250 / 255)
    assert quadrant_of_peak(heatmap) == quadrant
    outside = np.ones((SIZE, SIZE), bool)
    outside[row, col] = False
    assert heatmap[outside].max() < heatmap.max()


def test_occlusion_explains_a_real_prediction_by_what_raises_p_fake():
    # Dark image scored "real" (P(fake) low) by a predictor that calls bright bottom-right quadrants fake:
    # graying that quadrant raises P(fake), so that is the evidence for "real".
    image = np.full((SIZE, SIZE, 3), 10.0, np.float32)
    predict_batch, _ = quadrant_scorer(slice(32, 64), slice(32, 64))
    heatmap, p_fake = occlusion_map(predict_batch, image)
    assert p_fake < 0.5
    assert quadrant_of_peak(heatmap) == (1, 1)


def test_occlusion_map_is_zero_when_no_region_matters():
    heatmap, p_fake = occlusion_map(lambda images: np.full(len(images), 0.9), np.zeros((SIZE, SIZE, 3)))
    assert p_fake == pytest.approx(0.9)
    assert not heatmap.any()


def test_occlusion_scores_masked_copies_in_batches():
    predict_batch, calls = quadrant_scorer(slice(0, 32), slice(0, 32))
    occlusion_map(predict_batch, np.full((SIZE, SIZE, 3), 200.0), grid=8, batch_size=20)
    assert calls == [1, 20, 20, 20, 4]


def test_occlusion_works_when_the_grid_does_not_divide_the_size():
    heatmap, _ = occlusion_map(quadrant_scorer(slice(0, 25), slice(0, 25))[0], np.full((50, 50, 3), 240.0), grid=8)
    assert heatmap.shape == (50, 50) and quadrant_of_peak(heatmap) == (0, 0)


def test_occlusion_refuses_a_batch_or_non_square_image():
    with pytest.raises(ValueError, match="one square RGB image"):
        occlusion_map(lambda images: np.zeros(len(images)), np.zeros((2, SIZE, SIZE, 3)))


def test_upsampled_heatmap_stays_in_unit_range():
    cam = normalize(np.array([[0.0, 3.0], [1.0, 0.5]]))
    assert cam.max() == 1.0
    heatmap = upsample_heatmap(cam, 40)
    assert heatmap.shape == (40, 40) and heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    assert not normalize(np.zeros((3, 3))).any()


@pytest.fixture(scope="module")
def mobilenet_predictor(tmp_path_factory):
    root = tmp_path_factory.mktemp("grad_cam")
    mobilenet_detector(root, size=SIZE).save(root / "model.h5")
    return KerasPredictor(root / "model.h5")


def test_grad_cam_on_the_real_architecture(mobilenet_predictor):
    image = random_pixels(1, SIZE, seed=3)[0]
    explanation = mobilenet_predictor.explain(image)
    assert explanation.method == "grad-cam"
    assert explanation.heatmap.shape == (SIZE, SIZE) and explanation.heatmap.dtype == np.float32
    assert explanation.heatmap.min() >= 0.0 and explanation.heatmap.max() <= 1.0
    assert explanation.heatmap.max() > 0.0
    assert explanation.p_fake == pytest.approx(mobilenet_predictor.predict(image[None])[0], abs=1e-5)


def test_grad_cam_explains_either_class(mobilenet_predictor):
    image = random_pixels(1, SIZE, seed=5)[0]
    p_fake = mobilenet_predictor.predict(image[None])[0]
    as_fake = mobilenet_predictor.explain(image, threshold=min(p_fake, 0.999))
    as_real = mobilenet_predictor.explain(image, threshold=max(p_fake + 1e-3, 1e-3))
    assert as_fake.p_fake == pytest.approx(as_real.p_fake)
    assert not np.allclose(as_fake.heatmap, as_real.heatmap)


def test_model_without_the_detector_layout_is_explained_by_occlusion(tmp_path):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=4)(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "plain.h5")
    explanation = KerasPredictor(tmp_path / "plain.h5").explain(random_pixels(1, SIZE)[0])
    assert explanation.method == "occlusion" and explanation.heatmap.shape == (SIZE, SIZE)
