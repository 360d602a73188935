"""What the evaluation report shows, as one typed object, and how the report stage gathers it from disk.

Only scores.json is required: a run may skip robustness, cross-dataset or the shortcut audit, and the
report then says "not produced" for that section instead of failing.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from deepfake_detector.config.entities import ReportConfig
from deepfake_detector.contracts.errors import ModelError
from deepfake_detector.contracts.json_files import read_json_object
from deepfake_detector.contracts.scores import Scores, read_scores
from deepfake_detector.utils.provenance import git_commit

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("path", "label", "split", "p_fake")
DEFAULT_TITLE = "deepfake-detector evaluation report"
DEFAULT_WORST_K = 6


@dataclass(frozen=True)
class Provenance:
    """The git commit of the code that made the report; commit None outside a git checkout."""

    commit: str | None = None
    dirty: bool | None = None   # tracked files differ from the commit

    @classmethod
    def of_checkout(cls, root: Path) -> Provenance:
        found = git_commit(root)
        return cls(commit=found["commit"], dirty=found["dirty"])


@dataclass(frozen=True, eq=False)
class ReportInputs:
    """Everything one report shows. The decision rule (threshold and temperature) is the one in scores."""

    scores: Scores                                      # scores.json: test metrics and the decision rule
    params: Mapping[str, Any] = field(default_factory=dict)     # the params.yaml sections that made the model
    plots: Mapping[str, Path] = field(default_factory=dict)     # evaluate's PNGs by name ("roc", "reliability")
    predictions: pd.DataFrame | None = None             # predictions.csv (PREDICTION_COLUMNS); None: no gallery
    dataset_dir: Path | None = None                     # thumbnails come from here; None: names only
    robustness: Mapping[str, Any] | None = None         # robustness.json: "clean" and perturbation -> severity
    robustness_png: Path | None = None
    cross_dataset: Mapping[str, Any] | None = None      # cross_dataset.json: "reference", "sets", "summary"
    shortcut_audit: Mapping[str, Any] | None = None     # shortcut_audit.json: "cues", "flagged", "warn_auc"
    provenance: Provenance = Provenance()
    worst_k: int = DEFAULT_WORST_K                      # misclassified images shown per gallery
    title: str = DEFAULT_TITLE

    def __post_init__(self) -> None:
        if self.worst_k < 0:
            raise ValueError(f"worst_k must be 0 or more, got {self.worst_k}")


def read_report_inputs(config: ReportConfig, project_root: Path) -> ReportInputs:
    """The report's inputs as the earlier stages left them; git is asked about project_root."""
    plots = {path.stem: path for path in sorted(config.plots_dir.glob("*.png"))}
    return ReportInputs(
        scores=read_scores(config.scores_file),
        params=config.params,
        plots=plots,
        predictions=_read_predictions(config.predictions_file),
        dataset_dir=config.dataset_dir,
        robustness=_read_optional_json(config.robustness_metrics_file, "robustness"),
        robustness_png=config.robustness_png_file if config.robustness_png_file.is_file() else None,
        cross_dataset=_read_optional_json(config.cross_dataset_file, "cross_dataset"),
        shortcut_audit=_read_optional_json(config.shortcut_audit_file, "shortcut_audit"),
        provenance=Provenance.of_checkout(project_root),
    )


def _read_predictions(path: Path) -> pd.DataFrame | None:
    """predictions.csv with the columns the report needs, or None when evaluate wrote none."""
    if not path.is_file():
        logger.warning("%s not found: the report shows no confusion counts and no worst errors", path)
        return None
    try:
        predictions = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not a readable CSV ({error}); rerun the evaluate stage") from None
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise ModelError(f"{path}: lacks column(s) {', '.join(missing)}; expected {', '.join(PREDICTION_COLUMNS)}; "
                         "rerun the evaluate stage")
    return predictions


def _read_optional_json(path: Path, made_by: str) -> Mapping[str, Any] | None:
    """A later stage's output, or None (with a note) when that stage has not produced it; a file that is
    there but unreadable or not a JSON object is a ModelError naming it and the stage to rerun."""
    if not path.is_file():
        logger.warning("%s not found: the report shows that section as not produced", path)
        return None
    return read_json_object(path, made_by)
