"""The shortcut audit flags a cue planted in an otherwise identical fake/real dataset, and only that kind of cue."""
import json
import logging

import numpy as np
import pytest
from PIL import Image, ImageDraw

from deepfake_detector.components.evaluation.shortcut_audit import (
    CUES,
    MODEL_CUE,
    audit_shortcuts,
    estimate_jpeg_quality,
    extract_cue_features,
    thumbnail_scorer,
    write_audit,
)
from deepfake_detector.contracts.errors import ImageError
from deepfake_detector.contracts.labels import FAKE, REAL

PER_CLASS = 24


def scene(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random picture from one generator for both classes: a colored gradient, shapes and noise,
    kept away from pure black so that a planted frame is the only dark border."""
    width, height = size
    start, end = rng.uniform(60, 220, 3), rng.uniform(60, 220, 3)
    ramp = np.linspace(0, 1, width)[None, :, None]
    pixels = np.broadcast_to(start + (end - start) * ramp, (height, width, 3)).copy()
    pixels += rng.normal(0, 8, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 40, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.uniform(0, width * 0.7), rng.uniform(0, height * 0.7)
        x1, y1 = x0 + rng.uniform(8, width * 0.4), y0 + rng.uniform(8, height * 0.4)
        color = tuple(int(c) for c in rng.uniform(50, 240, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    return image


def make_dataset(folder, *, fake_quality=None, real_quality=None, fake_size=(64, 64), real_size=(64, 64),
                 fake_frame=0, seed=0):
    """PER_CLASS fakes and reals as JPEGs; a quality of None draws it from 60-95 for each image."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for label, quality, size, frame in ((FAKE, fake_quality, fake_size, fake_frame),
                                        (REAL, real_quality, real_size, 0)):
        for index in range(PER_CLASS):
            image = scene(rng, size)
            if frame:
                ImageDraw.Draw(image).rectangle((0, 0, size[0] - 1, size[1] - 1), outline=(0, 0, 0), width=frame)
            path = folder / f"{label}_{index:03d}.jpg"
            image.save(path, "JPEG", quality=int(quality if quality is not None else rng.integers(60, 96)))
            paths.append(path)
            labels.append(label)
    return paths, labels


@pytest.fixture(scope="module")
def clean_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("clean"), seed=1)


@pytest.fixture(scope="module")
def clean_audit(clean_dataset):
    return audit_shortcuts(*clean_dataset, progress=False)


