"""What lets a killed training run start again where it stopped: the backup folder and its rules.

    backup_dir/run.json                  fingerprint of the settings, data and base model
    backup_dir/best.json                 epoch and val_auc of the weights in checkpoint_file
    backup_dir/<phase>/                  Keras' BackupAndRestore state while a phase runs
    backup_dir/<phase>.done.json         the phase finished; the epoch the next one starts at
    backup_dir/<phase>.done.weights.h5   the model as that phase left it

A backup made with other settings, data or base model is discarded, never resumed.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from deepfake_detector.config.entities import TrainingConfig
from deepfake_detector.utils.files import atomic_path, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

# BackupAndRestore's record of the next epoch to run (Keras writes it beside its weights).
KERAS_BACKUP_METADATA = "training_metadata.json"
NO_EPOCH = -1  # in progress(): nothing saved at that point


def has_saved_state(backup_dir: Path) -> bool:
    """Whether an interrupted run left anything to resume from (the train stage then reopens its MLflow run)."""
    return backup_dir.exists() and any(backup_dir.rglob("*"))


def fingerprint(declared: TrainingConfig, mixed_precision: bool, manifest_file: Path, base_model_file: Path) -> str:
    """Identifies what a backup is valid for: every setting, the manifest and the base model.

    The declared settings, the same on every worker, plus whether float16 was resolved: the
    optimizer state of a mixed-precision run does not fit a float32 one.
    """
    settings = json.dumps({**dataclasses.asdict(declared), "mixed": mixed_precision}, sort_keys=True, default=str)
    parts = [settings, sha256_file(manifest_file), sha256_file(base_model_file)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class TrainingBackup:
    """One run's backup folder: where each piece of saved progress lives, and whether to resume it.

    `outputs` (the history and best-weights files) are progress kept outside the folder; starting
    fresh removes them too.
    """

    def __init__(self, backup_dir: Path, fingerprint: str, outputs: Sequence[Path] = ()) -> None:
        self.backup_dir = backup_dir
        self.fingerprint = fingerprint
        self.outputs = tuple(outputs)

    @property
    def best_file(self) -> Path:
        return self.backup_dir / "best.json"

    def phase_dir(self, phase: str) -> Path:
        """Where Keras' BackupAndRestore keeps the state of a phase that is running."""
        return self.backup_dir / phase

    def phase_weights(self, phase: str) -> Path:
        return self.backup_dir / f"{phase}.done.weights.h5"

    def _phase_marker(self, phase: str) -> Path:
        return self.backup_dir / f"{phase}.done.json"

    def finished_phase(self, phase: str) -> int | None:
        """The epoch after a phase an earlier run finished, or None if it did not finish it."""
        marker = self._phase_marker(phase)
        return int(json.loads(marker.read_text())["next_epoch"]) if marker.is_file() else None

    def mark_finished(self, phase: str, next_epoch: int) -> None:
        """Record that a phase finished (its weights already saved), then drop its Keras backup."""
        write_json_atomic(self._phase_marker(phase), {"next_epoch": next_epoch})
        # Only now: until the marker exists, a restart must still find the phase's backup.
        shutil.rmtree(self.phase_dir(phase), ignore_errors=True)

    def interrupted_epoch(self, phase: str) -> int | None:
        """The epoch Keras' backup of a running phase resumes at, or None without a backup."""
        metadata = self.phase_dir(phase) / KERAS_BACKUP_METADATA
        if not metadata.is_file():
            return None
        return int(json.loads(metadata.read_text())["epoch"])

    def progress(self, phases: Sequence[str]) -> list[int]:
        """What this process would resume from, as numbers every worker can compare: the best
        epoch, then per phase the epoch its finish marker and its Keras backup point at (-1: none)."""
        values = [int(read_best(self.best_file).get("epoch", NO_EPOCH))]
        for phase in phases:
            finished, interrupted = self.finished_phase(phase), self.interrupted_epoch(phase)
            values.append(NO_EPOCH if finished is None else finished)
            values.append(NO_EPOCH if interrupted is None else interrupted)
        return values

    def resume_or_start_fresh(self) -> bool:
        """Keep a previous run's state if it was made with the same settings; else clear it.

        Returns whether there is progress to resume.
        """
        run_file = self.backup_dir / "run.json"
        if run_file.is_file():
            if json.loads(run_file.read_text()).get("fingerprint") == self.fingerprint:
                has_progress = any(path.is_dir() or path.name.endswith(".done.json")
                                   for path in self.backup_dir.iterdir())
                if has_progress:
                    logger.info("Found the state of an interrupted run in %s; resuming it", self.backup_dir)
                return has_progress
            logger.warning("Discarding %s: it belongs to a run with other settings, data or base model",
                           self.backup_dir)
        self.start_fresh()
        return False

    def start_fresh(self) -> None:
        """Drop every trace of earlier progress and record what the new run's state is valid for."""
        self.remove()
        for path in self.outputs:
            path.unlink(missing_ok=True)
        write_json_atomic(self.backup_dir / "run.json", {"fingerprint": self.fingerprint})

    def remove(self) -> None:
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def read_best(best_file: Path) -> dict[str, float]:
    """best.json: the epoch and val_auc of the best weights so far; empty before the first epoch."""
    return json.loads(best_file.read_text()) if best_file.is_file() else {}


def read_history(history_file: Path) -> list[dict[str, str]]:
    """The rows of history.csv, one per epoch run so far (none before the first epoch)."""
    if not history_file.is_file():
        return []
    with open(history_file, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def truncate_history(history_file: Path, next_epoch: int) -> None:
    """Drop history rows from next_epoch on, so an epoch a killed run wrote and a resumed one reruns
    is not listed twice."""
    rows = read_history(history_file)
    kept = [row for row in rows if int(row["epoch"]) < next_epoch]
    if len(kept) == len(rows):
        return
    with atomic_path(history_file) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
    logger.info("History: dropped %d rows of epochs >= %d from the interrupted run", len(rows) - len(kept),
                next_epoch)
