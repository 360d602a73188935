"""The MLflow run the train stage opened, which every later stage adds to (written to training.run_file)."""
from __future__ import annotations

import json
from pathlib import Path


def training_run_id(run_file: Path) -> str | None:
    """The run id in run_file, or None when training has not recorded one (then a stage opens its own run)."""
    try:
        payload = json.loads(Path(run_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run_id = payload.get("run_id") if isinstance(payload, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None
