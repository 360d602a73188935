"""A tiny untrained MobileNetV2 saved as model.h5 plus its float32 TFLite export and model card: enough for
the serving runtime to load, score and explain, built once per test session (about 25 s on 2 cores)."""
from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 48
THRESHOLD = 0.5
# What the export stage records for a model trained on the demo set, as the model card's dataset block.
DEMO_DATASET = {"source": "demo", "manifest_sha256": "abc", "images_per_split": {"test": 20, "train": 100, "val": 20}}


@dataclass(frozen=True)
class TinyModel:
    model_file: Path
    export_dir: Path

    def environment(self) -> dict[str, str]:
        """The overrides that make the CLI and the web app serve this model."""
        return {"DEEPFAKE_DETECTOR_MODEL": str(self.model_file), "DEEPFAKE_DETECTOR_EXPORT_DIR": str(self.export_dir)}


def build_tiny_model(folder: Path) -> TinyModel:
    from deepfake_detector.components.model.factory import build_model
    from deepfake_detector.config.entities import ModelConfig
    from deepfake_detector.utils.files import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(ModelConfig(
        root_dir=folder, model_file=folder / "base_model.h5", summary_file=folder / "summary.json", alpha=0.35,
        image_size=IMAGE_SIZE, weights="none", dropout=0.2, batch_norm_momentum=0.0, freeze_batch_norm=False,
        seed=7))
    spread_the_scores(model)
    model_file = folder / "model.h5"
    model.save(model_file)
    export_dir = folder / "export"
    export_dir.mkdir()
    model.export(str(export_dir / "model.tflite"), format="litert", verbose=False)
    card = {"source": {"file": "model.h5", "sha256": sha256_file(model_file)},
            "output": {"threshold": THRESHOLD, "temperature": 1.0},
            "exports": {"float32": {"file": "model.tflite", "sha256": sha256_file(export_dir / "model.tflite")}},
            "dataset": DEMO_DATASET, "test_metrics": {}}
    (export_dir / "model_card.json").write_text(json.dumps(card))
    return TinyModel(model_file, export_dir)


def spread_the_scores(model) -> None:
    """Make an untrained model's scores differ from photo to photo, straddling 0.5.

    Fresh, its BatchNorm statistics shrink every feature to about 1e-11 and every score is 0.5, which
    would let a wrong number pass for a right one. With momentum 0, one training-mode call sets the
    statistics from a batch of photos; the output unit is then scaled to spread the logits over about +-2.
    """
    import warnings

    import keras
    import numpy as np

    calibration = np.stack([np.asarray(Image.open(write_photo(io.BytesIO(), seed=seed)).resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR), dtype="float32") for seed in range(100, 116)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: a bare array for the input named "image"
        model(calibration, training=True)
        features = keras.Model(model.inputs, model.get_layer("pool").output)(calibration).numpy()
    direction = np.random.default_rng(0).normal(size=(features.shape[1], 1)).astype("float32")
    logits = (features @ direction).ravel()
    scale = 2.0 / float(logits.std())
    model.get_layer("p_fake").set_weights([direction * scale,
                                           np.array([-float(np.median(logits)) * scale], dtype="float32")])


def tiny_model_for_session(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """The session's tiny model, built by the first test module that asks for it."""
    folder = tmp_path_factory.getbasetemp() / "tiny_served_model"
    done = folder / "done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        build_tiny_model(folder)
        done.touch()
    return TinyModel(folder / "model.h5", folder / "export")


def copy_config(root: Path) -> Path:
    """A project root with the repository's config.yaml and params.yaml, and no pipeline outputs."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "config" / "config.yaml", root / "config" / "config.yaml")
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    return root


def write_photo(path: Path | io.BytesIO, size: int = 300, seed: int = 0, image_format: str = "JPEG"):
    """A smooth colorful size x size picture with a face-like blob, different for each seed; returns path."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 200, 3)
    pixels = np.stack([base[0] + 50 * x, base[1] + 50 * y, base[2] + 40 * (x * y)], axis=-1)
    face = (x - 0.5) ** 2 / 0.06 + (y - 0.5) ** 2 / 0.1 < 1
    pixels[face] = rng.uniform(150, 230, 3)
    pixels += rng.normal(0, 6, pixels.shape)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(path, format=image_format)
    if isinstance(path, io.BytesIO):
        path.seek(0)
    return path
