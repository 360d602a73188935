"""One face pipeline: the faces stage stores the crop serving cuts from the same upload, so what training decodes
from the stage's PNG is what the server scores, in both crop modes and for an EXIF-turned photo; and a server
left on serve.face_detector auto crops faces exactly as the model card says the model was trained."""
import dataclasses
import io
import json
import logging
import shutil
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.components.data.datasets import decode_and_fit
from deepfake_detector.components.data.demo_data import render_demo_image
from deepfake_detector.components.data.faces import FaceCropping
from deepfake_detector.config.entities import DemoDataConfig, FaceCropSettings, FacesConfig
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.labels import FAKE, REAL
from deepfake_detector.inference.face_crop import crop_face, select_faces
from deepfake_detector.inference.face_detection import FaceDetector
from deepfake_detector.serving.service import DetectionService
from deepfake_detector.serving.uploads import decode_upload
from tests.serving import sample_images
from tests.serving.conftest import serving_config

MIN_SIZE = 24


def dataset(folder: Path) -> pd.DataFrame:
    """Demo faces of both classes in every split, a real photograph and the same photograph stored turned with an
    EXIF orientation tag; the manifest the validate stage would write for them."""
    demo = DemoDataConfig(image_size=300)
    rows = []
    for split_index, split in enumerate(("train", "val", "test")):
        for label, name in ((FAKE, "fake"), (REAL, "real")):
            path = f"{name}/{name}_{split_index}.jpg"
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(render_demo_image(demo, label, split_index + 1))
            rows.append((path, label, split))
    portrait = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    (folder / "real/photo.png").write_bytes(sample_images.encode(portrait, "PNG"))
    (folder / "real/photo_turned.jpg").write_bytes(sample_images.exif_rotated_jpeg(portrait, orientation=6))
    rows += [("real/photo.png", REAL, "train"), ("real/photo_turned.jpg", REAL, "test")]
    return pd.DataFrame([{"path": path, "label": label, "split": split, "sha256": str(i), "group": str(i)}
                         for i, (path, label, split) in enumerate(rows)])


def faces_config(root: Path, crop: str, image_size: int, fit: str) -> FacesConfig:
    return FacesConfig(root_dir=root, crops_dir=root / "crops", manifest_file=root / "faces.csv",
                       report_file=root / "faces.json",
                       faces=FaceCropSettings(enabled=True, detector="blazeface", crop=crop, min_size=MIN_SIZE,
                                              margin=0.2, no_face="quarantine"),
                       manifest_in=root / "manifest.csv", dataset_dir=root / "dataset",
                       quarantine_file=root / "quarantine.json", image_size=image_size, input_fit=fit)


@pytest.fixture(scope="module", params=["native", "aligned"])
def staged(request, tmp_path_factory, project):
    """(the stage's config, the server cropping faces the same way) for one crop mode."""
    served = DetectionService.from_config(serving_config(project, face_detector="blazeface", face_crop=request.param,
                                                         face_min_size=MIN_SIZE, face_margin=0.2), environ={})
    root = tmp_path_factory.mktemp(f"faces_{request.param}")
    dataset(root / "dataset").to_csv(root / "manifest.csv", index=False)
    config = faces_config(root, request.param, served.image_size, served.predictor.input_fit)
    FaceCropping(config).run()
    return config, served


def test_every_test_image_gets_a_face_crop(staged):
    config, _ = staged
    report = json.loads(config.report_file.read_text())
    assert report["n_images"] == report["n_with_face"] == report["n_kept"] == 8
    assert len(pd.read_csv(config.manifest_file)) == 8


def test_training_decodes_from_the_stage_exactly_the_crop_serving_scores(staged):
    config, served = staged
    detector = FaceDetector("short_range")
    size, fit = served.image_size, served.predictor.input_fit
    manifest = pd.read_csv(config.manifest_file)
    report = {row["crop"]: row for row in json.loads(config.report_file.read_text())["images"]}
    for crop_path in manifest["path"]:
        upload = (config.dataset_dir / report[crop_path]["path"]).read_bytes()
        trained_on = decode_and_fit(str(config.crops_dir / crop_path), size, fit).numpy()

        image = decode_upload(upload, "upload", max_bytes=2**24, max_pixels=2**24)
        face = select_faces(detector.detect(image), MIN_SIZE)[0]
        served_pixels = crop_face(image, face, size, mode=config.faces.crop, margin=0.2, fit=fit).pixels
        np.testing.assert_allclose(trained_on, served_pixels, atol=2e-3, err_msg=crop_path)

        answer = served.analyze(upload)
        assert answer.scored_region == "face"
        model_score = float(np.asarray(served.predictor.predict(trained_on[None])).reshape(-1)[0])
        # the resize kernels agree to 1e-3 gray levels; this tiny model turns that into ~1e-4 of P(fake)
        assert answer.fake_probability == pytest.approx(model_score, abs=5e-4), crop_path


