"""The session's tiny served model (tests/tiny_served_model.py: MobileNetV2 alpha 0.35, 48 px, float32
TFLite) in a project folder of its own with a full model card and scores.json, and apps around it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from deepfake_detector.config.entities import ServingConfig
from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.settings import repository_root
from deepfake_detector.utils.files import sha256_file
from tests.tiny_served_model import DEMO_DATASET, THRESHOLD, TinyModel, tiny_model_for_session

MANIFEST_SHA256 = "abc"
TEST_METRICS = {"accuracy": 0.75, "roc_auc": 0.8, "threshold": THRESHOLD, "n_test": 10}


def build_tiny_project(root: Path, tiny: TinyModel) -> Path:
    """root/model.h5, root/export/{model.tflite, model_card.json}, root/scores.json for the session's
    tiny model, with a model card carrying everything /api/v1/model reports."""
    export_dir = root / "export"
    export_dir.mkdir(parents=True)
    shutil.copy(tiny.model_file, root / "model.h5")
    shutil.copy(tiny.export_dir / "model.tflite", export_dir / "model.tflite")
    card = {
        "source": {"file": "model.h5", "sha256": sha256_file(root / "model.h5")},
        "output": {"threshold": THRESHOLD, "temperature": 1.0},
        "exports": {"float32": {"file": "model.tflite", "sha256": sha256_file(export_dir / "model.tflite")}},
        "dataset": {**DEMO_DATASET, "manifest_sha256": MANIFEST_SHA256},
        "architecture": {"backbone": "MobileNetV2", "alpha": 0.35},
        "test_metrics": TEST_METRICS,
    }
    (export_dir / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    scores = {**TEST_METRICS, "model_sha256": sha256_file(root / "model.h5")}
    (root / "scores.json").write_text(json.dumps(scores), encoding="utf-8")
    return root


def serving_config(root: Path, **overrides) -> ServingConfig:
    values = dict(model_file=root / "model.h5", export_dir=root / "export", scores_file=root / "scores.json",
                  backend="tflite", variant="float32", num_threads=1, threshold=None, face_detector="off",
                  face_policy="largest", face_min_size=24, face_margin=0.2, max_request_bytes=2 * 1024 * 1024,
                  max_image_pixels=4_000_000, max_images_per_request=4, cors_origins=(), training_enabled=False)
    values.update(overrides)
    return ServingConfig(**values)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    return build_tiny_project(tmp_path_factory.mktemp("serving_project"), tiny_model_for_session(tmp_path_factory))


@pytest.fixture(scope="session")
def templates_dir(tmp_path_factory) -> Path:
    """The real templates/ when the page exists, else a stand-in that renders the same variables."""
    real = repository_root() / "templates"
    if (real / "index.html").is_file():
        return real
    folder = tmp_path_factory.mktemp("templates")
    (folder / "index.html").write_text("<html><body>{{ model.model_version if model else 'no model' }} "
                                       "{{ limits.max_request_mb }}</body></html>", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def service(project) -> DetectionService:
    return DetectionService.from_config(serving_config(project), environ={})


@pytest.fixture(scope="session")
def make_app(project, templates_dir, service):
    """Apps with serving settings overridden per test; they share the session's loaded service
    unless load_model is true (then the app loads its own, as in production)."""
    def make(environ=None, load_model=False, training_command=None, retry_interval_s=None, **overrides):
        config = serving_config(project, **overrides)
        app = create_app(config, root=project, environ=environ or {}, service=None if load_model else service,
                         training_command=training_command,
                         template_folder=templates_dir, retry_interval_s=retry_interval_s)
        app.testing = True
        return app
    return make


@pytest.fixture(scope="package", autouse=True)
def pillow_default_cap():
    """Every app sets Pillow's process-wide pixel cap from its config; tests outside this package get Pillow's
    own back."""
    default = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = default


@pytest.fixture(scope="session")
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
