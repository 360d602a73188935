"""The faces stage: find the face in every validated image and store the crop the model is fed.

The crop is cut by the function serving crops uploads with (inference.face_crop.face_region, after the same
upright decode, detector and face selection), and stored as a lossless PNG: training then decodes and fits it
exactly as serving fits its crop, so a model trained on these crops sees at serving time what it was trained on
(tests/pipeline/test_faces_stage.py holds the two equal).

Images without a face (data.faces.no_face): "quarantine" leaves them out and lists each with its reason in the
report; "whole_image" keeps what serving scores of an upload without a face. A split left without one of the
classes is an error naming the report.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from deepfake_detector.components.data.datasets import MANIFEST_COLUMNS, SPLITS, VIDEO_COLUMN, read_manifest
from deepfake_detector.config.entities import FaceCropSettings, FacesConfig
from deepfake_detector.contracts.errors import DataValidationError, ImageError
from deepfake_detector.contracts.labels import CLASS_NAMES, FAKE, REAL
from deepfake_detector.inference.face_crop import FaceRegion, face_region, select_faces, whole_image_region
from deepfake_detector.inference.face_detection import DETECTOR_MODELS, Face, FaceDetector
from deepfake_detector.inference.images import decode_image
from deepfake_detector.utils.files import atomic_directory, atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

NO_FACE = "no face found"
UNREADABLE = "unreadable"
LOW_DETECTION_RATE = 0.9  # below this share of images with a face, the detector probably suits the data badly
CROP_SUFFIX = ".png"


@dataclass(frozen=True)
class FaceCropOutcome:
    """One image's result: the crop's path under crops_dir (None when left out) and what was found."""

    path: str
    crop: str | None
    face: Face | None
    faces_found: int
    region: list[int] | None  # [x, y, width, height] of the stored pixels in the upright image
    reason: str | None = None

    def as_report_row(self) -> dict[str, Any]:
        face = self.face
        return {"path": self.path, "crop": self.crop, "faces_found": self.faces_found, "region": self.region,
                "face": None if face is None else {
                    "box": [round(face.x, 1), round(face.y, 1), round(face.width, 1), round(face.height, 1)],
                    "score": round(face.score, 4),
                    "landmarks": {name: [round(x, 1), round(y, 1)] for name, (x, y) in face.landmarks.items()}},
                "reason": self.reason}


@dataclass(frozen=True)
class FacesResult:
    manifest_file: Path
    report_file: Path
    n_images: int
    n_with_face: int
    n_kept: int

    @property
    def detection_rate(self) -> float:
        return self.n_with_face / self.n_images if self.n_images else 0.0


class FaceCropper:
    """Cuts the model's region of one image as serving would cut it from the same upload."""

    def __init__(self, settings: FaceCropSettings, image_size: int, fit: str, detector: FaceDetector) -> None:
        self.settings = settings
        self.image_size = image_size
        self.fit = fit
        self.detector = detector

    def region(self, image: np.ndarray) -> tuple[FaceRegion | None, Face | None, int]:
        """(the region to store, the face it shows, the number of faces found); a None region: no face and
        the quarantine rule."""
        settings = self.settings
        found = self.detector.detect(image)
        faces = select_faces(found, settings.min_size)
        if faces:
            face = faces[0]
            return (face_region(image, face, self.image_size, mode=settings.crop, margin=settings.margin,
                                fit=self.fit), face, len(found))
        if settings.no_face == "whole_image":
            return whole_image_region(image, self.image_size, self.fit), None, len(found)
        return None, None, len(found)


def crop_images(paths: list[str], dataset_dir: Path, target_dir: Path, settings: FaceCropSettings, image_size: int,
                fit: str) -> list[FaceCropOutcome]:
    """Each image's outcome, in order, its crop written to target_dir/<path>.png. Threads: the decoder, LiteRT
    and zlib release the GIL."""
    import cv2

    cv2.setNumThreads(1)  # the threads below already use every core
    cropper = FaceCropper(settings, image_size, fit, FaceDetector(DETECTOR_MODELS[settings.detector], num_threads=1))

    def crop_one(path: str) -> FaceCropOutcome:
        return _crop_one(path, Path(dataset_dir), cropper, Path(target_dir))

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(crop_one, paths), total=len(paths), desc="cropping faces", unit="img",
                         leave=False))


def _crop_one(path: str, dataset_dir: Path, cropper: FaceCropper, target_dir: Path) -> FaceCropOutcome:
    try:
        image = decode_image(dataset_dir / path, name=path, upright=True)
    except (ImageError, OSError) as error:
        # validation decoded it, so the file changed since: say so rather than fail the whole stage
        return FaceCropOutcome(path, None, None, 0, None, f"{UNREADABLE}: {error}")
    region, face, found = cropper.region(image)
    if region is None:
        return FaceCropOutcome(path, None, None, found, None,
                               f"{NO_FACE}: no face of at least {cropper.settings.min_size} px among {found} found")
    crop = path + CROP_SUFFIX
    target = target_dir / crop
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(region.pixels), "RGB").save(target, "PNG", compress_level=1)
    box = region.box
    return FaceCropOutcome(path, crop, face, found, [box.x, box.y, box.width, box.height])


