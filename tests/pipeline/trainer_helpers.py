"""Tiny learnable dataset and configs for the trainer tests; run as a script, a slow trainer to kill.

Fake images are bright noisy checkerboards, real ones darker smooth noise: a from-scratch
MobileNetV2 at alpha 0.35 separates them within a few epochs at 32 px.

Usage: python tests/pipeline/trainer_helpers.py CONFIG_JSON
"""
from __future__ import annotations

import csv
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepfake_detector.config.entities import AugmentationConfig, ModelConfig, TrainingConfig
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.utils.files import sha256_file

IMAGE_SIZE = 32
NO_AUGMENTATION = AugmentationConfig(
    enabled=False, flip=False, rotation=0.0, zoom=0.0, contrast=0.0, brightness=0.0, jpeg_probability=0.0,
    jpeg_quality_min=70, jpeg_quality_max=100, blur_probability=0.0, rescale_probability=0.0,
    rescale_min_factor=0.6)


def _fake_image(rng: np.random.Generator) -> np.ndarray:
    cells = np.indices((IMAGE_SIZE, IMAGE_SIZE)) // 4
    grid = (cells.sum(axis=0) % 2)[..., None] * 80.0
    return rng.uniform(100, 140, size=3) + grid + rng.normal(0, 10, (IMAGE_SIZE, IMAGE_SIZE, 3))


def _real_image(rng: np.random.Generator) -> np.ndarray:
    coarse = Image.fromarray(rng.uniform(40, 140, (4, 4, 3)).astype(np.uint8))
    return np.asarray(coarse.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC), dtype=np.float64)


def write_dataset(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0) -> tuple[Path, Path]:
    """PNG files plus manifest.csv; counts maps split -> (fake, real). Returns (dataset_dir, manifest)."""
    rng = np.random.default_rng(seed)
    dataset_dir = root / "dataset"
    rows = []
    for split, (n_fake, n_real) in counts.items():
        for label, count, make in ((FAKE, n_fake, _fake_image), (REAL, n_real, _real_image)):
            for index in range(count):
                relative = Path(split) / f"{label}_{index}.png"
                path = dataset_dir / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.clip(make(rng), 0, 255).astype(np.uint8)).save(path)
                rows.append({"path": relative.as_posix(), "label": label, "split": split,
                             "sha256": sha256_file(path), "group": f"{split}-{label}-{index}"})
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "split", "sha256", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return dataset_dir, manifest


def model_config(root: Path) -> ModelConfig:
    # BN momentum 0.5: with a few dozen steps, 0.9 leaves the moving statistics (and so the
    # validation outputs) far from the training-mode ones.
    return ModelConfig(root_dir=root, model_file=root / "base_model.h5", summary_file=root / "summary.json",
                       alpha=0.35, image_size=IMAGE_SIZE, weights="none", dropout=0.0, batch_norm_momentum=0.5,
                       freeze_batch_norm=False, seed=1)


def training_config(root: Path, base_model: Path, dataset_dir: Path, manifest: Path, **overrides) -> TrainingConfig:
    out = root / "training"
    settings = dict(
        root_dir=out, base_model_file=base_model, manifest_file=manifest, dataset_dir=dataset_dir,
        model_file=out / "model.h5", history_file=out / "history.csv", checkpoint_file=out / "best.weights.h5",
        backup_dir=out / "backup", run_file=out / "mlflow_run.json", image_size=IMAGE_SIZE, input_fit="crop",
        batch_size=8,
        head_epochs=0, head_learning_rate=1e-3, fine_tune_epochs=4, fine_tune_layers="all",
        fine_tune_learning_rate=1e-3, min_steps=0, freeze_batch_norm=False, early_stopping_patience=100,
        reduce_lr_patience=100, reduce_lr_factor=0.5, class_weights=True, cache=True, seed=3,
        augment=NO_AUGMENTATION)
    settings.update(overrides)
    return TrainingConfig(**settings)


def save_training_config(config: TrainingConfig, path: Path) -> None:
    path.write_text(json.dumps(dataclasses.asdict(config), default=str))


def load_training_config(path: Path) -> TrainingConfig:
    settings = json.loads(path.read_text())
    for key in ("root_dir", "base_model_file", "manifest_file", "dataset_dir", "model_file", "history_file",
                "checkpoint_file", "backup_dir", "run_file"):
        settings[key] = Path(settings[key])
    settings["augment"] = AugmentationConfig(**settings["augment"])
    return TrainingConfig(**settings)


def _train_slowly(config_file: Path) -> None:
    import keras

    from deepfake_detector.components.model.trainer import Trainer

    class SlowEpochs(keras.callbacks.Callback):
        """Leave the killing test time to act between epochs."""

        def on_epoch_end(self, epoch, logs=None):
            time.sleep(2.0)

    Trainer(load_training_config(config_file)).run(callbacks=[SlowEpochs()])


if __name__ == "__main__":
    _train_slowly(Path(sys.argv[1]))
