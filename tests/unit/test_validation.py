"""The validate stage's component: bad files are quarantined with reasons, labels are checked,
and a manifest the trainer can read comes out."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.components.data.datasets import MANIFEST_COLUMNS, read_manifest
from deepfake_detector.components.data.validation import DataValidation
from deepfake_detector.contracts.errors import DataValidationError
from tests.unit.validation_fixtures import (
    make_config,
    picture,
    quarantine_reasons,
    save_picture,
    write_dataset,
    write_index,
)


def test_good_images_are_all_kept_in_a_manifest_the_trainer_reads(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=10, n_real=10)
    config = make_config(tmp_path)
    result = DataValidation(config).run()

    manifest = read_manifest(result.manifest_file)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["path"].tolist() == sorted(path for path, _, _ in rows)
    assert manifest.set_index("path")["label"].to_dict() == {
        path: 1 if cls == "fake" else 0 for path, cls, _ in rows}
    assert (result.n_good, result.n_bad) == (20, 0)


def test_split_summary_holds_numbers_that_add_up(tmp_path: Path) -> None:
    write_dataset(tmp_path, n_fake=10, n_real=12)
    config = make_config(tmp_path)
    DataValidation(config).run()

    summary = json.loads(config.split_summary_file.read_text())
    assert summary["total"] == 22 and summary["quarantined"] == 0 and summary["duplicate_groups"] == 0
    assert sum(summary[split]["total"] for split in ("train", "val", "test")) == 22
    assert sum(summary[split]["fake"] for split in ("train", "val", "test")) == 10
    for split in ("train", "val", "test"):
        assert summary[split]["fake"] + summary[split]["real"] == summary[split]["total"]


def test_unusable_files_are_quarantined_with_their_reasons(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=8, n_real=8)
    dataset = tmp_path / "dataset"
    whole = save_picture(dataset / "fake" / "truncated.jpg", seed=999).read_bytes()
    (dataset / "fake" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (dataset / "fake" / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(4000))
    (dataset / "real" / "empty.jpg").write_bytes(b"")
    (dataset / "real" / "notes.txt").write_text("not a picture\n")
    save_picture(dataset / "real" / "thumbnail.jpg", seed=998, size=32)
    bad = {"fake/truncated.jpg": "truncated", "fake/noise.jpg": "not an image", "real/empty.jpg": "empty file",
           "real/notes.txt": "not an image", "real/thumbnail.jpg": "too small", "real/gone.jpg": "missing file"}
    write_index(tmp_path, rows + [(path, path.split("/")[0], "") for path in bad])
    config = make_config(tmp_path, max_bad_fraction=0.5)

    result = DataValidation(config).run()

    reasons = quarantine_reasons(config)
    assert set(reasons) == set(bad)
    for path, expected in bad.items():
        assert reasons[path].startswith(expected), (path, reasons[path])
    assert "32x32" in reasons["real/thumbnail.jpg"]
    assert json.loads(config.quarantine_file.read_text())["n_checked"] == len(rows) + len(bad)
    assert set(read_manifest(result.manifest_file)["path"]) == {path for path, _, _ in rows}


def test_each_kind_of_bad_file_is_logged_with_its_count(tmp_path: Path, caplog) -> None:
    rows = write_dataset(tmp_path, n_fake=8, n_real=8)
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "dataset" / "real" / name).write_bytes(b"")
    write_index(tmp_path, rows + [("real/a.jpg", "real", ""), ("real/b.jpg", "real", "")])
    with caplog.at_level(logging.WARNING):
        DataValidation(make_config(tmp_path, max_bad_fraction=0.5)).run()
    assert any("2 file(s) quarantined: empty file" in message for message in caplog.messages)


def test_more_bad_files_than_allowed_fails_but_still_lists_them(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=10, n_real=10)
    write_index(tmp_path, rows + [("fake/gone_1.jpg", "fake", ""), ("fake/gone_2.jpg", "fake", "")])
    config = make_config(tmp_path, max_bad_fraction=0.05)

    with pytest.raises(DataValidationError, match=r"2 of 22 files .*max_bad_fraction \(0\.05\): 2 missing file"):
        DataValidation(config).run()
    assert set(quarantine_reasons(config)) == {"fake/gone_1.jpg", "fake/gone_2.jpg"}
    assert not config.manifest_file.exists()


def test_bad_files_up_to_the_allowed_fraction_pass(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=10, n_real=10)
    write_index(tmp_path, rows + [("fake/gone.jpg", "fake", "")])
    result = DataValidation(make_config(tmp_path, max_bad_fraction=0.05)).run()
    assert (result.n_good, result.n_bad) == (20, 1)


def test_a_class_left_empty_by_quarantine_fails(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=6, n_real=0)
    write_index(tmp_path, rows + [("real/gone.jpg", "real", "")])
    with pytest.raises(DataValidationError, match="no usable 'real' images"):
        DataValidation(make_config(tmp_path, max_bad_fraction=0.5)).run()


def test_unknown_label_fails_naming_the_label_and_a_file(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=4, n_real=4)
    rows[0] = (rows[0][0], "deepfake", "")
    write_index(tmp_path, rows)
    with pytest.raises(DataValidationError, match=r"'deepfake' \(e\.g\. fake/fake_0\.jpg\)"):
        DataValidation(make_config(tmp_path)).run()


def test_class_name_aliases_from_params_map_to_labels(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=5, n_real=5)
    write_index(tmp_path, [(path, "Synthetic" if cls == "fake" else "Camera", split) for path, cls, split in rows])
    config = make_config(tmp_path, class_names=MappingProxyType({"fake": ("synthetic",), "real": ("camera",)}))

    manifest = read_manifest(DataValidation(config).run().manifest_file)
    assert manifest.groupby("label").size().to_dict() == {0: 5, 1: 5}
    assert set(manifest.loc[manifest["label"] == 1, "path"].str.split("/").str[0]) == {"fake"}


def test_missing_index_asks_for_the_ingest_stage(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="run the ingest and frames stages first"):
        DataValidation(make_config(tmp_path)).run()


def test_convertible_color_modes_are_kept(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=4, n_real=4)
    dataset = tmp_path / "dataset" / "real"
    rgb = Image.fromarray(picture(500), "RGB")
    rgb.convert("L").save(dataset / "gray.png")
    rgb.convert("RGBA").save(dataset / "alpha.png")
    rgb.convert("P").save(dataset / "palette.gif")
    rgb.convert("CMYK").save(dataset / "print.jpg")
    Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).save(dataset / "deep.png")
    extra = ["real/gray.png", "real/alpha.png", "real/palette.gif", "real/print.jpg", "real/deep.png"]
    write_index(tmp_path, rows + [(path, "real", "") for path in extra])

    result = DataValidation(make_config(tmp_path)).run()
    assert result.n_bad == 0
    assert set(extra) <= set(read_manifest(result.manifest_file)["path"])


def test_format_the_trainer_cannot_decode_is_quarantined(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=10, n_real=10)
    Image.fromarray(picture(501), "RGB").save(tmp_path / "dataset" / "real" / "scan.tiff")
    write_index(tmp_path, rows + [("real/scan.tiff", "real", "")])
    config = make_config(tmp_path, max_bad_fraction=0.5)
    DataValidation(config).run()
    assert quarantine_reasons(config)["real/scan.tiff"].startswith("unsupported format: TIFF")


def test_same_picture_labelled_fake_and_real_is_quarantined(tmp_path: Path) -> None:
    rows = write_dataset(tmp_path, n_fake=10, n_real=10)
    save_picture(tmp_path / "dataset" / "real" / "twin.jpg", seed=0, quality=70)  # fake_0, re-encoded
    write_index(tmp_path, rows + [("real/twin.jpg", "real", "")])
    config = make_config(tmp_path, max_bad_fraction=0.2)

    result = DataValidation(config).run()
    reasons = quarantine_reasons(config)
    assert set(reasons) == {"fake/fake_0.jpg", "real/twin.jpg"}
    assert all(reason.startswith("label conflict") for reason in reasons.values())
    assert result.n_good == 19


@pytest.mark.parametrize(("mode", "image_format", "suffix", "kind"), [
    ("1", "BMP", "bmp", "1-bit BMP"),
    ("P", "BMP", "bmp", "palette BMP"),
    ("RGBA", "WEBP", "webp", "WebP with alpha"),
])
def test_files_the_training_decoder_misreads_are_quarantined(tmp_path: Path, mode, image_format, suffix,
                                                             kind) -> None:
    from deepfake_detector.components.data.image_checks import inspect_image

    path = tmp_path / f"face.{suffix}"
    image = Image.new(mode, (80, 80))
    if mode == "P":  # a full palette, or Pillow writes a 1-bit BMP
        image.putpalette([value % 256 for value in range(768)])
    image.save(path, format=image_format)
    check = inspect_image(path, min_size=32)
    assert not check.is_usable
    assert kind in check.problem


def test_rgb_bmp_and_webp_stay_usable(tmp_path: Path) -> None:
    from deepfake_detector.components.data.image_checks import inspect_image

    for image_format, suffix in (("BMP", "bmp"), ("WEBP", "webp")):
        path = tmp_path / f"face.{suffix}"
        Image.new("RGB", (80, 80), (200, 30, 30)).save(path, format=image_format)
        assert inspect_image(path, min_size=32).is_usable, image_format
