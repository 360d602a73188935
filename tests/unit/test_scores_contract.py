"""scores.json through its one reader: the rule it holds, and whether it belongs to the model a stage scores."""
import json
from pathlib import Path

import pytest

from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.scores import read_scores
from deepfake_detector.utils.files import sha256_file


def write_scores(folder: Path, **extra) -> Path:
    path = folder / "scores.json"
    path.write_text(json.dumps({"threshold": 0.7, "temperature": 2.0, "threshold_uncalibrated": 0.6, "roc_auc": 0.9,
                                **extra}))
    return path


def test_scores_of_this_model_are_accepted(tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"weights")
    scores = read_scores(write_scores(tmp_path, model_sha256=sha256_file(model))).require_model(model)
    assert scores.rule.threshold == 0.7 and scores.rule.raw_threshold == 0.6 and scores.get("roc_auc") == 0.9


def test_scores_of_another_model_are_refused_with_the_stage_to_rerun(tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"retrained weights")
    scores = read_scores(write_scores(tmp_path, model_sha256="0" * 64))
    with pytest.raises(ModelError, match="scores of another model.*rerun the evaluate stage"):
        scores.require_model(model)


def test_scores_that_record_no_model_pass_as_files_from_older_runs_do(tmp_path):
    scores = read_scores(write_scores(tmp_path))
    assert scores.require_model(tmp_path / "absent.h5") is scores


def test_a_missing_model_is_named(tmp_path):
    scores = read_scores(write_scores(tmp_path, model_sha256="0" * 64))
    with pytest.raises(ModelError, match="absent.h5: model not found"):
        scores.require_model(tmp_path / "absent.h5")


@pytest.mark.parametrize("threshold", [0.0, 1.0, "high", None, float("inf")])
def test_a_threshold_that_cannot_be_honored_names_the_file(tmp_path, threshold):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"threshold": threshold}))
    with pytest.raises(ModelError, match="scores.json"):
        read_scores(path)
