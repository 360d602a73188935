"""The built-in demo dataset: deterministic, in HardFake's layout, and telling its classes apart
only by the fake class' up-sampling fingerprint."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.demo_data import generate_demo_dataset
from deepfake_detector.entity import DemoDataConfig

SMALL = DemoDataConfig(seed=42, images_per_class=3, image_size=64, fingerprint_strength=0.06,
                       sensor_noise=0.02, jpeg_quality_min=75, jpeg_quality_max=95)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def nyquist_peak_ratio(path: Path) -> float:
    """Power at half the sampling rate along each axis, over the median power around it: a
    stride-2 up-sampling checkerboard shows there as a sharp peak."""
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    grey -= grey.mean()
    size = grey.shape[0]
    window = np.hanning(size)
    power = np.abs(np.fft.fft2(grey * window[:, None] * window[None, :])) ** 2
    ring = np.ones((9, 9), dtype=bool)
    ring[3:6, 3:6] = False
    ratios = []
    for row, column in ((0, size // 2), (size // 2, 0)):
        patch = power[np.ix_((np.arange(-4, 5) + row) % size, (np.arange(-4, 5) + column) % size)]
        ratios.append(patch[4, 4] / np.median(patch[ring]))
    return float(np.mean(ratios))


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    generate_demo_dataset(SMALL, tmp_path / "first")
    generate_demo_dataset(SMALL, tmp_path / "second")
    assert files_of(tmp_path / "first") == files_of(tmp_path / "second")


def test_another_seed_gives_other_images(tmp_path: Path) -> None:
    generate_demo_dataset(SMALL, tmp_path / "first")
    generate_demo_dataset(replace(SMALL, seed=43), tmp_path / "second")
    first, second = files_of(tmp_path / "first"), files_of(tmp_path / "second")
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first if name.endswith(".jpg"))


def test_layout_is_hardfakes(tmp_path: Path) -> None:
    counts = generate_demo_dataset(SMALL, tmp_path)

    table = pd.read_csv(tmp_path / "data.csv")
    assert list(table.columns) == ["images_id", "label"]
    assert sorted(table["images_id"]) == ["fake_1", "fake_2", "fake_3", "real_1", "real_2", "real_3"]
    assert (table["images_id"].str.split("_").str[0] == table["label"]).all()
    assert counts == {"fake": 3, "real": 3}
    assert sorted(files_of(tmp_path)) == sorted(
        ["data.csv"] + [f"{label}/{image_id}.jpg" for image_id, label in zip(table["images_id"], table["label"],
                                                                              strict=True)])


def test_images_are_square_rgb_jpegs_of_the_configured_size(tmp_path: Path) -> None:
    generate_demo_dataset(replace(SMALL, image_size=80), tmp_path)
    for path in tmp_path.rglob("*.jpg"):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (80, 80))


@pytest.fixture(scope="module")
def spectral_sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spectral")
    generate_demo_dataset(replace(SMALL, images_per_class=12, image_size=96), folder)
    return folder


def test_fake_images_carry_the_upsampling_peaks(spectral_sample: Path) -> None:
    ratios = [nyquist_peak_ratio(path) for path in sorted(spectral_sample.glob("fake/*.jpg"))]
    assert min(ratios) > 50, ratios


def test_real_images_have_no_upsampling_peaks(spectral_sample: Path) -> None:
    ratios = [nyquist_peak_ratio(path) for path in sorted(spectral_sample.glob("real/*.jpg"))]
    assert max(ratios) < 20, ratios


def test_without_fingerprint_fakes_show_no_peaks(tmp_path: Path) -> None:
    generate_demo_dataset(replace(SMALL, images_per_class=6, image_size=96, fingerprint_strength=0.0), tmp_path)
    ratios = [nyquist_peak_ratio(path) for path in sorted(tmp_path.glob("fake/*.jpg"))]
    assert max(ratios) < 20, ratios
