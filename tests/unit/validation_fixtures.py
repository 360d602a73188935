"""Builders for validate-stage tests: distinct small pictures, an index, a config."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from deepfake_detector.config.entities import DataValidationConfig, SplitFractions

SIZE = 72


def picture(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth random picture: its perceptual hash is far from any other seed's."""
    grid = np.random.default_rng(seed).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(grid, "RGB").resize((size, size), Image.Resampling.BICUBIC))


def save_picture(path: Path, seed: int, quality: int = 90, size: int = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture(seed, size), "RGB").save(path, "JPEG", quality=quality)
    return path


def make_config(root: Path, **overrides) -> DataValidationConfig:
    config = DataValidationConfig(
        root_dir=root / "artifacts" / "data",
        dataset_dir=root / "dataset",
        index_file=root / "index.csv",
        manifest_file=root / "artifacts" / "data" / "manifest.csv",
        quarantine_file=root / "artifacts" / "data" / "quarantine.json",
        split_summary_file=root / "artifacts" / "data" / "split_summary.json",
        class_names={"fake": ("fake",), "real": ("real",)},
        min_image_size=64,
        max_bad_fraction=0.05,
        near_duplicate_hamming=4,
        split=SplitFractions(train=0.7, val=0.15, test=0.15),
        seed=42,
    )
    return replace(config, **overrides)


def write_index(root: Path, rows: list[tuple[str, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["path", "class_name", "split"])
    frame.to_csv(root / "index.csv", index=False)


def write_dataset(root: Path, n_fake: int, n_real: int, first_seed: int = 0) -> list[tuple[str, str, str]]:
    """n_fake + n_real distinct pictures under root/dataset/<class>/, indexed without a split."""
    rows = []
    for offset, (class_name, count) in enumerate((("fake", n_fake), ("real", n_real))):
        for number in range(count):
            relative = f"{class_name}/{class_name}_{number}.jpg"
            save_picture(root / "dataset" / relative, seed=first_seed + offset * 100_000 + number)
            rows.append((relative, class_name, ""))
    write_index(root, rows)
    return rows


def quarantine_reasons(config: DataValidationConfig) -> dict[str, str]:
    report = json.loads(config.quarantine_file.read_text())
    return {entry["path"]: entry["reason"] for entry in report["files"]}
