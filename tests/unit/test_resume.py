"""The trainer's resume rules: a backup is resumed only with the settings, data and base model that
made it; anything else starts fresh and removes every trace of the earlier attempt."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deepfake_detector.components.model.resume import (
    KERAS_BACKUP_METADATA,
    TrainingBackup,
    fingerprint,
    has_saved_state,
    read_history,
    truncate_history,
)
from tests.pipeline.trainer_helpers import training_config


@pytest.fixture
def inputs(tmp_path: Path):
    (tmp_path / "manifest.csv").write_text("path,label,split,sha256,group\n")
    (tmp_path / "base.h5").write_bytes(b"base model")
    return training_config(tmp_path, tmp_path / "base.h5", tmp_path / "dataset", tmp_path / "manifest.csv")


def backup_of(config, mixed_precision: bool = False) -> TrainingBackup:
    key = fingerprint(config, mixed_precision, config.manifest_file, config.base_model_file)
    return TrainingBackup(config.backup_dir, key, outputs=(config.history_file, config.checkpoint_file))


def interrupt_fine_tuning(backup: TrainingBackup, at_epoch: int) -> None:
    backup.phase_dir("fine_tune").mkdir(parents=True)
    (backup.phase_dir("fine_tune") / KERAS_BACKUP_METADATA).write_text(json.dumps({"epoch": at_epoch}))


def test_first_run_starts_fresh_and_records_what_its_backup_is_for(inputs):
    backup = backup_of(inputs)
    assert backup.resume_or_start_fresh() is False
    assert json.loads((inputs.backup_dir / "run.json").read_text()) == {"fingerprint": backup.fingerprint}
    assert not has_saved_state(inputs.backup_dir / "absent")


def test_interrupted_run_with_the_same_settings_is_resumed(inputs):
    backup_of(inputs).resume_or_start_fresh()
    interrupt_fine_tuning(backup_of(inputs), at_epoch=3)
    again = backup_of(inputs)
    assert again.resume_or_start_fresh() is True
    assert again.interrupted_epoch("fine_tune") == 3
    assert has_saved_state(inputs.backup_dir)


@pytest.mark.parametrize("change", ["settings", "base model", "precision"])
def test_backup_of_other_settings_or_base_model_is_discarded(inputs, change):
    backup_of(inputs).resume_or_start_fresh()
    interrupt_fine_tuning(backup_of(inputs), at_epoch=3)
    inputs.history_file.parent.mkdir(parents=True, exist_ok=True)
    inputs.history_file.write_text("epoch,loss\n0,1.0\n")
    config, mixed = inputs, False
    if change == "settings":
        config = dataclasses.replace(inputs, batch_size=inputs.batch_size * 2)
    elif change == "base model":
        inputs.base_model_file.write_bytes(b"another base model")
    else:
        mixed = True
    assert backup_of(config, mixed).resume_or_start_fresh() is False
    assert backup_of(config, mixed).interrupted_epoch("fine_tune") is None
    assert not inputs.history_file.exists()


def test_finished_phase_is_recorded_and_its_keras_backup_dropped(inputs):
    backup = backup_of(inputs)
    backup.resume_or_start_fresh()
    interrupt_fine_tuning(backup, at_epoch=2)
    backup.mark_finished("fine_tune", next_epoch=4)
    assert backup.finished_phase("fine_tune") == 4 and backup.finished_phase("head") is None
    assert not backup.phase_dir("fine_tune").exists()
    assert backup.progress(["head", "fine_tune"]) == [-1, -1, -1, 4, -1]


def test_history_rows_of_rerun_epochs_are_dropped(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,phase\n0,1.0,head\n1,0.8,fine_tune\n2,0.7,fine_tune\n")
    truncate_history(history, next_epoch=1)
    assert [row["epoch"] for row in read_history(history)] == ["0"]
    assert read_history(tmp_path / "absent.csv") == []
