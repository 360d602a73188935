"""The built-in demo dataset: deterministic, in HardFake's layout, and telling its classes apart
only by the fake class' up-sampling fingerprint; style b has its own fingerprint and scenes."""
from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data.demo_data import (
    FAKE_MAKERS,
    STYLES,
    FakeInputs,
    draw_scene_and_head,
    feathered_ellipse,
    generate_demo_dataset,
    render_demo_image,
)
from deepfake_detector.config.entities import DemoDataConfig
from deepfake_detector.contracts.labels import FAKE, REAL

SMALL = DemoDataConfig(seed=42, images_per_class=3, image_size=64, fingerprint_strength=0.06,
                       sensor_noise=0.02, jpeg_quality_min=75, jpeg_quality_max=95)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def nyquist_peak_ratio(path: Path) -> float:
    """Power at half the sampling rate along each axis, over the median power around it: a
    stride-2 up-sampling checkerboard shows there as a sharp peak."""
    return spectral_peak_ratio(path, divisor=2)


def third_peak_ratio(path: Path) -> float:
    """The same at a third of the sampling rate, where stride-3 up-sampling leaves its peaks."""
    return spectral_peak_ratio(path, divisor=3)


def spectral_peak_ratio(path: Path, divisor: int) -> float:
    return gray_peak_ratio(np.asarray(Image.open(path).convert("L"), dtype=np.float64), divisor)


