"""The pipeline outputs README's tables are made from: where config.yaml puts each, which stage writes it,
the md5 dvc.lock records for it, and reading it with errors that say what to run.

A table is only ever made from a file whose md5 is the one dvc.lock records, so what README quotes is
the locked run, not whatever an unrecorded experiment left on disk.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.config import ConfigurationManager
from deepfake_detector.config.configuration import read_yaml
from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.contracts.scores import Scores, read_scores

LOCK_FILE = "dvc.lock"
CHUNK = 1 << 20


class ResultsError(DeepfakeDetectorError):
    """An output a table needs is missing, unreadable or not the one dvc.lock records."""


@dataclass(frozen=True)
class Output:
    """One file a table reads."""

    key: str       # the name tables use, e.g. "scores"
    path: str      # relative to the repository root, in POSIX form, as dvc.lock spells it
    stage: str     # the DVC stage that writes it

    @property
    def how_to_make(self) -> str:
        return f"run the {self.stage} stage (`dvc repro {self.stage}`, or `dvc pull` where a remote holds it)"


def output_files(manager: ConfigurationManager) -> dict[str, Output]:
    """Every output a results table reads, by key, with its path from config/config.yaml."""
    evaluation = manager.get_evaluation_config()
    found = {
        "scores": (evaluation.scores_file, "evaluate"),
        "predictions": (evaluation.predictions_file, "evaluate"),
        "split_summary": (manager.get_data_validation_config().split_summary_file, "validate"),
        "history": (manager.get_training_config().history_file, "train"),
        "robustness": (manager.get_robustness_config().metrics_file, "robustness"),
        "cross_dataset": (manager.get_cross_dataset_config().results_file, "cross_dataset"),
        "shortcut_audit": (manager.get_shortcut_audit_config().results_file, "shortcut_audit"),
        "export_metrics": (manager.get_export_config().metrics_file, "export"),
    }
    return {key: Output(key, _relative(path, manager.root), stage) for key, (path, stage) in found.items()}


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def locked_md5s(lock_file: Path) -> dict[str, str]:
    """{path: md5} of every file dvc.lock records as a stage output (folders, whose md5 ends in .dir, left out)."""
    lock_file = Path(lock_file)
    if not lock_file.is_file():
        raise ResultsError(f"{lock_file}: not found; `dvc repro` writes it, recording the md5 of every output")
    stages = read_yaml(lock_file).get("stages") or {}
    if not isinstance(stages, Mapping) or not all(isinstance(stage, Mapping) for stage in stages.values()):
        raise ResultsError(f"{lock_file}: not a dvc.lock (its stages are not a mapping of mappings); "
                           "rerun `dvc repro` to write it")
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs") or []
            if isinstance(out, Mapping) and isinstance(out.get("path"), str) and isinstance(out.get("md5"), str)
            and not out["md5"].endswith(".dir")}


def file_md5(path: Path) -> str:
    """The md5 of the file's bytes: what DVC 3 records for a file (`hash: md5`)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PipelineOutputs:
    """The outputs under root, and what dvc.lock says they should be."""

    root: Path
    files: Mapping[str, Output]
    locked: Mapping[str, str]      # path -> md5, from dvc.lock
    lock_file: Path

    @classmethod
    def of_repository(cls, root: Path) -> PipelineOutputs:
        root = Path(root).resolve()
        return cls.from_manager(ConfigurationManager(root=root), root / LOCK_FILE)

    @classmethod
    def from_manager(cls, manager: ConfigurationManager, lock_file: Path) -> PipelineOutputs:
        return cls(root=Path(manager.root), files=output_files(manager), locked=locked_md5s(lock_file),
                   lock_file=Path(lock_file))

    def limited_to(self, keys: tuple[str, ...]) -> PipelineOutputs:
        """The same outputs with only keys readable: a table given this cannot read a file it does not
        list, so the sources its block names are all it was made from."""
        return dataclasses.replace(self, files={key: self.files[key] for key in keys})

    def path(self, key: str) -> Path:
        return self.root / self.files[key].path

    def locked_md5(self, key: str) -> str:
        output = self.files[key]
        try:
            return self.locked[output.path]
        except KeyError:
            raise ResultsError(f"{self.lock_file.name} records no output {output.path}; "
                               f"{output.how_to_make} so that it does") from None

    def is_locked_copy(self, key: str) -> bool:
        """Whether the file is on disk and is the one dvc.lock records."""
        path = self.path(key)
        return path.is_file() and self.files[key].path in self.locked and file_md5(path) == self.locked_md5(key)

    def require(self, key: str) -> Path:
        """The file's path, once it is known to exist and to be the locked one."""
        output, path = self.files[key], self.path(key)
        if not path.is_file():
            raise ResultsError(f"{output.path}: not found; {output.how_to_make}")
        locked, actual = self.locked_md5(key), file_md5(path)
        if actual != locked:
            raise ResultsError(f"{output.path}: md5 {actual} is not the {locked} that {self.lock_file.name} records; "
                               "`dvc repro` records the outputs on disk, `dvc checkout` restores the locked ones")
        return path

    def scores(self) -> Scores:
        return read_scores(self.require("scores"))

    def read_json(self, key: str) -> Any:
        path = self.require(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ResultsError(f"{self.files[key].path}: unreadable ({error}); rerun the {self.files[key].stage} "
                               "stage") from None

    def read_csv(self, key: str) -> list[dict[str, str]]:
        with open(self.require(key), newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
