"""The faces stage: a crop for every validated image with a face; an image without one is quarantined with its
reason or kept whole (data.faces.no_face); a split left without a class fails naming the report; turned off, the
stage writes nothing to train on. (Its crops equal serving's: tests/serving/test_face_stage_parity.py.)"""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data.demo_data import render_demo_image
from deepfake_detector.components.data.faces import FaceCropping
from deepfake_detector.config.entities import DemoDataConfig, FaceCropSettings, FacesConfig
from deepfake_detector.contracts.errors import DataValidationError
from deepfake_detector.contracts.labels import FAKE, REAL

IMAGE_SIZE = 64


def write_dataset(root: Path, blank: dict[str, int] | None = None) -> None:
    """Two demo faces per class and split, plus `blank` faceless gray pictures {split: count} labelled real, and
    the manifest validate would write."""
    demo = DemoDataConfig(image_size=160)
    rows = []
    for split_index, split in enumerate(("train", "val", "test")):
        for label, name in ((FAKE, "fake"), (REAL, "real")):
            for copy in range(2):
                path = f"{name}/{name}_{split_index}_{copy}.jpg"
                (root / "dataset" / name).mkdir(parents=True, exist_ok=True)
                (root / "dataset" / path).write_bytes(render_demo_image(demo, label, 10 * split_index + copy + 1))
                rows.append((path, label, split))
    for split, count in (blank or {}).items():
        for index in range(count):
            path = f"real/blank_{split}_{index}.png"
            Image.fromarray(np.full((120, 90, 3), 128 + index, np.uint8)).save(root / "dataset" / path)
            rows.append((path, REAL, split))
    pd.DataFrame([{"path": p, "label": y, "split": s, "sha256": str(i), "group": str(i)}
                  for i, (p, y, s) in enumerate(rows)]).to_csv(root / "manifest.csv", index=False)


def config(root: Path, **faces) -> FacesConfig:
    settings = FaceCropSettings(**{"enabled": True, "min_size": 24, **faces})
    return FacesConfig(root_dir=root / "faces", crops_dir=root / "faces/crops",
                       manifest_file=root / "faces/manifest.csv", report_file=root / "faces/faces.json",
                       faces=settings, manifest_in=root / "manifest.csv",
                       dataset_dir=root / "dataset", quarantine_file=root / "quarantine.json",
                       image_size=IMAGE_SIZE, input_fit="crop")


def report_rows(config: FacesConfig) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(config.report_file.read_text())["images"]}


def test_faceless_images_are_quarantined_with_their_reason(tmp_path):
    write_dataset(tmp_path, blank={"train": 2})
    stage = config(tmp_path)
    result = FaceCropping(stage).run()
    assert (result.n_images, result.n_with_face, result.n_kept) == (14, 12, 12)
    kept = pd.read_csv(stage.manifest_file)
    assert not kept["path"].str.contains("blank").any()
    assert all((stage.crops_dir / path).is_file() for path in kept["path"])
    blank = report_rows(stage)["real/blank_train_0.png"]
    assert blank["crop"] is None and blank["reason"].startswith("no face found")
    report = json.loads(stage.report_file.read_text())
    assert report["left_out"] == {"no face found": 2} and report["per_class"]["real"]["with_face"] == 6
    assert report["per_split"]["train"] == {"images": 6, "kept": 4}


def test_faceless_images_kept_whole_are_scored_as_serving_scores_them(tmp_path):
    write_dataset(tmp_path, blank={"test": 1})
    stage = config(tmp_path, no_face="whole_image")
    FaceCropping(stage).run()
    blank = report_rows(stage)["real/blank_test_0.png"]
    assert blank["face"] is None and blank["reason"] is None
    # the crop fit scores the center 64 x 64 of the 90 x 120 picture, at its own resolution
    assert blank["region"] == [13, 28, IMAGE_SIZE, IMAGE_SIZE]
    assert Image.open(stage.crops_dir / blank["crop"]).size == (IMAGE_SIZE, IMAGE_SIZE)
    assert len(pd.read_csv(stage.manifest_file)) == 13


def test_face_crops_keep_each_image_in_its_split_and_group(tmp_path):
    write_dataset(tmp_path)
    stage = config(tmp_path)
    FaceCropping(stage).run()
    validated = pd.read_csv(tmp_path / "manifest.csv", dtype=str)
    crops = pd.read_csv(stage.manifest_file, dtype=str)
    assert (crops["path"] == validated["path"] + ".png").all()
    assert crops[["label", "split", "sha256", "group"]].equals(validated[["label", "split", "sha256", "group"]])


def test_a_split_left_without_a_class_fails_naming_the_report(tmp_path):
    write_dataset(tmp_path)
    stage = config(tmp_path, min_size=150)  # no demo face is that large
    with pytest.raises(DataValidationError, match=r"no fake and no real face crops remain in the train split.*"
                                                  r"faces\.json.*blazeface_full_range"):
        FaceCropping(stage).run()
    assert json.loads(stage.report_file.read_text())["n_with_face"] == 0  # the report says why
    assert not stage.manifest_file.exists()


def test_turned_off_the_stage_writes_nothing_to_train_on(tmp_path):
    write_dataset(tmp_path)
    stage = dataclasses.replace(config(tmp_path), faces=FaceCropSettings(enabled=False))
    FaceCropping(stage).run()
    assert pd.read_csv(stage.manifest_file).empty and list(stage.crops_dir.iterdir()) == []
    assert json.loads(stage.report_file.read_text())["enabled"] is False


def test_an_image_changed_since_validation_is_listed_not_fatal(tmp_path):
    write_dataset(tmp_path, blank={"val": 1})
    (tmp_path / "dataset/real/blank_val_0.png").write_bytes(b"not an image any more")
    stage = config(tmp_path)
    FaceCropping(stage).run()
    assert report_rows(stage)["real/blank_val_0.png"]["reason"].startswith("unreadable: ")
