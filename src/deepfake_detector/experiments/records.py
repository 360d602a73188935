"""One JSON record per ablation row (artifacts/ablation/<row>.json): what the row set, what it measured,
or why it failed. Written atomically once a row ends, so a killed run loses at most the row it was on."""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepfake_detector.contracts.scores import Scores

logger = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
# What makes two runs of a row the same: a record with other values is rerun, even under --resume.
IDENTITY_KEYS = ("overrides", "stages", "params")


def record_file(out_dir: Path, row_name: str) -> Path:
    return Path(out_dir) / f"{row_name}.json"


def model_copy(out_dir: Path, row_name: str) -> Path:
    """Where the row's float32 TFLite export is kept: later rows measure their latency against the first's."""
    return Path(out_dir) / "models" / f"{row_name}.tflite"


def log_file(out_dir: Path, row_name: str) -> Path:
    return Path(out_dir) / "logs" / f"{row_name}.log"


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at path; None when there is none or it cannot be read (the row is then run again)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        logger.warning("%s: unreadable (%s); its row counts as not run", path, error)
        return None
    return record if isinstance(record, dict) else None


def is_done_with(record: Mapping[str, Any] | None, identity: Mapping[str, Any]) -> bool:
    """Whether record is a finished run of the row with exactly these overrides, stages and params."""
    return (record is not None and record.get("status") == DONE
            and all(record.get(key) == value for key, value in identity.items()))


def in_distribution(scores: Scores) -> dict[str, Any]:
    """Test ROC AUC of the split the row trained on, with its bootstrap interval where there is one."""
    return {"roc_auc": scores.get("roc_auc"), "ci_low": scores.get("roc_auc_ci_low"),
            "ci_high": scores.get("roc_auc_ci_high"), "n_test": scores.n_test}


def unseen_families(cross_dataset: Mapping[str, Any]) -> dict[str, Any]:
    """The cross_dataset stage's summary over the sets it scored (None in files written before it had
    one) and each set's ROC AUC."""
    sets = [{"name": entry.get("name"), "roc_auc": entry.get("roc_auc")} for entry in cross_dataset.get("sets") or []
            if isinstance(entry, Mapping)]
    summary = cross_dataset.get("summary")
    return {"summary": dict(summary) if isinstance(summary, Mapping) else None, "sets": sets}
