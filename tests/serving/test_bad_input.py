"""Hostile and broken requests get a 4xx JSON error naming the problem, never a 5xx; odd but valid
images get a correct answer; and the server keeps answering good requests afterwards."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.serving import sample_images

PREDICT = "/api/v1/predict"


def upload(data: bytes, name: str = "upload.jpg", field: str = "file"):
    """Multipart request arguments, made afresh for each request (a file stream is read once)."""
    return lambda: {"data": {field: (io.BytesIO(data), name)}, "content_type": "multipart/form-data"}


def arguments(request) -> dict:
    return request() if callable(request) else request


def raw(body: bytes, content_type: str | None = None) -> dict:
    return {"data": body, **({"content_type": content_type} if content_type else {})}


BAD_REQUESTS = {
    "empty body": (raw(b""), 400, "missing_image"),
    "empty json body": (raw(b"", "application/json"), 400, "missing_image"),
    "wrong multipart field": (upload(sample_images.jpeg(), field="image"), 400, "missing_image"),
    "wrong json key": ({"json": {"picture": "abcd"}}, 400, "missing_image"),
    "empty images list": ({"json": {"images": []}}, 400, "missing_image"),
    "not an image": (upload(b"hello, this is plain text\n" * 20, "notes.txt"), 400, "invalid_image"),
    "empty file": (sample_images.browser_form([("file", "empty.jpg", b"")]), 400, "invalid_image"),
    "no file chosen": (sample_images.browser_form([("file", "", b"")]), 400, "missing_image"),
    "form without a boundary": (raw(b"--x\r\n", "multipart/form-data"), 400, "malformed_multipart"),
    "form cut before its closing boundary": (
        raw(sample_images.browser_form([("file", "a.jpg", sample_images.jpeg())])["data"][:-40],
            "multipart/form-data; boundary=----WebKitFormBoundaryx7Qd3kPz"), 400, "malformed_multipart"),
    "form with a 300-character boundary": (sample_images.browser_form([("file", "a.jpg", b"x")], boundary="b" * 300),
                                           400, "malformed_multipart"),
    "a strip 5000 pixels long and 1 high": (upload(sample_images.encode(np.zeros((1, 5000, 3), np.uint8), "PNG"),
                                                   "strip.png"), 400, "invalid_image"),
    "form of a thousand fields": (sample_images.browser_form([("note", None, b"x")] * 1000), 413, "too_many_parts"),
    "form part header over the parser's cap": (sample_images.browser_form([("f" * 10_000, "a.jpg", b"x")]), 400,
                                               "malformed_multipart"),
    "truncated jpeg": (upload(sample_images.truncated_jpeg(), "cut.jpg"), 400, "invalid_image"),
    "unsupported format": (upload(sample_images.encode(sample_images.pixels(), "TIFF"), "a.tiff"), 400,
                           "invalid_image"),
    "svg": (upload(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "a.svg"), 400,
            "invalid_image"),
    "decompression bomb": (upload(sample_images.decompression_bomb_png(), "bomb.png"), 413, "image_too_large"),
    "over the pixel cap": (upload(sample_images.decompression_bomb_png(3000, 3000), "big.png"), 413,
                           "image_too_large"),
    "oversized upload": (upload(b"\xff\xd8" + b"\0" * (3 * 1024 * 1024), "huge.jpg"), 413, "request_too_large"),
    "oversized json": ({"json": {"image": "A" * (3 * 1024 * 1024)}}, 413, "request_too_large"),
    "malformed base64": ({"json": {"image": "not*base64!"}}, 400, "invalid_base64"),
    "base64 of a number": ({"json": {"image": 12345}}, 400, "invalid_base64"),
    "base64 of garbage bytes": ({"json": {"image": base64.b64encode(b"\x00\x01garbage").decode()}}, 400,
                                "invalid_image"),
    "malformed json": (raw(b'{"image": "abc"', "application/json"), 400, "invalid_json"),
    "json array": (raw(b'["abc"]', "application/json"), 400, "invalid_json"),
    "deeply nested json": (raw(b"[" * 100_000 + b"]" * 100_000, "application/json"), 400, "invalid_json"),
    "invalid utf-8 json": (raw(b'{"image": "\xff\xfe"}', "application/json"), 400, "invalid_json"),
    "empty raw image body": (raw(b"", "image/jpeg"), 400, "missing_image"),
    "raw body not an image": (raw(b"hello, this is plain text\n" * 20, "application/octet-stream"), 400,
                              "invalid_image"),
    "raw body labelled png, holding a truncated jpeg": (raw(sample_images.truncated_jpeg(), "image/png"), 400,
                                                        "invalid_image"),
    "oversized raw body": (raw(b"\xff\xd8" + b"\0" * (3 * 1024 * 1024), "image/jpeg"), 413, "request_too_large"),
    "wrong content type": (raw(base64.b64encode(sample_images.jpeg()), "text/plain"), 415,
                           "unsupported_media_type"),
    "bad explain flag": ({"json": {"image": base64.b64encode(sample_images.jpeg()).decode(), "explain": "maybe"}},
                         400, "invalid_parameter"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_a_json_4xx_naming_the_problem(client, case):
    request, status, code = BAD_REQUESTS[case]
    response = client.post(PREDICT, **arguments(request))
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_image_errors_name_the_file(client):
    request = upload(sample_images.truncated_jpeg(), "holiday.jpg")
    error = client.post(PREDICT, **arguments(request)).get_json()["error"]
    assert error["message"].startswith("holiday.jpg:")


ODD_BUT_VALID = {
    "animated gif": sample_images.animated_gif,
    "cmyk jpeg": sample_images.cmyk_jpeg,
    "16-bit png": sample_images.png_16_bit,
    "palette png": sample_images.palette_png,
    "rgba png": sample_images.rgba_png,
    "grayscale jpeg": sample_images.grayscale_jpeg,
    "bmp": lambda: sample_images.encode(sample_images.pixels(), "BMP"),
    "webp": lambda: sample_images.encode(sample_images.pixels(), "WEBP"),
    "one pixel": lambda: sample_images.encode(np.zeros((1, 1, 3), np.uint8), "PNG"),
}


@pytest.mark.parametrize("case", list(ODD_BUT_VALID))
def test_odd_but_valid_image_is_answered(client, case):
    response = client.post(PREDICT, **arguments(upload(ODD_BUT_VALID[case](), case)))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert 0.0 <= response.get_json()["results"][0]["fake_probability"] <= 1.0


def test_animated_gif_is_scored_on_its_first_frame(service):
    gif = sample_images.animated_gif()
    first_frame = np.asarray(Image.open(io.BytesIO(gif)).convert("RGB"))
    expected = service.analyze(sample_images.encode(first_frame, "PNG")).fake_probability
    assert service.analyze(gif).fake_probability == pytest.approx(expected, abs=1e-6)


def test_exif_rotated_jpeg_is_scored_upright(client):
    upright = sample_images.blocky_pixels(96, 64)
    straight = client.post(PREDICT, **arguments(upload(sample_images.lossless_jpeg_of(upright), "upright.jpg")))
    rotated = client.post(PREDICT, **arguments(upload(sample_images.exif_rotated_jpeg(upright), "rotated.jpg")))
    a, b = straight.get_json()["results"][0], rotated.get_json()["results"][0]
    assert (b["width"], b["height"]) == (96, 64)
    assert b["fake_probability"] == pytest.approx(a["fake_probability"], abs=1e-6)


def test_exif_rotation_changes_the_answer_compared_with_the_stored_pixels(client):
    upright = sample_images.blocky_pixels(96, 64)
    stored = np.rot90(upright, k=1)
    as_stored = client.post(PREDICT, **arguments(upload(sample_images.lossless_jpeg_of(stored), "stored.jpg")))
    rotated = client.post(PREDICT, **arguments(upload(sample_images.exif_rotated_jpeg(upright), "rotated.jpg")))
    assert as_stored.get_json()["results"][0]["width"] == 64
    assert rotated.get_json()["results"][0]["width"] == 96


def test_no_bad_request_hurts_the_next_good_one(client):
    good = sample_images.jpeg(seed=11)
    before = client.post(PREDICT, **arguments(upload(good, "good.jpg"))).get_json()["results"][0]["fake_probability"]
    statuses = []
    for request, _, _ in BAD_REQUESTS.values():
        response = client.post(PREDICT, **arguments(request))
        statuses.append(response.status_code)
        assert json.loads(response.get_data())["error"]["code"]
        response = client.post("/predict", **arguments(request))
        statuses.append(response.status_code)
    assert all(400 <= status < 500 for status in statuses), statuses
    after = client.post(PREDICT, **arguments(upload(good, "good.jpg")))
    assert after.status_code == 200
    assert after.get_json()["results"][0]["fake_probability"] == before
