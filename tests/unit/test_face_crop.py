"""crop_face, the one face crop: the native square is where the arithmetic says, its pixels are the image's own,
and an aligned crop's heatmap lands back on the face it came from."""
import numpy as np
import pytest
import skimage.data as skimage_data
from PIL import Image

from deepfake_detector.inference.boxes import Box
from deepfake_detector.inference.face_crop import crop_face, face_square, heatmap_in_box
from deepfake_detector.inference.face_detection import Face, FaceDetector


def face_at(x: float, y: float, side: float) -> Face:
    return Face(x, y, side, side, 0.9, {"right_eye": (x + 0.3 * side, y + 0.4 * side),
                                        "left_eye": (x + 0.7 * side, y + 0.4 * side)})


def test_the_native_square_grows_the_face_by_the_margin_and_stays_inside_the_image():
    assert face_square(face_at(100, 100, 50), 0.2, 400, 300) == Box(90, 90, 70, 70)
    assert face_square(face_at(5, 250, 50), 0.2, 400, 300) == Box(0, 230, 70, 70)  # moved in from two edges
    assert face_square(face_at(0, 0, 300), 0.2, 400, 300) == Box(0, 0, 400, 300)  # larger than the image: clipped


def test_a_small_face_is_shown_with_context_at_the_models_size_never_enlarged():
    image = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    crop = crop_face(image, face_at(150, 100, 60), 224, mode="native", margin=0.2, fit="crop")
    assert crop.box == Box(68, 18, 224, 224)  # centred on the face's centre (180, 130)
    np.testing.assert_array_equal(crop.pixels, image[18:242, 68:292].astype(np.float32))
    near_the_edge = crop_face(image, face_at(0, 0, 60), 224, mode="native", margin=0.2, fit="crop")
    assert near_the_edge.box == Box(0, 0, 224, 224)  # moved inside the picture
    resized = crop_face(image, face_at(150, 100, 60), 224, mode="native", margin=0.2, fit="resize")
    assert resized.box == Box(138, 88, 84, 84)  # the resize fit scores the face square itself


def test_a_large_face_is_scored_on_its_center_square_at_the_images_own_resolution():
    image = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    crop = crop_face(image, face_at(250, 150, 250), 224, mode="native", margin=0.2, fit="crop")
    assert crop.box == Box(263, 163, 224, 224)  # the 350 px square at (200, 100), its center 224 px
    np.testing.assert_array_equal(crop.pixels, image[163:387, 263:487].astype(np.float32))


def test_an_aligned_crops_heatmap_lands_back_on_the_face():
    picture = np.asarray(Image.fromarray(skimage_data.astronaut()).rotate(20, resample=Image.Resampling.BILINEAR))
    [face] = FaceDetector().detect(picture)
    crop = crop_face(picture, face, 224, mode="aligned")
    # A hot spot where alignment puts the subject's right eye: (1/2 - 1/8, 0.42) of the crop.
    ys, xs = np.mgrid[0:224, 0:224]
    hot = np.exp(-((xs - 0.375 * 224) ** 2 + (ys - 0.42 * 224) ** 2) / (2 * 4.0 ** 2))

    overlay = heatmap_in_box(crop, hot)

    assert overlay.shape == (crop.box.height, crop.box.width)
    y, x = np.unravel_index(np.argmax(overlay), overlay.shape)
    eye_x, eye_y = face.landmarks["right_eye"]
    assert (crop.box.x + x, crop.box.y + y) == pytest.approx((eye_x, eye_y), abs=3)
    assert overlay[0, 0] == 0 and overlay[-1, -1] == 0  # the box's corners lie outside the turned square


def test_a_native_crops_heatmap_is_its_own():
    heatmap = np.random.default_rng(1).random((7, 7))
    crop = crop_face(np.zeros((300, 300, 3), np.uint8), face_at(100, 100, 100), 224, mode="native")
    assert heatmap_in_box(crop, heatmap) is heatmap


def test_a_face_whose_eyes_coincide_is_cropped_natively_when_alignment_is_asked_for():
    image = np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    face = Face(100, 100, 100, 100, 0.9, {"right_eye": (150.0, 140.0), "left_eye": (150.2, 140.0)})
    aligned = crop_face(image, face, 224, mode="aligned")
    native = crop_face(image, face, 224, mode="native")
    assert aligned.matrix is None and aligned.box == native.box
    np.testing.assert_array_equal(aligned.pixels, native.pixels)


def test_an_unknown_crop_way_is_refused_by_name():
    with pytest.raises(ValueError, match="'rotated'"):
        crop_face(np.zeros((50, 50, 3), np.uint8), face_at(10, 10, 20), 32, mode="rotated")
