"""A HardFake-like archive (data.csv + fake/ + real/, 300x300 JPEGs, a few corrupt files) given as
data.source trains and evaluates through the command line with no code change."""
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from deepfake_detector.components.data.demo_data import generate_demo_dataset
from deepfake_detector.config.entities import DemoDataConfig
from tests.pipeline.tiny_repo import make_tiny_repo, run

pytestmark = pytest.mark.slow

CORRUPT = {"fake/fake_3.jpg": b"\xff\xd8\xff\xe0 truncated", "real/real_5.jpg": b"not an image at all"}


@pytest.fixture(scope="module")
def hardfake_zip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hardfake") / "hardfakevsrealfaces"
    generate_demo_dataset(DemoDataConfig(seed=7, images_per_class=30, image_size=300,
                                         fingerprint_strength=0.06, sensor_noise=0.02,
                                         jpeg_quality_min=80, jpeg_quality_max=95), folder)
    for name, content in CORRUPT.items():
        (folder / name).write_bytes(content)
    archive = folder.parent / "hardfakevsrealfaces.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder.parent).as_posix())
    return archive


@pytest.fixture(scope="module")
def pipeline_run(hardfake_zip: Path, tmp_path_factory) -> Path:
    root = make_tiny_repo(tmp_path_factory.mktemp("repo"), {"data.source": hardfake_zip.as_uri()})
    # Up to evaluate: what follows it reads only the trained model and the manifest, which
    # test_dvc_pipeline.py covers on the demo data.
    result = run(["python", "-m", "deepfake_detector.cli", "run", "ingest", "frames", "validate", "prepare_model",
                  "train", "evaluate"], root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return root


def test_every_good_image_is_in_a_stratified_manifest(pipeline_run: Path) -> None:
    manifest = pd.read_csv(pipeline_run / "artifacts/data/manifest.csv")
    assert len(manifest) == 60 - len(CORRUPT)
    assert not [path for path in manifest["path"] for name in CORRUPT if path.endswith(name)]
    for split in ("train", "val", "test"):
        assert set(manifest.loc[manifest["split"] == split, "label"]) == {0, 1}


def test_quarantine_names_each_corrupt_file(pipeline_run: Path) -> None:
    report = json.loads((pipeline_run / "artifacts/data/quarantine.json").read_text())
    quarantined = {"/".join(Path(entry["path"]).parts[-2:]) for entry in report["files"]}
    assert set(CORRUPT) <= quarantined
    assert all(entry["reason"] for entry in report["files"])


def test_model_is_trained_and_evaluated(pipeline_run: Path) -> None:
    scores = json.loads((pipeline_run / "scores.json").read_text())
    assert scores["n_test"] > 0
    assert 0.0 <= scores["roc_auc"] <= 1.0
    assert (pipeline_run / "artifacts/training/model.h5").exists()
