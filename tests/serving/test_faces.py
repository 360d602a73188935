"""Optional face cropping with BlazeFace: the largest face, or every face with the image scored by its most fake
one; no face found means the whole image is scored and the answer says so. The crop scored is the one
inference.face_crop.crop_face gives, natively or aligned."""
import io

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.inference.face_crop import crop_face
from deepfake_detector.inference.face_detection import FaceDetector
from tests.serving import sample_images


def portrait() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data: one clear frontal face."""
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def two_faces() -> np.ndarray:
    """The portrait beside a smaller mirrored copy of itself."""
    big = portrait()
    small = np.asarray(Image.fromarray(big[:, ::-1]).resize((307, 360)))
    canvas = np.full((600, 512 + 307, 3), 255, np.uint8)
    canvas[:, :512] = big
    canvas[120:480, 512:] = small
    return canvas


def post(client, image: np.ndarray, query: str = ""):
    data = sample_images.encode(image, "PNG")
    response = client.post("/api/v1/predict" + query, data={"file": (io.BytesIO(data), "faces.png")})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["results"][0]


@pytest.fixture(scope="module")
def largest_client(make_app):
    return make_app(load_model=True, face_detector="blazeface", face_policy="largest", face_min_size=48)


@pytest.fixture(scope="module")
def all_client(make_app):
    return make_app(load_model=True, face_detector="blazeface", face_policy="all", face_min_size=48).test_client()


@pytest.fixture(scope="module")
def aligned_app(make_app):
    return make_app(load_model=True, face_detector="blazeface", face_crop="aligned", face_min_size=48)


def test_largest_face_is_scored_with_its_box_score_and_landmarks(largest_client):
    result = post(largest_client.test_client(), portrait())
    assert result["scored_region"] == "face"
    [face] = result["faces"]
    x, y, w, h = face["box"]
    assert 130 <= x <= 200 and 110 <= y <= 180 and 170 <= w <= 230
    assert 0.5 <= face["score"] <= 1
    (right_x, right_y), (left_x, _) = face["landmarks"]["right_eye"], face["landmarks"]["left_eye"]
    assert x < right_x < left_x < x + w and y < right_y < y + h / 2  # the subject's right eye on the image's left
    assert face["fake_probability"] == result["fake_probability"]


@pytest.mark.parametrize("mode", ["native", "aligned"])
def test_the_served_score_is_the_models_score_of_the_one_face_crop(largest_client, aligned_app, mode):
    app = largest_client if mode == "native" else aligned_app
    image = portrait()
    result = post(app.test_client(), image)
    service = app.extensions["deepfake_detector"].holder.current()
    [face] = FaceDetector().detect(image)
    crop = crop_face(image, face, service.image_size, mode=mode, margin=service.config.face_margin,
                     fit=service.predictor.input_fit)
    assert result["fake_probability"] == pytest.approx(float(service.predictor.predict(crop.pixels[None])[0]),
                                                       abs=1e-6)


def test_an_aligned_crop_covers_the_face_and_is_drawn_where_it_was_taken(aligned_app):
    result = post(aligned_app.test_client(), portrait(), "?explain=true")
    x, y, w, h = result["faces"][0]["box"]
    hx, hy, hw, hh = result["heatmap"]["box"]
    assert hx <= x and hy <= y and hx + hw >= x + w and hy + hh >= y + h


def test_heatmap_box_is_the_scored_crop(largest_client):
    result = post(largest_client.test_client(), portrait(), "?explain=true")
    x, y, w, h = result["faces"][0]["box"]
    hx, hy, hw, hh = result["heatmap"]["box"]
    assert hx <= x and hy <= y and hx + hw >= x + w and hy + hh >= y + h


def test_policy_all_scores_every_face_and_takes_the_most_fake(all_client):
    result = post(all_client, two_faces())
    assert result["scored_region"] == "faces"
    assert len(result["faces"]) == 2
    assert result["fake_probability"] == max(face["fake_probability"] for face in result["faces"])


def test_largest_policy_keeps_only_the_biggest_of_two(largest_client):
    result = post(largest_client.test_client(), two_faces())
    assert result["scored_region"] == "face"
    assert result["faces"][0]["box"][0] < 512  # the full-size portrait on the left


def test_no_face_means_the_whole_image_is_scored_and_said_so(largest_client):
    result = post(largest_client.test_client(), sample_images.pixels(300, 300))
    assert result["scored_region"] == "whole_image"
    assert result["faces"] == []
    assert "no face" in result["note"]


def test_detection_is_off_by_default(client):
    result = post(client, portrait())
    assert result["scored_region"] == "whole_image" and "note" not in result
