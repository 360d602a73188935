"""What the served model was trained on: the page, /api/v1/model and every API answer say it, with a notice
when that was the synthetic demo set; a source URL is shown without its credentials."""
from __future__ import annotations

import io
import json
import shutil

import pytest

from deepfake_detector.serving.app_factory import create_app
from deepfake_detector.serving.training_data import DEMO_NOTICE
from tests.serving import sample_images
from tests.serving.conftest import serving_config

SECRET_SOURCE = "https://reader:s3cret-pass@data.example.org/hardfake.zip?token=t0ken-value#part"
SHOWN_SOURCE = "https://data.example.org/hardfake.zip"
REAL_COUNTS = {"test": 360, "train": 1680, "val": 360}


def client_for_source(project, templates_dir, root, source):
    """An app serving the session's model, with a card recording source as params.yaml data.source."""
    shutil.copytree(project, root, dirs_exist_ok=True)
    card_file = root / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["dataset"] = {"source": source, "manifest_sha256": "abc", "images_per_split": REAL_COUNTS}
    card_file.write_text(json.dumps(card))
    app = create_app(serving_config(root), root=root, environ={}, template_folder=templates_dir, retry_interval_s=None)
    return app.test_client()


def predict(client):
    return client.post("/api/v1/predict", data={"file": (io.BytesIO(sample_images.jpeg()), "a.jpg")}).get_json()


def test_a_demo_trained_model_says_so_in_model_info_and_every_answer(client):
    info = client.get("/api/v1/model").get_json()
    assert info["notice"] == DEMO_NOTICE and "mean nothing" in DEMO_NOTICE
    assert info["training_data"] == "demo, 140 images (train 100, val 20, test 20)"
    assert (info["dataset"]["source"], info["dataset"]["images"]) == ("demo", 140)
    assert predict(client)["notice"] == DEMO_NOTICE


def test_the_page_shows_the_demo_banner_and_the_training_data(client):
    page = client.get("/").get_data(as_text=True)
    assert 'id="demo-notice"' in page and "verdicts on real photographs mean nothing" in page
    assert "Trained on" in page and "demo, 140 images (train 100, val 20, test 20)" in page


@pytest.mark.parametrize("source", ["demo:b", "DEMO", "demo-video", "demo-video:b + demo"])
def test_every_demo_style_carries_the_notice(project, templates_dir, tmp_path, source):
    client = client_for_source(project, templates_dir, tmp_path, source)
    assert client.get("/api/v1/model").get_json()["notice"] == DEMO_NOTICE


def test_a_real_source_is_shown_without_credentials_and_without_the_notice(project, templates_dir, tmp_path):
    client = client_for_source(project, templates_dir, tmp_path, SECRET_SOURCE)
    response = client.get("/api/v1/model")
    info = response.get_json()
    assert info["training_data"] == f"{SHOWN_SOURCE}, 2,400 images (train 1,680, val 360, test 360)"
    assert info["dataset"]["source"] == SHOWN_SOURCE and info["notice"] is None
    assert predict(client)["notice"] is None
    page = client.get("/").get_data(as_text=True)
    assert SHOWN_SOURCE in page and 'id="demo-notice"' not in page
    for text in (response.get_data(as_text=True), page):
        assert "s3cret" not in text and "t0ken" not in text and "reader" not in text


def test_a_card_without_dataset_facts_says_they_were_not_recorded(project, templates_dir, tmp_path):
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    card_file = tmp_path / "export" / "model_card.json"
    card = json.loads(card_file.read_text())
    del card["dataset"]
    card_file.write_text(json.dumps(card))
    app = create_app(serving_config(tmp_path), root=tmp_path, environ={}, template_folder=templates_dir,
                     retry_interval_s=None)
    info = app.test_client().get("/api/v1/model").get_json()
    assert info["training_data"] == "not recorded in the model card"
    assert info["dataset"] is None and info["notice"] is None