def test_the_turned_photo_is_cropped_as_its_upright_twin(staged):
    """The EXIF-turned copy is turned upright before detection: its face is found where the upright photo's is
    (a pixel or two apart, from the JPEG's loss), not at the turned coordinates."""
    config, _ = staged
    regions = {row["path"]: row["region"] for row in json.loads(config.report_file.read_text())["images"]}
    upright, turned = np.array(regions["real/photo.png"]), np.array(regions["real/photo_turned.jpg"])
    assert np.abs(upright - turned).max() <= 4, (upright, turned)
    if config.faces.crop == "native":  # the stored pixels are the region; an aligned crop is the model's size
        assert Image.open(config.crops_dir / "real/photo_turned.jpg.png").size == tuple(turned[2:])


@pytest.fixture()
def card_with_faces(project, tmp_path):
    """A copy of the tiny project whose model card says it was trained on aligned BlazeFace crops."""
    root = tmp_path / "project"
    shutil.copytree(project, root)
    card_path = root / "export" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["input"] = {"fit": "resize", "faces": {"detector": "blazeface", "crop": "aligned", "margin": 0.3,
                                               "min_size": 30}}
    card_path.write_text(json.dumps(card))
    return root


def test_auto_crops_faces_as_the_model_was_trained(card_with_faces):
    service = DetectionService.from_config(serving_config(card_with_faces, face_detector="auto"), environ={})
    config = service.config
    assert (config.face_detector, config.face_crop, config.face_margin, config.face_min_size) == (
        "blazeface", "aligned", 0.3, 30)
    portrait = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    buffer = io.BytesIO()
    portrait.save(buffer, "PNG")
    assert service.analyze(buffer.getvalue()).scored_region == "face"


def test_auto_scores_whole_images_for_a_model_trained_on_them(project):
    service = DetectionService.from_config(serving_config(project, face_detector="auto"), environ={})
    assert service.config.face_detector == "off" and service.face_detector is None


def test_a_detector_unlike_the_training_is_served_with_a_warning(card_with_faces, caplog):
    with caplog.at_level(logging.WARNING, logger="deepfake_detector.serving.service"):
        service = DetectionService.from_config(serving_config(card_with_faces, face_detector="off"), environ={})
    assert service.face_detector is None
    assert "differs from the model's training (blazeface faces, aligned crop)" in caplog.text


def test_faces_settings_are_kept_in_the_replaced_config(card_with_faces):
    """Nothing else of the serving config changes when auto is resolved."""
    config = serving_config(card_with_faces, face_detector="auto")
    service = DetectionService.from_config(config, environ={})
    assert dataclasses.replace(service.config, face_detector="auto", face_crop=config.face_crop,
                               face_margin=config.face_margin, face_min_size=config.face_min_size) == config


def test_a_malformed_faces_block_in_the_card_stops_the_load_naming_it(card_with_faces):
    card_path = card_with_faces / "export" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["input"]["faces"].update(crop="wide", min_size=0)
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"input\.faces\.crop must be one of native, aligned; "
                                         r"input\.faces\.min_size must be"):
        DetectionService.from_config(serving_config(card_with_faces, face_detector="auto"), environ={})


def test_without_a_card_auto_follows_params_data_faces(project, tmp_path):
    trained = FaceCropSettings(enabled=True, detector="blazeface", crop="aligned", min_size=32, margin=0.25)
    config = serving_config(project, backend="keras", export_dir=tmp_path / "no_export", face_detector="auto",
                            training_faces=trained)
    service = DetectionService.from_config(config, environ={})
    assert service.model.card is None
    assert (service.config.face_detector, service.config.face_crop, service.config.face_min_size) == (
        "blazeface", "aligned", 32)
