"""Runs the ablation: each row a DVC experiment, then its scores, unseen-family AUCs and serving latency
collected into its record. A row that fails is recorded as failed and the run goes on to the next."""
from __future__ import annotations

import datetime
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.config import ConfigurationManager
from deepfake_detector.contracts.errors import DeepfakeDetectorError
from deepfake_detector.contracts.export_layout import VARIANT_FILES
from deepfake_detector.contracts.scores import Scores, read_scores
from deepfake_detector.experiments import records
from deepfake_detector.experiments.dvc_experiments import DvcExperiments, ExperimentOutputs
from deepfake_detector.experiments.grid import Grid, Row, with_overrides
from deepfake_detector.experiments.latency import VARIANT, measure_latency
from deepfake_detector.utils.files import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowOutputs:
    """Where, relative to the repository root, the files a record is made from lie, and which stage writes each."""

    scores: str
    cross_dataset: str
    tflite: str

    @classmethod
    def of(cls, manager: ConfigurationManager) -> RowOutputs:
        def relative(path: Path) -> str:
            return Path(path).resolve().relative_to(Path(manager.root).resolve()).as_posix()

        export_dir = manager.get_export_config().root_dir
        return cls(scores=relative(manager.get_evaluation_config().scores_file),
                   cross_dataset=relative(manager.get_cross_dataset_config().results_file),
                   tflite=relative(export_dir / VARIANT_FILES[VARIANT]))


def run_ablation(root: Path, grid: Grid, rows: Sequence[Row], *, is_resume: bool, out_dir: Path) -> list[dict]:
    """Every row's record, in order, each also written to out_dir/<row>.json as soon as the row ends."""
    root = Path(root).resolve()
    out_dir = out_dir if Path(out_dir).is_absolute() else root / out_dir
    manager = ConfigurationManager(root=root)
    params = manager.params_as_written()
    experiments = DvcExperiments(root)
    fresh = experiments.stages_run_by(grid.stages)
    outputs = RowOutputs.of(manager)
    started = time.perf_counter()
    results = []
    for number, row in enumerate(rows, start=1):
        identity = {"overrides": dict(row.overrides), "stages": list(grid.stages),
                    "params": with_overrides(params, row.overrides)}
        path = records.record_file(out_dir, row.name)
        earlier = records.read_record(path)
        if is_resume and records.is_done_with(earlier, identity):
            logger.info("Row %d/%d %s: done in an earlier run, skipped (%s)", number, len(rows), row.name, path)
            results.append(earlier)
            continue
        logger.info("Row %d/%d %s: dvc exp run --temp %s (log: %s)", number, len(rows), row.name,
                    " ".join(grid.stages), records.log_file(out_dir, row.name))
        row_started = time.perf_counter()
        record: dict[str, Any] = {"row": row.name, "levels": dict(row.levels), **identity}
        try:
            record |= _run_row(experiments, row, grid, fresh, outputs, out_dir)
            record |= {"status": records.DONE, "error": None}
        except Exception as error:  # noqa: BLE001 - one failing row must not cost the others; its error is kept
            if not isinstance(error, DeepfakeDetectorError):
                logger.exception("Row %s failed unexpectedly", row.name)
            record |= {"status": records.FAILED, "error": f"{type(error).__name__}: {error}"}
        record |= {"finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                   "elapsed_s": round(time.perf_counter() - row_started, 1)}
        write_json_atomic(path, record)
        results.append(record)
        log = logger.info if record["status"] == records.DONE else logger.error
        log("Row %d/%d %s: %s in %.0f s (%.0f s elapsed)%s", number, len(rows), row.name, record["status"],
            record["elapsed_s"], time.perf_counter() - started,
            f": {record['error']}" if record["error"] else "")
    return results


def _run_row(experiments: DvcExperiments, row: Row, grid: Grid, fresh: set[str], outputs: RowOutputs,
             out_dir: Path) -> dict[str, Any]:
    """Run the row's experiment and read back what its stages measured; only outputs of stages the
    experiment ran are read (the others in its commit are the baseline's, not the row's)."""
    rev = experiments.run(row.name, row.overrides, grid.stages, records.log_file(out_dir, row.name))
    made = experiments.outputs_of(rev)
    result: dict[str, Any] = {"experiment": {"name": row.name, "rev": rev,
                                             "baseline_rev": experiments.baseline_rev()},
                              "in_distribution": None, "unseen": None, "latency": None}
    if "evaluate" in fresh:
        result["in_distribution"] = records.in_distribution(_scores(made, outputs.scores))
    if "cross_dataset" in fresh:
        result["unseen"] = records.unseen_families(json.loads(made.read_bytes(outputs.cross_dataset)))
    if "export" in fresh:
        model = records.model_copy(out_dir, row.name)
        with atomic_path(model) as partial:
            partial.write_bytes(made.read_bytes(outputs.tflite))
        baseline = records.model_copy(out_dir, grid.baseline.name)
        if not baseline.is_file():
            logger.warning("The baseline row %s has no float32 export under %s: no latency ratio for %s",
                           grid.baseline.name, baseline.parent, row.name)
        result["latency"] = measure_latency(model, baseline if baseline.is_file() else None)
    return result


def _scores(made: ExperimentOutputs, path: str) -> Scores:
    """scores.json of the experiment, through the one reader every stage uses."""
    with tempfile.TemporaryDirectory(prefix="ablation-") as scratch:
        local = Path(scratch) / Path(path).name
        local.write_bytes(made.read_bytes(path))
        return read_scores(local)
