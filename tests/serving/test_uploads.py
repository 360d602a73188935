"""Upload decoding: EXIF orientation applied exactly as PIL.ImageOps.exif_transpose does, caps checked
from the header."""
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from deepfake_detector.contracts.errors import ImageError
from deepfake_detector.inference.images import decode_image
from deepfake_detector.serving.uploads import ImageTooLargeError, decode_upload
from tests.serving import sample_images

LIMITS = {"max_bytes": 1 << 20, "max_pixels": 1_000_000}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_exif_transpose(orientation):
    exif = Image.Exif()
    exif[sample_images.EXIF_ORIENTATION] = orientation
    data = sample_images.encode(sample_images.pixels(48, 32), "JPEG", quality=95, exif=exif.tobytes())
    stored = Image.fromarray(decode_image(data))
    stored.getexif()[sample_images.EXIF_ORIENTATION] = orientation
    expected = np.asarray(ImageOps.exif_transpose(stored))
    np.testing.assert_array_equal(decode_upload(data, "a.jpg", **LIMITS), expected)


def test_byte_cap_is_checked_before_decoding():
    with pytest.raises(ImageTooLargeError, match="a.jpg: .* bytes is too large"):
        decode_upload(b"\0" * (LIMITS["max_bytes"] + 1), "a.jpg", **LIMITS)


def test_pixel_cap_is_checked_from_the_header():
    with pytest.raises(ImageTooLargeError, match="bomb.png: 2000x2000 pixels"):
        decode_upload(sample_images.decompression_bomb_png(2000, 2000), "bomb.png", **LIMITS)


def test_errors_name_the_upload_not_a_generic_source():
    with pytest.raises(ImageError, match=r"^cut\.jpg: "):
        decode_upload(sample_images.truncated_jpeg(), "cut.jpg", **LIMITS)


def test_pixels_equal_the_training_decoder_when_upright():
    data = sample_images.jpeg()
    np.testing.assert_array_equal(decode_upload(data, "a.jpg", **LIMITS), decode_image(data))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_block_is_ignored():
    data = sample_images.jpeg()
    broken = data[:2] + b"\xff\xe1\x00\x10Exif\x00\x00II*\x00\xff\xff\xff\xff" + data[2:]
    image = decode_upload(broken, "a.jpg", **LIMITS)
    assert image.shape == (64, 96, 3)
    Image.open(io.BytesIO(broken))  # still a JPEG