def gray_peak_ratio(gray: np.ndarray, divisor: int) -> float:
    """Power at 1/divisor of the sampling rate along each axis of a square gray picture over the median power
    around it."""
    gray = gray - gray.mean()
    size = gray.shape[0]
    window = np.hanning(size)
    power = np.abs(np.fft.fft2(gray * window[:, None] * window[None, :])) ** 2
    ring = np.ones((9, 9), dtype=bool)
    ring[3:6, 3:6] = False
    ratios = []
    for row, column in ((0, size // divisor), (size // divisor, 0)):
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


# --- styles ----------------------------------------------------------------------------------

# sha256 of two style-a images, computed from the generator before styles existed: the default
# pipeline's data (and its locked results) depend on style a never changing.
STYLE_A_SHA256 = {
    (FAKE, 1): "3f9b6d500361d27972047719c7b37a2ef1f7c5840421717a0e7b9803a65f18ff",
    (REAL, 2): "691a3e1393c7108594f98f4e482de4c15c48860e4d1cc11ea8183fab1dabcc26",
}


@pytest.mark.parametrize("config", [SMALL, replace(SMALL, style="a"), replace(SMALL, style="A")],
                         ids=["default", "a", "upper-case A"])
def test_style_a_images_are_the_ones_made_before_styles_existed(config: DemoDataConfig) -> None:
    for (label, index), expected in STYLE_A_SHA256.items():
        assert hashlib.sha256(render_demo_image(config, label, index)).hexdigest() == expected


def test_style_b_is_deterministic(tmp_path: Path) -> None:
    style_b = replace(SMALL, style="b")
    generate_demo_dataset(style_b, tmp_path / "first")
    generate_demo_dataset(style_b, tmp_path / "second")
    assert files_of(tmp_path / "first") == files_of(tmp_path / "second")


def test_style_b_draws_other_images_in_the_same_layout(tmp_path: Path) -> None:
    counts_a = generate_demo_dataset(SMALL, tmp_path / "a")
    counts_b = generate_demo_dataset(replace(SMALL, style="b"), tmp_path / "b")
    style_a, style_b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert counts_a == counts_b
    assert style_a.keys() == style_b.keys()
    assert style_a["data.csv"] == style_b["data.csv"]
    assert all(style_a[name] != style_b[name] for name in style_a if name.endswith(".jpg"))


def test_unknown_style_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'c'.*a, b"):
        generate_demo_dataset(replace(SMALL, style="c"), tmp_path)
    assert not (tmp_path / "fake").exists()


@pytest.fixture(scope="module")
def spectral_sample_b(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spectral_b")
    generate_demo_dataset(replace(SMALL, images_per_class=12, image_size=96, style="b"), folder)
    return folder


def test_style_b_fakes_peak_at_a_third_of_the_sampling_rate_not_at_half(spectral_sample_b: Path) -> None:
    fakes = sorted(spectral_sample_b.glob("fake/*.jpg"))
    assert min(third_peak_ratio(path) for path in fakes) > 50
    assert max(nyquist_peak_ratio(path) for path in fakes) < 20


def test_style_a_fakes_have_no_peak_at_a_third_of_the_sampling_rate(spectral_sample: Path) -> None:
    assert max(third_peak_ratio(path) for path in sorted(spectral_sample.glob("fake/*.jpg"))) < 20


def test_style_b_reals_have_no_upsampling_peaks(spectral_sample_b: Path) -> None:
    reals = sorted(spectral_sample_b.glob("real/*.jpg"))
    assert max(third_peak_ratio(path) for path in reals) < 20
    assert max(nyquist_peak_ratio(path) for path in reals) < 20


def test_style_b_scenes_are_darker_with_bigger_heads(spectral_sample: Path, spectral_sample_b: Path) -> None:
    """Low-key close-ups: the mean brightness drops, and the face fills more of the center, so
    the center differs more from the border (a vignette and a background darker than skin)."""
    def brightness(folder: Path) -> tuple[float, float]:
        grays = [np.asarray(Image.open(path).convert("L"), dtype=np.float64) for path in sorted(folder.rglob("*.jpg"))]
        return (float(np.mean([g.mean() for g in grays])),
                float(np.mean([g[32:64, 32:64].mean() - g.mean() for g in grays])))

    mean_a, center_a = brightness(spectral_sample)
    mean_b, center_b = brightness(spectral_sample_b)
    assert mean_b < mean_a - 10
    assert center_b > center_a


# ---- the unseen-generator families -----------------------------------------------------------

UNSEEN_FAMILIES = ("nearest", "bilinear", "bicubic", "tconv", "blend")


def fake_inputs(style_name: str, size: int = 96, index: int = 1) -> FakeInputs:
    style = STYLES[style_name]
    rng = np.random.default_rng([42, FAKE, index, *style.stream])
    scene, head = draw_scene_and_head(rng, size, style)
    return FakeInputs(scene, head, rng, replace(SMALL, image_size=size, style=style_name), style)


def detail_energy(pixels: np.ndarray) -> float:
    """Power of the 2x2-cell residual (each pixel minus its cell's corner): what enlarging a
    half-resolution image leaves empty or regular."""
    corner = np.repeat(np.repeat(pixels[0::2, 0::2], 2, axis=0), 2, axis=1)[:pixels.shape[0], :pixels.shape[1]]
    return float(np.mean((pixels - corner) ** 2))


@pytest.mark.parametrize("family", UNSEEN_FAMILIES)
def test_every_family_is_deterministic_in_the_same_layout(tmp_path: Path, family: str) -> None:
    config = replace(SMALL, style=family)
    generate_demo_dataset(config, tmp_path / "first")
    generate_demo_dataset(config, tmp_path / "second")
    first = files_of(tmp_path / "first")
    assert first == files_of(tmp_path / "second")
    assert first.keys() == files_of(generate_and_return(SMALL, tmp_path / "a")).keys()


def generate_and_return(config: DemoDataConfig, folder: Path) -> Path:
    generate_demo_dataset(config, folder)
    return folder


def test_families_draw_unrelated_scenes(tmp_path: Path) -> None:
    """No scene of the training family reappears in a held-out one: each draws from its own stream."""
    reals = {family: files_of(generate_and_return(replace(SMALL, style=family), tmp_path / family))["real/real_1.jpg"]
             for family in ("a", *UNSEEN_FAMILIES)}
    assert len(set(reals.values())) == len(reals)


def test_nearest_fakes_are_constant_over_each_2x2_cell() -> None:
    fake = FAKE_MAKERS["nearest"](fake_inputs("nearest"))
    assert detail_energy(fake) < 1e-10
    assert detail_energy(fake_inputs("nearest").scene) > 1e-6


@pytest.mark.parametrize("family", ["bilinear", "bicubic"])
def test_interpolated_fakes_lose_the_detail_of_the_full_resolution(family: str) -> None:
    inputs = fake_inputs(family)
    assert detail_energy(FAKE_MAKERS[family](inputs)) < 0.5 * detail_energy(inputs.scene)


def test_tconv_fakes_have_a_kernel_of_their_own_per_image() -> None:
    """A flat gray scene comes out with a period-2 gain pattern whose strength differs per image."""
    patterns = []
    for index in (1, 2, 3):
        inputs = fake_inputs("tconv", index=index)
        flat = replace(inputs, scene=np.full_like(inputs.scene, 0.5))
        fake = FAKE_MAKERS["tconv"](flat)[4:-4, 4:-4, 0]
        patterns.append(round(float(fake[0::2].mean() - fake[1::2].mean()), 6))
    assert all(abs(gap) > 0.004 for gap in patterns)
    assert len(set(patterns)) == 3


def test_blend_fakes_lose_the_camera_noise_inside_the_face_only() -> None:
    inputs = fake_inputs("blend", size=128)
    fake = FAKE_MAKERS["blend"](inputs)
    # Camera noise makes almost every pixel differ from its neighbours' mean; the re-synthesized
    # face is smooth there. The median ignores the drawn edges.
    laplacian = np.abs(4 * fake[1:-1, 1:-1] - fake[:-2, 1:-1] - fake[2:, 1:-1] - fake[1:-1, :-2] - fake[1:-1, 2:])
    face = feathered_ellipse_mask(inputs)[1:-1, 1:-1]
    assert np.median(laplacian[face > 0.99]) < 0.5 * np.median(laplacian[face < 0.01])


def feathered_ellipse_mask(inputs: FakeInputs) -> np.ndarray:
    return feathered_ellipse(inputs.scene.shape[0], inputs.head, feather=0.15)


def test_about_half_of_a_familys_fakes_carry_camera_noise() -> None:
    """So noise alone cannot be the label: the luma of nearest fakes is constant over 2x2 cells
    unless noise was added afterwards, and the fakes split into those two groups."""
    config = replace(SMALL, image_size=64, style="nearest", jpeg_quality_min=100, jpeg_quality_max=100)
    lumas = [np.asarray(Image.open(io.BytesIO(render_demo_image(config, FAKE, index))).convert("YCbCr"),
                        dtype=np.float64)[:, :, :1] / 255.0 for index in range(1, 41)]
    energies = [detail_energy(luma) for luma in lumas]
    noisy = sum(energy > 4 * min(energies) for energy in energies)
    assert 10 <= noisy <= 30
