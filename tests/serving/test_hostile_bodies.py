"""Bodies built to cost the server: too many JSON items are refused before any is decoded, whatever the client
wrote comes back (and goes to the log) cut short, and a header declaring a huge canvas is refused by Pillow
itself, before its decoder reserves memory for it."""
import io
import logging
import struct
import time

import pytest
from PIL import Image, WebPImagePlugin

from deepfake_detector.serving.uploads import limit_pillow_pixels
from deepfake_detector.utils.text import ECHO_LIMIT, ELLIPSIS
from tests.serving import sample_images

PREDICT = "/api/v1/predict"
MEGABYTE = 1024 * 1024
MAX_ECHOED_MESSAGE = 600  # the fixed wording of any of these messages plus a few cut echoes


@pytest.fixture(scope="module")
def roomy_client(make_app):
    """An app that takes bodies as large as the default serve.max_request_mb allows."""
    return make_app(max_request_bytes=16 * MEGABYTE).test_client()


def json_post(client, path: str, body: bytes):
    return client.post(path, data=body, content_type="application/json")


@pytest.mark.parametrize("path", [PREDICT, "/predict"])
def test_two_million_json_items_are_refused_before_any_is_decoded(roomy_client, path):
    # "!" is not base64: decoding even the first item would answer 400 invalid_base64.
    body = b'{"images": [' + b",".join([b'"!"'] * 2_000_000) + b"]}"
    started = time.perf_counter()
    response = json_post(roomy_client, path, body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "too_many_images"
    assert "2000000 images" in response.get_json()["error"]["message"]
    assert elapsed < 5, f"refusing took {elapsed:.1f} s"


def test_a_15_mb_json_key_is_echoed_cut_short(roomy_client, caplog):
    key = "k" * (15 * MEGABYTE)
    with caplog.at_level(logging.INFO, logger="deepfake_detector.serving.errors"):
        response = json_post(roomy_client, PREDICT, b'{"' + key.encode() + b'": 1}')
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert "k" * ECHO_LIMIT + ELLIPSIS in message and "k" * (ECHO_LIMIT + 1) not in message
    assert len(message) < MAX_ECHOED_MESSAGE
    assert caplog.records and all(len(record.getMessage()) < MAX_ECHOED_MESSAGE for record in caplog.records)


def test_a_long_file_name_is_cut_in_the_error_and_the_answer(client):
    name = "a" * 4000 + ".jpg"  # a part's header line may be 4 KB (python-multipart's cap)
    refused = client.post(PREDICT, data={"file": (io.BytesIO(sample_images.truncated_jpeg()), name)})
    assert refused.get_json()["error"]["message"].startswith("a" * ECHO_LIMIT + ELLIPSIS + ":")
    answered = client.post(PREDICT, data={"file": (io.BytesIO(sample_images.jpeg()), name)})
    assert answered.get_json()["results"][0]["filename"] == "a" * ECHO_LIMIT + ELLIPSIS


ECHOING_REQUESTS = {
    "multipart field name": lambda: {"data": {"x" * 4000: (io.BytesIO(sample_images.jpeg()), "a.jpg")}},
    "content type": lambda: {"data": b"abc", "content_type": "text/" + "y" * 5000},
    "explain flag": lambda: {"json": {"image": "AAAA", "explain": "z" * 100_000}},
}


@pytest.mark.parametrize("case", list(ECHOING_REQUESTS))
def test_every_echo_of_client_text_is_cut_short(client, case):
    response = client.post(PREDICT, **ECHOING_REQUESTS[case]())
    assert 400 <= response.status_code < 500
    message = response.get_json()["error"]["message"]
    assert ELLIPSIS in message and len(message) < MAX_ECHOED_MESSAGE


def test_an_explain_flag_that_is_not_a_scalar_is_named_by_its_type(client):
    response = client.post(PREDICT, json={"image": "AAAA", "explain": list(range(100_000))})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "explain: expected true or false, got a list"


def webp_declaring(width: int, height: int) -> bytes:
    """A 44-byte extended WebP whose header declares a width x height animation canvas and holds no frame."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x02, 0, 0, 0]) \
        + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    anim = b"ANIM" + struct.pack("<I", 6) + bytes(6)
    body = b"WEBP" + vp8x + anim
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def capped_client(make_app, monkeypatch):
    """An app capped at 1 MP; Pillow's process-wide cap is put back afterwards."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    return make_app(max_image_pixels=1_000_000).test_client()


def test_a_webp_declaring_a_canvas_over_the_cap_is_refused_before_its_decoder_reserves_it(capped_client, monkeypatch):
    built = []
    monkeypatch.setattr(WebPImagePlugin._webp, "WebPAnimDecoder", lambda data: built.append(data))
    response = capped_client.post(PREDICT, data={"file": (io.BytesIO(webp_declaring(1001, 1000)), "tiny.webp")})
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "image_too_large"
    assert "tiny.webp" in response.get_json()["error"]["message"]
    assert not built, "Pillow built the WebP decoder (and reserved the canvas) for an image over the cap"


def test_an_image_at_the_cap_is_still_answered(capped_client):
    at_cap = sample_images.encode(sample_images.pixels(1000, 1000), "WEBP")
    response = capped_client.post(PREDICT, data={"file": (io.BytesIO(at_cap), "at_cap.webp")})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("cap", [2, 1_000_000, 40_000_000])  # an odd cap lets Pillow open one pixel more
def test_pillow_opens_an_image_at_the_configured_cap_and_refuses_one_pixel_more(monkeypatch, cap):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    limit_pillow_pixels(cap)
    with Image.open(io.BytesIO(sample_images.decompression_bomb_png(cap, 1))) as image:
        assert image.size == (cap, 1)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(sample_images.decompression_bomb_png(cap + 1, 1)))