def test_planted_jpeg_quality_is_flagged_and_warned(tmp_path, caplog):
    paths, labels = make_dataset(tmp_path, fake_quality=60, real_quality=95)
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.components.evaluation.shortcut_audit"):
        result = audit_shortcuts(paths, labels, progress=False)
    assert result["cues"]["jpeg_quality"]["auc"] >= 0.9
    assert "jpeg_quality" in result["flagged"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("jpeg_quality alone" in message and "may learn" in message for message in warnings)


def test_dataset_without_a_cue_flags_nothing(clean_audit):
    aucs = {name: entry["auc"] for name, entry in clean_audit["cues"].items()}
    assert clean_audit["flagged"] == []
    assert all(auc < 0.8 for auc in aucs.values()), aucs


def test_result_reports_every_cue_and_the_class_counts(clean_audit):
    assert list(clean_audit["cues"]) == list(CUES)
    assert (clean_audit["n_images"], clean_audit["n_fake"], clean_audit["n_real"]) == (2 * PER_CLASS, PER_CLASS,
                                                                                     PER_CLASS)
    assert clean_audit["folds"] == 5 and clean_audit["warn_auc"] == 0.8


def test_planted_dimensions_are_flagged(tmp_path):
    paths, labels = make_dataset(tmp_path, fake_size=(64, 64), real_size=(80, 80))
    result = audit_shortcuts(paths, labels, progress=False)
    assert "dimensions" in result["flagged"]


def test_planted_black_frame_is_flagged_on_border(tmp_path):
    paths, labels = make_dataset(tmp_path, fake_frame=2)
    result = audit_shortcuts(paths, labels, progress=False)
    assert "border" in result["flagged"]
    assert result["cues"]["border"]["auc"] >= 0.9


def test_border_cue_ignores_the_center(tmp_path):
    rng = np.random.default_rng(0)
    image = scene(rng, (64, 64))
    image.save(tmp_path / "plain.png")
    ImageDraw.Draw(image).rectangle((16, 16, 47, 47), fill=(0, 0, 0))
    image.save(tmp_path / "center_changed.png")
    plain, changed = extract_cue_features(tmp_path / "plain.png"), extract_cue_features(tmp_path / "center_changed.png")
    np.testing.assert_allclose(plain["border"], changed["border"])
    assert not np.allclose(plain["color_statistics"], changed["color_statistics"])


def test_model_scorer_is_reported_with_its_own_auc(clean_dataset, caplog):
    paths, labels = clean_dataset
    # Scores that rank every fake but one above every real: AUC 1 - 1/PER_CLASS.
    scores = np.array([0.9 if label == FAKE else 0.2 for label in labels])
    scores[labels.index(FAKE)] = 0.1
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.components.evaluation.shortcut_audit"):
        result = audit_shortcuts(paths, labels, progress=False, model_scorer=lambda given: scores)
    assert result["cues"][MODEL_CUE]["auc"] == pytest.approx(1 - 1 / PER_CLASS, abs=1e-4)
    assert result["cues"][MODEL_CUE]["flagged"] is True
    assert MODEL_CUE in result["flagged"]
    assert any("coarse content" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_thumbnail_scorer_feeds_the_model_coarse_full_size_inputs(tmp_path):
    fine = np.indices((64, 64)).sum(axis=0) % 2 * 255          # 1-pixel checkerboard: pure fine detail
    Image.fromarray(np.repeat(fine[..., None], 3, axis=2).astype(np.uint8)).save(tmp_path / "checker.png")
    seen = []
    scorer = thumbnail_scorer(lambda batch: seen.append(batch) or np.full(len(batch), 0.5), image_size=32)
    assert scorer([tmp_path / "checker.png"] * 3).shape == (3,)
    batch = seen[0]
    assert batch.shape == (3, 32, 32, 3)
    assert batch.std() < 5  # the checkerboard averages to flat gray once shrunk to 8 x 8


def test_corrupt_file_raises_an_error_naming_it(tmp_path):
    paths, labels = make_dataset(tmp_path)
    paths[3].write_bytes(paths[3].read_bytes()[:200])
    with pytest.raises(ImageError, match=paths[3].name):
        audit_shortcuts(paths, labels, progress=False)


def test_same_seed_gives_the_same_result(clean_dataset, clean_audit):
    assert audit_shortcuts(*clean_dataset, progress=False) == clean_audit


def test_folds_shrink_to_the_smaller_class(tmp_path):
    paths, labels = make_dataset(tmp_path)
    keep = [i for i, label in enumerate(labels) if label == REAL] + [i for i, label in enumerate(labels)
                                                                     if label == FAKE][:3]
    result = audit_shortcuts([paths[i] for i in keep], [labels[i] for i in keep], progress=False)
    assert result["folds"] == 3


def test_jpeg_quality_estimate_matches_the_encoder(tmp_path):
    image = scene(np.random.default_rng(0), (64, 64))
    for quality in (30, 60, 95):
        image.save(tmp_path / "q.jpg", "JPEG", quality=quality)
        with Image.open(tmp_path / "q.jpg") as saved:
            assert estimate_jpeg_quality(saved.quantization[0]) == pytest.approx(quality, abs=2)
    image.save(tmp_path / "p.png")
    assert extract_cue_features(tmp_path / "p.png")["jpeg_quality"][:2].tolist() == [-1.0, 0.0]


def test_audit_is_written_as_json(tmp_path, clean_audit):
    target = write_audit(clean_audit, tmp_path / "reports" / "shortcut_audit.json")
    assert json.loads(target.read_text()) == clean_audit
