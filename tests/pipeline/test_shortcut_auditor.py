"""The shortcut_audit stage's component on flat-color images: a model that decides on color alone
still decides on thumbnails, and the audit flags it."""
import json
from pathlib import Path

import pytest

from deepfake_detector.components.evaluation.shortcut_audit import MODEL_CUE, ShortcutAuditor
from deepfake_detector.config.entities import ShortcutAuditConfig
from deepfake_detector.contracts.errors import ModelError
from tests.pipeline.flat_color_model import IMAGE_SIZE, VAL, write_dataset, write_red_is_fake_model


def make_config(root: Path) -> ShortcutAuditConfig:
    return ShortcutAuditConfig(results_file=root / "shortcut_audit.json", model_file=root / "model.h5",
                               manifest_file=root / "manifest.csv", dataset_dir=root / "dataset",
                               training_run_file=root / "mlflow_run.json", image_size=IMAGE_SIZE,
                               input_fit="crop", batch_size=4,
                               warn_auc=0.8, seed=0)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    # The train split is the one audited; the val differences separate fake from real by color.
    write_dataset(root, {"train": VAL, "test": {"fake": [1], "real": [-1]}})
    write_red_is_fake_model(root / "model.h5")
    return ShortcutAuditor(make_config(root)).run()


def test_audit_reads_the_train_split_only(audited):
    assert (audited.audit["n_fake"], audited.audit["n_real"]) == (len(VAL["fake"]), len(VAL["real"]))


def test_a_model_deciding_on_color_is_flagged_on_thumbnails(audited):
    assert audited.auc_by_cue[MODEL_CUE] >= 0.8
    assert MODEL_CUE in audited.flagged


def test_result_is_what_the_file_holds(audited):
    written = json.loads(audited.results_file.read_text(encoding="utf-8"))
    assert written["flagged"] == list(audited.flagged)
    assert {name: entry["auc"] for name, entry in written["cues"].items()} == audited.auc_by_cue


def test_missing_model_says_to_run_the_train_stage(tmp_path):
    write_dataset(tmp_path, {"train": VAL})
    with pytest.raises(ModelError, match="run the train stage first"):
        ShortcutAuditor(make_config(tmp_path)).run()