class FaceCropping:
    """Writes crops_dir, the crops' manifest and the report for the validated manifest."""

    def __init__(self, config: FacesConfig) -> None:
        self.config = config

    def run(self) -> FacesResult:
        config = self.config
        manifest = read_manifest(config.manifest_in)
        if not config.faces.enabled:
            return self._write_disabled(manifest)
        with atomic_directory(config.crops_dir) as staging:
            outcomes = crop_images(manifest["path"].tolist(), config.dataset_dir, staging, config.faces,
                                   config.image_size, config.input_fit)
        kept = self._kept_manifest(manifest, outcomes)
        self._write_report(manifest, outcomes, kept)
        self._check_splits(kept)
        with atomic_path(config.manifest_file) as tmp:
            kept.to_csv(tmp, index=False, lineterminator="\n")
        n_with_face = sum(outcome.face is not None for outcome in outcomes)
        result = FacesResult(config.manifest_file, config.report_file, len(outcomes), n_with_face, len(kept))
        logger.info("Faces (%s, %s crop): found in %d of %d images (%.1f%%); %d crops kept in %s",
                    config.faces.detector, config.faces.crop, n_with_face, len(outcomes),
                    100 * result.detection_rate, len(kept), config.crops_dir)
        if result.detection_rate < LOW_DETECTION_RATE:
            logger.warning("the face detector found a face in only %.1f%% of the images: check data.faces.detector "
                           "(blazeface_full_range finds small faces) and %s", 100 * result.detection_rate,
                           config.report_file)
        return result

    @staticmethod
    def _kept_manifest(manifest: pd.DataFrame, outcomes: list[FaceCropOutcome]) -> pd.DataFrame:
        """The validated manifest's rows that have a crop, with path pointing at the crop; groups and splits
        unchanged, so a crop never leaves its picture's split."""
        crops = {outcome.path: outcome.crop for outcome in outcomes if outcome.crop is not None}
        kept = manifest[manifest["path"].isin(crops)].copy()
        kept["path"] = kept["path"].map(crops)
        columns = [column for column in manifest.columns if column in (*MANIFEST_COLUMNS, "source", VIDEO_COLUMN)]
        return kept.loc[:, columns]

    def _write_report(self, manifest: pd.DataFrame, outcomes: list[FaceCropOutcome], kept: pd.DataFrame) -> None:
        config = self.config
        labels = dict(zip(manifest["path"], manifest["label"], strict=True))
        per_class = {}
        for label in (FAKE, REAL):
            rows = [outcome for outcome in outcomes if labels[outcome.path] == label]
            with_face = sum(outcome.face is not None for outcome in rows)
            per_class[CLASS_NAMES[label]] = {"images": len(rows), "with_face": with_face,
                                             "detection_rate": round(with_face / len(rows), 4) if rows else None}
        per_split = {split: {"images": int((manifest["split"] == split).sum()),
                             "kept": int((kept["split"] == split).sum())} for split in SPLITS}
        reasons = Counter(outcome.reason.split(":")[0] for outcome in outcomes if outcome.reason)
        n_with_face = sum(outcome.face is not None for outcome in outcomes)
        write_json_atomic(config.report_file, {
            "enabled": True,
            "settings": {"detector": config.faces.detector, "crop": config.faces.crop,
                         "min_size": config.faces.min_size, "margin": config.faces.margin,
                         "no_face": config.faces.no_face, "image_size": config.image_size,
                         "input_fit": config.input_fit},
            "n_images": len(outcomes), "n_with_face": n_with_face,
            "detection_rate": round(n_with_face / len(outcomes), 4) if outcomes else None,
            "n_kept": len(kept), "left_out": dict(reasons), "per_class": per_class, "per_split": per_split,
            "images": [outcome.as_report_row() for outcome in outcomes],
        })
        for reason, count in sorted(reasons.items()):
            example = next(outcome.path for outcome in outcomes if (outcome.reason or "").startswith(reason))
            logger.warning("%d image(s) left out: %s (e.g. %s); see %s", count, reason, example, config.report_file)

    def _check_splits(self, kept: pd.DataFrame) -> None:
        for split in SPLITS:
            rows = kept[kept["split"] == split]
            missing = [CLASS_NAMES[label] for label in (FAKE, REAL) if not (rows["label"] == label).any()]
            if missing:
                raise DataValidationError(
                    f"no {' and no '.join(missing)} face crops remain in the {split} split: the face detector found "
                    f"too few faces (see {self.config.report_file}); try data.faces.detector blazeface_full_range, "
                    "a smaller data.faces.min_size, or data.faces.no_face: whole_image")

    def _write_disabled(self, manifest: pd.DataFrame) -> FacesResult:
        """data.faces.enabled is false: no crops; an empty manifest and a report that says so, so that turning
        the flag on or off reruns exactly this stage and the stages that train and score."""
        config = self.config
        with atomic_directory(config.crops_dir):
            pass
        with atomic_path(config.manifest_file) as tmp:
            manifest.iloc[:0].to_csv(tmp, index=False, lineterminator="\n")
        write_json_atomic(config.report_file, {"enabled": False, "n_images": len(manifest),
                                               "note": "data.faces.enabled is false: the model trains on whole "
                                                       "images (artifacts of the validate stage)"})
        logger.info("Faces: data.faces.enabled is false; the model trains on the whole validated images")
        return FacesResult(config.manifest_file, config.report_file, len(manifest), 0, 0)
